"""The Raspberry Pi launcher: Modbus TCP on the Pi's Ethernet, or RTU on its UART / an RS-485 adapter.

A thin entry point over hil.emulators.launcher (the same state machine and pymodbus server as the mock
rig), so the bench Pi needs only `pip install hil` (numpy, pymodbus[serial], pyserial), no C toolchain:

    python3 launcher.py --tcp 0.0.0.0:502              # Modbus TCP for the host on the bench network
    python3 launcher.py --rtu /dev/serial0 --baud 115200  # the Pi UART (enable it, disable the serial console)
    python3 launcher.py --rtu /dev/ttyUSB0             # a USB RS-485 adapter with automatic direction control

Options as for `python -m hil.emulators.launcher` (--device-id, --rounds, --reload-ms, --watchdog-ms,
--build). Port 502 needs root or CAP_NET_BIND_SERVICE; any other port does not. It prints one JSON line
saying where it serves and runs until SIGTERM (run it from a systemd unit for power-on start).
"""

from __future__ import annotations

import sys

from hil.emulators.launcher import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a.startswith("--name") for a in argv):
        argv = ["--name", "hil-launcher-rpi", *argv]
    sys.exit(main(argv, description=(__doc__ or "").splitlines()[0]))
