"""The Raspberry Pi launcher: Modbus TCP on the Pi's Ethernet, or RTU on its UART / an RS-485 adapter.

A thin entry point over hil.emulators.launcher (the same state machine and pymodbus server as the mock
rig). It runs from a checkout where hil is installed, or on the Pi from a bundle made by bundle.py here,
with numpy, pyserial and pymodbus only, no C toolchain (README.md in this folder):

    python3 launcher.py --tcp 0.0.0.0:502              # Modbus TCP for the host on the bench network
    python3 launcher.py --rtu /dev/serial0 --baud 115200  # the Pi UART (enable it, disable the serial console)
    python3 launcher.py --rtu /dev/ttyUSB0             # a USB RS-485 adapter with automatic direction control

Options as for `python -m hil.emulators.launcher` (--device-id, --rounds, --reload-ms, --watchdog-ms,
--build). Port 502 needs root or CAP_NET_BIND_SERVICE; any other port does not. It prints one JSON line
saying where it serves and runs until SIGTERM (run it from a systemd unit for power-on start).
"""

from __future__ import annotations

import sys

try:
    import pymodbus  # noqa: F401  (the server is loaded when it starts serving: say here if it is missing)

    from hil.emulators.launcher import main
except ModuleNotFoundError as e:  # say what to install, not a traceback
    missing = e.name or str(e)
    how = ("run this from a bundle (python3 firmware_stubs/rpi/bundle.py DIR) or install hil"
           if missing.split(".")[0] == "hil" else "apt install python3-numpy python3-serial; pip install pymodbus")
    sys.exit(f"launcher.py: {missing} is missing: {how} (see README.md beside launcher.py)")

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a.startswith("--name") for a in argv):
        argv = ["--name", "hil-launcher-rpi", *argv]
    sys.exit(main(argv, description=(__doc__ or "").splitlines()[0]))
