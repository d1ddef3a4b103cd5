"""The Raspberry Pi radar: ASTERIX CAT048/CAT034 over UDP (unicast, or a multicast group on a real bench).

A thin entry point over hil.emulators.radar (the same beam, noise, Pd and clutter as the mock rig and the
AVR firmware), so the bench Pi needs only `pip install hil`:

    python3 radar.py --udp 192.0.2.10:8600 --bind 0.0.0.0:8601   # plots to the host, stimulus taken on 8601

The host sends SENSOR_CONFIG and STIMULUS frames (docs/PROTOCOLS.md §1) to the bind port; each datagram the
Pi sends is one ASTERIX data block, as at a real radar site. It prints one JSON line saying where it
listens and runs until SIGTERM.
"""

from __future__ import annotations

import sys

from hil.emulators.radar import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
