"""A board's serial end on a pty, and a wire's pace: what a board process needs to stand in for a UART.

open_raw_pty() gives the master end to the board and a tty path to announce to the host; Wire hands bytes on
no faster than a baud rate allows (10 bits a byte, 8N1), since a pty itself ignores baud rate. The null-modem
cable of the mock rig (hil.plant.nullmodem) is two of these wires between two ptys.
"""

from __future__ import annotations

import os
import time
import tty

# the slave ends stay open for the life of the process, so a pty never hangs up when the host closes its side
_SLAVE_FDS: list[int] = []


def open_raw_pty() -> tuple[int, str]:
    """A pty in raw mode: (master fd, slave path). The slave fd stays open so the pty never hangs up."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    _SLAVE_FDS.append(slave)
    return master, path


class Wire:
    """One direction of a cable: bytes leave no faster than the baud rate allows (0: as fast as written)."""

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
