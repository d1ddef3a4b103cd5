"""One grammar for every board link's URL (hil.drivers.transport.parse_link_url): radar transports and launcher
links read the same spellings, and anything else is one LinkError line naming it, never another exception."""

from __future__ import annotations

import os
import select
import socket
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers.launcher_link import LauncherLink
from hil.drivers.transport import (
    LINK_KINDS,
    LinkAddress,
    LinkKind,
    SerialTransport,
    UdpTransport,
    open_transport,
    parse_link_url,
)
from hil.errors import LinkError


@pytest.mark.parametrize(("url", "address"), [
    ("/dev/ttyACM0", LinkAddress("serial", path="/dev/ttyACM0")),
    ("/dev/serial/by-id/usb-FTDI_USB-RS485_Cable_FT4ZK2QX-if00-port0",
     LinkAddress("serial", path="/dev/serial/by-id/usb-FTDI_USB-RS485_Cable_FT4ZK2QX-if00-port0")),
    ("rtu:/dev/pts/7", LinkAddress("serial", path="/dev/pts/7")),
    ("rtu:///dev/pts/7", LinkAddress("serial", path="/dev/pts/7")),
    ("tcp://127.0.0.1:5020", LinkAddress("tcp", host="127.0.0.1", port=5020)),
    ("TCP://board-3.local:502", LinkAddress("tcp", host="board-3.local", port=502)),
    ("tcp://[::1]:5020", LinkAddress("tcp", host="::1", port=5020)),
    ("udp://127.0.0.1:0", LinkAddress("udp", host="127.0.0.1", port=0)),
    ("udp://0.0.0.0:8600?peer=192.168.1.7:8601", LinkAddress("udp", host="0.0.0.0", port=8600,
                                                              peer=("192.168.1.7", 8601))),
    ("socket://127.0.0.1:7000", LinkAddress("pyserial", url="socket://127.0.0.1:7000")),
    ("loop://", LinkAddress("pyserial", url="loop://")),
])
def test_each_spelling_reads_as_meant(url: str, address: LinkAddress) -> None:
    assert parse_link_url(url) == address
    assert parse_link_url(str(address)) == address


@pytest.mark.parametrize(("url", "says"), [
    ("", "empty"),
    ("COM3", "not a link URL"),
    ("dev/ttyACM0", "not a link URL"),
    ("rtu:ttyUSB0", "absolute path"),
    ("/dev/ttyACM0 ", "spaces at its ends"),
    ("tcp://127.0.0.1", "expected tcp://HOST:PORT"),
    ("tcp://127.0.0.1:0", "port 0 is outside 1..65535"),
    ("tcp://127.0.0.1:70000", "port 70000 is outside"),
    ("tcp://::1:5020", "expected tcp://HOST:PORT"),
    ("tcp://[1::2::3]:5020", "not an IPv6 address"),
    ("tcp://127.0.0.1:5020/x", "expected tcp://HOST:PORT"),
    ("udp://nohost", "expected udp://HOST:PORT"),
    ("udp://127.0.0.1:5?port=6", "the only option is ?peer=HOST:PORT"),
    ("udp://127.0.0.1:5?peer=somewhere", "peer: expected HOST:PORT"),
    ("ftp://127.0.0.1:21", "unknown scheme ftp://"),
])
def test_a_bad_url_is_one_line_naming_it(url: str, says: str) -> None:
    with pytest.raises(LinkError) as e:
        parse_link_url(url)
    assert says in str(e.value) and repr(url) in str(e.value) and "\n" not in str(e.value)


def test_a_launcher_link_takes_serial_paths_and_tcp_only() -> None:
    for url in ("udp://127.0.0.1:5", "loop://", "socket://127.0.0.1:5"):
        with pytest.raises(LinkError, match=r"^north: .* this link takes a serial device path .* or tcp://HOST:PORT$"):
            LauncherLink.from_url(url, name="north")
    for url in ("rtu:/dev/pts/9", "/dev/pts/9", "tcp://127.0.0.1:5020"):
        LauncherLink.from_url(url)  # opened on connect(), not here


def test_open_transport_reads_the_same_grammar() -> None:
    master, slave = os.openpty()
    try:
        for url in (os.ttyname(slave), "rtu:" + os.ttyname(slave)):
            t = open_transport(url)
            assert isinstance(t, SerialTransport)
            t.close()
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(LinkError, match="not a link URL"):
        open_transport("COM3")


def test_a_radar_over_tcp_opens_with_tcp_url() -> None:
    """tcp://HOST:PORT is a byte stream for a radar link too (pyserial's socket:// underneath)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        t = open_transport(f"tcp://127.0.0.1:{server.getsockname()[1]}")
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"\x7eplots")
            got = b""
            for _ in range(50):  # bounded: the bytes are on loopback
                select.select([t.fileno()], [], [], 0.1)
                got += t.read_available()
                if len(got) == 6:
                    break
        t.close()
    assert got == b"\x7eplots"


def test_udp_with_a_peer() -> None:
    t = open_transport("udp://127.0.0.1:0?peer=127.0.0.1:9")
    assert isinstance(t, UdpTransport) and t.peer == ("127.0.0.1", 9) and t.local_port > 0
    t.close()


# --- fuzzing: whatever is written, a LinkAddress or one LinkError line --------------------------------------

PIECES = st.sampled_from(["/", "//", "rtu:", "tcp://", "udp://", "socket://", "loop://", "TCP://", "[", "]", ":",
                          "::1", "127.0.0.1", "0", "5020", "65536", "?", "peer=", "&", "#", "%", "@", " ", "\x00",
                          "\n", "dev", "ttyACM0", "é", "٣", "-"])
URLS = st.one_of(st.text(max_size=40), st.lists(PIECES, max_size=8).map("".join))


def check_one(url: str, accept: tuple[LinkKind, ...] = LINK_KINDS, what: str = "") -> None:
    try:
        address = parse_link_url(url, accept, what)
    except LinkError as e:
        text = str(e)
        assert text and "\n" not in text and repr(url) in text
        return
    assert parse_link_url(str(address)) == address  # what was read spells back the same


@settings(max_examples=400, deadline=None)
@given(URLS)
def test_any_text_is_an_address_or_one_link_error(url: str) -> None:
    check_one(url)
    check_one(url, accept=("serial", "tcp"), what="launcher")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["tcp", "udp"]), st.from_regex(r"\A[A-Za-z0-9.-]{1,20}\Z"), st.integers(-5, 70_000))
def test_any_host_and_port(scheme: str, host: str, port: int) -> None:
    url = f"{scheme}://{host}:{port}"
    low = 1 if scheme == "tcp" else 0
    if low <= port <= 65535:
        assert parse_link_url(url) == LinkAddress(cast(LinkKind, scheme), host=host, port=port)
    else:
        with pytest.raises(LinkError):
            parse_link_url(url)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(), st.none(), st.binary(max_size=8), st.lists(st.integers(), max_size=2)))
def test_not_even_text(url: object) -> None:
    with pytest.raises(LinkError):
        parse_link_url(cast(str, url))
