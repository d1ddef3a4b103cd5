"""Byte transports for board links, opened by URL: serial/pty paths and pyserial URLs, UDP, in-process pipes.

    open_transport("/dev/ttyACM0")             serial device or pty path (pyserial)
    open_transport("socket://127.0.0.1:5000")  any pyserial URL (socket://, loop://, ...)
    open_transport("udp://127.0.0.1:0")        bind and receive ASTERIX datagrams (port 0: the OS picks)
    a, b = BytePipe.pair()                     in-process, for virtual time

Nothing here blocks: reads return what is there now; writes are queued and flushed as the OS accepts them.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import serial

from hil.errors import LinkError

MAX_BACKLOG = 64 * 1024  # bytes queued for a stalled writer before new writes are dropped (and counted)


class Transport(Protocol):
    is_datagram: bool
    tx_dropped_bytes: int

    def read_available(self) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class _Backlog:
    """Write queue of a non-blocking writer: send(data) -> bytes taken by the OS."""

    tx_dropped_bytes: int

    def _init_backlog(self) -> None:
        self._tx = bytearray()
        self.tx_dropped_bytes = 0

    def _send(self, data: bytes) -> int:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        if len(self._tx) + len(data) > MAX_BACKLOG:
            self.tx_dropped_bytes += len(data)
            return
        self._tx += data
        self.flush()

    def flush(self) -> None:
        while self._tx:
            n = self._send(bytes(self._tx))
            if n <= 0:
                return
            del self._tx[:n]

    @property
    def pending(self) -> int:
        return len(self._tx)


class SerialTransport(_Backlog):
    """A serial device, pty or pyserial URL, non-blocking both ways."""

    is_datagram = False

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=0)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError(f"{url}: cannot open: {e}") from e
        self.url = url
        self._fd = self.fileno()
        if self._fd >= 0:
            os.set_blocking(self._fd, False)
        else:
            # loop:// and the like queue in memory; their write_timeout=0 means "always time out"
            self.port.write_timeout = None
        self._init_backlog()

    def read_available(self) -> bytes:
        try:
            return bytes(self.port.read(65536))
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.url}: read failed: {e}") from e

    def _send(self, data: bytes) -> int:
        try:
            if self._fd >= 0:
                # Straight to the fd: pyserial's write spins on EAGAIN even with write_timeout=0.
                return os.write(self._fd, data)
            return int(self.port.write(data) or 0)
        except (BlockingIOError, serial.SerialTimeoutException):
            return 0
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.url}: write failed: {e}") from e

    def fileno(self) -> int:
        try:
            return int(self.port.fileno())
        except (AttributeError, NotImplementedError, OSError, serial.SerialException):
            return -1  # loop:// and friends have no OS handle: poll them

    def close(self) -> None:
        self.port.close()


class UdpTransport:
    """Receives datagrams on a bound UDP socket; writes go to `peer` (from ?peer=host:port or the last sender)."""

    is_datagram = True

    def __init__(self, host: str, port: int, peer: tuple[str, int] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise LinkError(f"udp://{host}:{port}: cannot bind: {e}") from e
        self.sock.setblocking(False)
        self.peer = peer
        self.tx_dropped_bytes = 0

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def read_datagrams(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError as e:
                raise LinkError(f"udp:{self.local_port}: receive failed: {e}") from e
            if self.peer is None:
                self.peer = (addr[0], addr[1])
            out.append(data)

    def read_available(self) -> bytes:
        """All datagrams run together (their boundaries are lost: use read_datagrams for ASTERIX)."""
        return b"".join(self.read_datagrams())

    def write(self, data: bytes) -> None:
        if self.peer is None:
            self.tx_dropped_bytes += len(data)
            return
        try:
            self.sock.sendto(data, self.peer)
        except (BlockingIOError, OSError):
            self.tx_dropped_bytes += len(data)

    def flush(self) -> None:
        return None

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class BytePipe:
    """One end of an in-process byte pipe: what one end writes, the other reads (for virtual time)."""

    is_datagram = False

    def __init__(self, rx: deque[bytes], tx: deque[bytes]) -> None:
        self._rx, self._tx = rx, tx
        self.closed = False
        self.tx_dropped_bytes = 0

    @classmethod
    def pair(cls) -> tuple[BytePipe, BytePipe]:
        a_to_b: deque[bytes] = deque()
        b_to_a: deque[bytes] = deque()
        return cls(b_to_a, a_to_b), cls(a_to_b, b_to_a)

    def read_available(self) -> bytes:
        if self.closed:
            raise LinkError("BytePipe: read after close")
        out = b"".join(self._rx)
        self._rx.clear()
        return out

    def write(self, data: bytes) -> None:
        if self.closed:
            raise LinkError("BytePipe: write after close")
        self._tx.append(bytes(data))

    def flush(self) -> None:
        return None

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        self.closed = True


def open_transport(url: str, baudrate: int = 115200) -> SerialTransport | UdpTransport:
    """A transport for a rig file's link URL (see the module docstring)."""
    if url.startswith("udp://"):
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise LinkError(f"{url}: expected udp://HOST:PORT (port 0 lets the OS choose)")
        peer = None
        if "peer" in (query := parse_qs(parts.query)):
            p = urlsplit("//" + query["peer"][0])
            if p.hostname is None or p.port is None:
                raise LinkError(f"{url}: peer must be HOST:PORT")
            peer = (p.hostname, p.port)
        return UdpTransport(parts.hostname, parts.port, peer)
    return SerialTransport(url, baudrate)
