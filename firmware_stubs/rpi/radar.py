"""The Raspberry Pi radar: ASTERIX CAT048/CAT034 over UDP (unicast, or a multicast group on a real bench).

A thin entry point over hil.emulators.radar (the same beam, noise, Pd and clutter as the mock rig and the
AVR firmware). It runs from a checkout where hil is installed, or on the Pi from a bundle made by bundle.py
here, with numpy, pyserial and pymodbus only (README.md in this folder):

    python3 radar.py --udp 192.0.2.10:8600 --bind 0.0.0.0:8601   # plots to the host, stimulus taken on 8601
    python3 radar.py                                             # the serial framing on a pty it announces

The host sends SENSOR_CONFIG and STIMULUS frames (docs/PROTOCOLS.md §1) to the bind port; each datagram the
Pi sends is one ASTERIX data block, as at a real radar site. It prints one JSON line saying where it
listens and runs until SIGTERM.
"""

from __future__ import annotations

import sys

try:
    from hil.emulators.radar import main
except ModuleNotFoundError as e:  # say what to install, not a traceback
    missing = e.name or str(e)
    how = ("run this from a bundle (python3 firmware_stubs/rpi/bundle.py DIR) or install hil"
           if missing.split(".")[0] == "hil" else "apt install python3-numpy python3-serial; pip install pymodbus")
    sys.exit(f"radar.py: {missing} is missing: {how} (see README.md beside radar.py)")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
