"""A null-modem cable between two ptys: both ends are real tty paths, optionally paced like a wire at a baud rate.

`python -m hil.plant.nullmodem [--baud 115200]` prints one JSON line {"a": PATH, "b": PATH} and copies bytes
both ways until SIGTERM or until its parent dies. A pty ignores baud rate, so pacing (10 bits a byte,
8N1) is how the mock rig emulates the time a frame spends on a real wire.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import signal
import sys
import time

from hil.emulators.wire import Wire, open_raw_pty
from hil.procutil import die_with_parent


def bridge(a: int, b: int, baud: int) -> None:
    wires = (Wire(a, b, baud), Wire(b, a, baud))
    while True:
        waits = [w for w in (wire.push(time.monotonic_ns()) for wire in wires) if w is not None]
        timeout = min(waits) / 1e9 if waits else 1.0
        readable, _, _ = select.select([a, b], [], [], timeout)
        for wire in wires:
            if wire.src in readable:
                wire.pull()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.plant.nullmodem", description=__doc__)
    parser.add_argument("--baud", type=int, default=0, help="pace bytes like a wire at this rate (0: unpaced)")
    args = parser.parse_args(argv)
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    a, path_a = open_raw_pty()
    b, path_b = open_raw_pty()
    print(json.dumps({"a": path_a, "b": path_b}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        bridge(a, b, args.baud)
    return 0


if __name__ == "__main__":
    sys.exit(main())
