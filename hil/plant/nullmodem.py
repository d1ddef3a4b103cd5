"""A null-modem cable between two ptys: both ends are real tty paths, optionally paced like a wire at a baud rate.

`python -m hil.plant.nullmodem [--baud 115200]` prints one JSON line {"a": PATH, "b": PATH} and copies bytes
both ways until SIGTERM or until its parent dies. A pty ignores baud rate, so pacing (10 bits a byte,
8N1) is how the mock rig emulates the time a frame spends on a real wire.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
import time
import tty

from hil.procutil import die_with_parent


def open_raw_pty() -> tuple[int, str]:
    """A pty in raw mode: (master fd, slave path). The slave fd stays open so the pty never hangs up."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    open_raw_pty.keep.append(slave)  # type: ignore[attr-defined]
    return master, path


open_raw_pty.keep = []  # type: ignore[attr-defined]


class Wire:
    """One direction of the cable: bytes leave no faster than the baud rate allows."""

    def __init__(self, src: int, dst: int, baud: int) -> None:
        self.src, self.dst = src, dst
        self.byte_ns = 10 * 1_000_000_000 // baud if baud else 0
        self.pending = bytearray()
        self.free_ns = 0  # when the wire is free to start the next byte

    def pull(self) -> None:
        try:
            data = os.read(self.src, 65536)
        except BlockingIOError:
            return
        if not self.pending:  # an idle wire starts sending now, not in the past
            self.free_ns = max(self.free_ns, time.monotonic_ns())
        self.pending += data

    def push(self, now_ns: int) -> int | None:
        """Write what the wire has carried by now; return ns until more can go, or None if idle."""
        if not self.pending:
            return None
        n = len(self.pending)
        if self.byte_ns:
            n = min(n, (now_ns - self.free_ns) // self.byte_ns)
            if n <= 0:
                return self.free_ns + self.byte_ns - now_ns
        try:
            written = os.write(self.dst, bytes(self.pending[:n]))
        except BlockingIOError:
            return 1_000_000
        del self.pending[:written]
        self.free_ns += written * self.byte_ns
        return (self.byte_ns or 0) if self.pending else None


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
