"""Byte transports for board links, opened by URL: serial/pty paths and pyserial URLs, TCP, UDP, in-process pipes.

One grammar for every board link, read by parse_link_url (LauncherLink.from_url reads it too):

    /dev/ttyACM0, /dev/pts/7             serial device or pty path (8N1)
    rtu:/dev/ttyUSB0                     the same path, as Modbus RTU spells it (rtu:///dev/... too)
    tcp://127.0.0.1:5020                 a TCP stream (Modbus TCP for a launcher); HOST may be [IPv6]
    udp://127.0.0.1:0?peer=HOST:PORT     bind and receive ASTERIX datagrams (port 0: the OS picks); replies go
                                         to peer, else to the last sender
    socket://, loop://, rfc2217://, ...  any other pyserial URL, handed to pyserial as written

    open_transport(url)                  a radar link's transport for any of these
    a, b = BytePipe.pair()               in-process, for virtual time

A URL outside the grammar is one LinkError line naming it; nothing else is raised for a bad one.
Nothing here blocks: reads return what is there now; writes are queued and flushed as the OS accepts them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import select
import socket
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

import serial

from hil.errors import LinkError

MAX_BACKLOG = 64 * 1024  # bytes queued for a stalled writer before new writes are dropped (and counted)


# --- the link URL grammar ----------------------------------------------------------------------------------

LinkKind = Literal["serial", "tcp", "udp", "pyserial"]
LINK_KINDS: tuple[LinkKind, ...] = ("serial", "tcp", "udp", "pyserial")
# pyserial's own URL handlers (serial.urlhandler.protocol_*), passed through to serial_for_url
PYSERIAL_SCHEMES = frozenset({"socket", "loop", "rfc2217", "spy", "alt", "hwgrep", "cp2110"})
_SPELLING: dict[LinkKind, str] = {
    "serial": "a serial device path (/dev/..., or rtu:PATH)", "tcp": "tcp://HOST:PORT",
    "udp": "udp://HOST:PORT[?peer=HOST:PORT]", "pyserial": "a pyserial URL (socket://, loop://, rfc2217://, ...)",
}
_HOST_PORT = re.compile(r"(?P<host>\[(?P<ip6>[0-9A-Fa-f:.]+)\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})", re.ASCII)
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.ASCII | re.DOTALL)


@dataclass(frozen=True)
class LinkAddress:
    """Where a board link goes, as parse_link_url read it; str() spells it back in the grammar."""

    kind: LinkKind
    path: str = ""  # serial: the device or pty path
    host: str = ""  # tcp, udp: a name or an address (IPv6 without brackets)
    port: int = 0
    peer: tuple[str, int] | None = None  # udp: where writes go
    url: str = ""  # pyserial: the URL as written

    def __str__(self) -> str:
        if self.kind == "serial":
            return self.path
        if self.kind == "pyserial":
            return self.url
        text = f"{self.kind}://{_host_text(self.host)}:{self.port}"
        if self.peer is not None:
            text += f"?peer={_host_text(self.peer[0])}:{self.peer[1]}"
        return text


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _BadUrl(Exception):
    """What is wrong with a URL (parse_link_url turns it into one LinkError line)."""


def _host_port(text: str, scheme: str, min_port: int) -> tuple[str, int]:
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        raise _BadUrl(f"expected {scheme}://HOST:PORT" if scheme != "peer" else "expected HOST:PORT")
    host = m["host"]
    if m["ip6"] is not None:
        try:
            host = str(ipaddress.IPv6Address(m["ip6"]))
        except ValueError:
            raise _BadUrl(f"[{m['ip6']}] is not an IPv6 address") from None
    port = int(m["port"])
    if not min_port <= port <= 65535:
        raise _BadUrl(f"port {port} is outside {min_port}..65535")
    return host, port


def _serial_path(path: str) -> LinkAddress:
    if not path.startswith("/") or path.endswith("/") or "://" in path:
        raise _BadUrl("a serial device is an absolute path like /dev/ttyACM0")
    return LinkAddress("serial", path=path)


def _kind(url: str) -> LinkKind:
    """Which kind of address url is meant to be, from how it starts."""
    if not url:
        raise _BadUrl("empty")
    if url.startswith("/") or url[:4].lower() == "rtu:":
        return "serial"
    m = _SCHEME.fullmatch(url)
    if m is None:
        raise _BadUrl("not a link URL")
    scheme = m["scheme"].lower()
    if scheme in ("tcp", "udp"):
        return "tcp" if scheme == "tcp" else "udp"
    if scheme in PYSERIAL_SCHEMES:
        return "pyserial"
    raise _BadUrl(f"unknown scheme {scheme}://")


def _parse(url: str, kind: LinkKind) -> LinkAddress:
    if url != url.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _BadUrl("spaces at its ends or control characters")
    if kind == "serial":
        if url[:4].lower() != "rtu:":
            return _serial_path(url)
        rest = url[4:]
        return _serial_path(rest[2:] if rest.startswith("//") else rest)  # rtu:///dev/x, as a URL would write it
    if kind == "pyserial":
        return LinkAddress("pyserial", url=url)
    rest = url.split("://", 1)[1]
    if kind == "tcp":
        host, port = _host_port(rest, "tcp", 1)
        return LinkAddress("tcp", host=host, port=port)
    where, sep, query = rest.partition("?")
    host, port = _host_port(where, "udp", 0)
    if not sep:
        return LinkAddress("udp", host=host, port=port)
    if not query.startswith("peer="):
        raise _BadUrl("the only option is ?peer=HOST:PORT")
    try:
        peer = _host_port(query[len("peer="):], "peer", 1)
    except _BadUrl as e:
        raise _BadUrl(f"peer: {e}") from None
    return LinkAddress("udp", host=host, port=port, peer=peer)


def _one_of(kinds: Collection[LinkKind]) -> str:
    names = [_SPELLING[k] for k in LINK_KINDS if k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def parse_link_url(url: str, accept: Collection[LinkKind] = LINK_KINDS, what: str = "") -> LinkAddress:
    """A board link's URL (the module docstring's grammar) as a LinkAddress, if its kind is one of accept.

    Anything else is one LinkError line: what (the link's name, if given), the URL as written and what is
    wrong with it."""
    prefix = f"{what}: " if what else ""
    if not isinstance(url, str):
        raise LinkError(f"{prefix}{url!r} is not a link URL; a link is {_one_of(accept)}")
    try:
        kind = _kind(url)
    except _BadUrl as e:
        raise LinkError(f"{prefix}{url!r}: {e}; a link is {_one_of(accept)}") from None
    if kind not in accept:
        raise LinkError(f"{prefix}{url!r} is {_SPELLING[kind]}; this link takes {_one_of(accept)}")
    try:
        return _parse(url, kind)
    except _BadUrl as e:
        raise LinkError(f"{prefix}{url!r}: {e}") from None


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

    def __init__(self, url: str, baudrate: int = 115200, shown_as: str | None = None) -> None:
        self.url = shown_as or url  # what errors name: the URL as the user wrote it
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=0)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError(f"{self.url}: cannot open: {e}") from e
        self._fd = self.fileno()
        self._hangup = select.poll()  # reports POLLHUP / POLLERR of the fd (registered for nothing else)
        if self._fd >= 0:
            os.set_blocking(self._fd, False)
            self._hangup.register(self._fd, 0)
        else:
            # loop:// and the like queue in memory; their write_timeout=0 means "always time out"
            self.port.write_timeout = None
        self._init_backlog()

    def read_available(self) -> bytes:
        try:
            if self._fd >= 0:
                # straight from the fd (non-blocking; pyserial's read costs ~15 µs a poll in the chain). A tty in
                # raw mode (VMIN = VTIME = 0) reads zero bytes when nothing is there, EAGAIN or not; zero bytes
                # with the fd hung up (POLLHUP: the other end closed, a pulled cable) is the end of the link
                data = os.read(self._fd, 65536)
                if not data and self._hangup.poll(0):
                    raise LinkError(f"{self.url}: read failed: the other end hung up")
                return data
            return bytes(self.port.read(65536))
        except BlockingIOError:
            return b""
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
    """A transport for a rig file's link URL (any kind of the module docstring's grammar)."""
    address = parse_link_url(url)
    if address.kind == "udp":
        return UdpTransport(address.host, address.port, address.peer)
    if address.kind == "tcp":  # a byte stream over TCP: pyserial's socket:// is one
        return SerialTransport(f"socket://{_host_text(address.host)}:{address.port}", baudrate, shown_as=url)
    return SerialTransport(address.path or address.url, baudrate)
