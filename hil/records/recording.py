"""Record every frame on every link as a pcapng file Wireshark decodes as it is, and read it back.

Written from the pcapng specification (IETF draft-ietf-opsawg-pcapng): one Section Header Block, one or two
Interface Description Blocks per link (nanosecond timestamps via if_tsresol = 9) and one Enhanced Packet Block
per frame. Every kind lands where tshark 4.x decodes it with no ``-d`` or ``-o`` flag:

- radar ASTERIX data blocks (kind "asterix"): synthetic IPv4/UDP, radar -> host, on ASTERIX's registered port
  8600 (LINKTYPE_IPV4; every radar on the same port, each link has its own peer address);
- Modbus/TCP ADUs (kind "modbus_tcp"): one synthetic TCP connection per link from the host to the launcher's
  port 502 (Modbus/TCP's registered port) with a handshake and correct sequence/acknowledgement numbers;
- Modbus RTU ADUs (kind "modbus_rtu") and hil's serial frames (kind "frame": stimulus, config, time sync, raw
  framed bytes): a serial line has no IP, so these are Wireshark "upper PDU" records (LINKTYPE_WIRESHARK_UPPER_PDU,
  252) whose header names the dissector, "mbrtu" (built in) or "hil" (the Lua dissector shipped in
  hil/wireshark/hil.lua), plus the link's addresses so Wireshark's columns and conversations show which link.

The host is 10.0.0.1; link number i (in order of first use) is 10.1.0.(i + 1) and up. Each IDB names its link
(if_name) and carries the link, its encapsulation and its port map as JSON in its comment, which is how
read_recording() tells links and kinds apart (it still reads recordings made when every kind was UDP on a port of
its own). A frame may carry an annotation, a JSON object from the caller (RadarLink gives each ASTERIX payload the
plot times it used, which replay needs): it is the Enhanced Packet Block's opt_comment, which Wireshark shows as
the packet comment and which leaves the dissection alone. Each Enhanced Packet Block also carries the packet's
CRC-32 (option epb_hash, algorithm 2, in the section's byte order), so the reader tells a flipped bit from a frame
the link really carried. Every block goes to the kernel in one os.write() as soon as it is recorded (no buffer to
flush, no fsync: the page cache outlives the process), so a run killed with SIGKILL leaves a file readable up to
its last frame; the reader says where a cut-off last block begins ("recording ends mid-block at byte N").
Timestamps are the host clock's ns (monotonic in real time, virtual in virtual time); if_tsoffset shifts them to
wall-clock time for Wireshark's display, while read_recording() returns them unshifted.
"""

from __future__ import annotations

import array
import contextlib
import functools
import ipaddress
import json
import logging
import os
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from hil.errors import HilError

log = logging.getLogger("hil.records.recording")

# Wireshark's dissector for the "frame" kind, shipped with the package; copy it to ~/.local/lib/wireshark/plugins/
WIRESHARK_PLUGIN = Path(__file__).resolve().parents[1] / "wireshark" / "hil.lua"

KINDS = ("asterix", "frame", "modbus_rtu", "modbus_tcp")
DIRECTIONS = ("rx", "tx")
RADAR_KINDS = ("asterix", "frame")

LINKTYPE_IPV4 = 228
LINKTYPE_UPPER_PDU = 252  # LINKTYPE_WIRESHARK_UPPER_PDU: a tag list naming the dissector, then the PDU
SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 0x00000001
EPB_TYPE = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14
EPB_FLAGS = 2
EPB_HASH = 3
HASH_CRC32 = 2  # the pcapng epb_hash algorithm number of CRC-32
EPB_INBOUND = 0b01
EPB_OUTBOUND = 0b10

HOST_ADDRESS = "10.0.0.1"
HOST_PACKED = ipaddress.IPv4Address(HOST_ADDRESS).packed
FIRST_PEER = int(ipaddress.IPv4Address("10.1.0.1"))
HOST_TCP_PORT = 40000  # + launcher index: the host's ephemeral port of each Modbus/TCP connection
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
# Wireshark's exported-PDU tags (epan/exported_pdu.h): big-endian u16 tag, u16 length, value
EXP_PDU_END = 0
EXP_PDU_DISSECTOR_NAME = 12
EXP_PDU_IPV4_SRC = 20
EXP_PDU_IPV4_DST = 21
EXP_PDU_PORT_TYPE = 24
EXP_PDU_SRC_PORT = 25
EXP_PDU_DST_PORT = 26
EXP_PDU_PT_UDP = 3  # Wireshark's port_type enum: the ports are shown as UDP's
# the kinds a serial line carries, and the Wireshark dissector that decodes each ("hil" is hil/wireshark/hil.lua)
UPPER_PDU_DISSECTORS = {"frame": "hil", "modbus_rtu": "mbrtu"}
UPPER_PDU_KINDS = {name: kind for kind, name in UPPER_PDU_DISSECTORS.items()}
TCP_SYN, TCP_ACK, TCP_PSH = 0x02, 0x10, 0x08
# IPv4 total length is 16 bits: header 20 + UDP 8 or TCP 20 leaves this much for a payload
MAX_PAYLOAD = 65535 - 40
COMMENT_TAG = "hil-link"
# our largest block: an EPB of a full IPv4 packet plus a 64 KiB annotation; a longer length is a corrupt one
MAX_BLOCK_BYTES = 1 << 18


class RecordingError(HilError):
    """A recording that is not a pcapng file this reader understands, or is corrupt before its end."""


class RecordedFrame(NamedTuple):
    """One frame as it crossed a link, in the order recorded."""

    link_name: str
    direction: str  # "rx" (received by the host) or "tx" (sent by the host)
    kind: str  # one of KINDS
    host_ns: int
    payload: bytes
    annotation: dict[str, Any] | None = None  # what the recording link added (JSON object), if anything


# ---- low-level encoding ---------------------------------------------------------------------------------


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


_EPB_INBOUND = _option(EPB_FLAGS, struct.pack("<I", EPB_INBOUND))
_EPB_OUTBOUND = _option(EPB_FLAGS, struct.pack("<I", EPB_OUTBOUND))
_EPB_CRC32_HEAD = struct.pack("<HHB", EPB_HASH, 5, HASH_CRC32)  # then the CRC-32 (LE) and 3 bytes of padding
_END_OF_OPTIONS = struct.pack("<HH", OPT_ENDOFOPT, 0)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(_option(c, v) for c, v in opts) + struct.pack("<HH", OPT_ENDOFOPT, 0)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of 16-bit big-endian words."""
    words = array.array("H", data + b"\0" * (len(data) % 2))
    if sys.byteorder == "little":
        words.byteswap()
    s = sum(words)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ipv4(src: bytes, dst: bytes, proto: int, ident: int, segment: bytes) -> bytes:
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), ident, 0x4000, 64, proto, 0, src, dst)
    return header[:10] + struct.pack(">H", internet_checksum(header)) + header[12:] + segment


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    # checksum 0 means "not computed", which IPv4 allows for UDP
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    header = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = struct.pack(">4s4sBBH", src, dst, 0, IP_PROTO_TCP, len(header) + len(payload))
    checksum = internet_checksum(pseudo + header + payload)
    return header[:16] + struct.pack(">H", checksum) + header[18:] + payload


def _tag(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


@functools.lru_cache(maxsize=256)
def _upper_pdu_tags(dissector: str, src: bytes, dst: bytes, port: int) -> bytes:
    """An exported-PDU record's tags: which dissector decodes the payload, the link's addresses for the columns
    (the same for every frame of a link, kind and direction)."""
    name = dissector.encode()
    return b"".join((
        _tag(EXP_PDU_DISSECTOR_NAME, name + b"\0" * (-len(name) % 4)),  # NUL-padded to 4, as Wireshark writes it
        _tag(EXP_PDU_IPV4_SRC, src), _tag(EXP_PDU_IPV4_DST, dst),
        _tag(EXP_PDU_PORT_TYPE, struct.pack(">I", EXP_PDU_PT_UDP)),
        _tag(EXP_PDU_SRC_PORT, struct.pack(">I", port)), _tag(EXP_PDU_DST_PORT, struct.pack(">I", port)),
        _tag(EXP_PDU_END, b""),
    ))


def _upper_pdu(dissector: str, src: bytes, dst: bytes, port: int, payload: bytes) -> bytes:
    """An exported-PDU record: its tags, then the payload."""
    return _upper_pdu_tags(dissector, src, dst, port) + payload


# ---- the writer -----------------------------------------------------------------------------------------


@dataclass
class _Link:
    name: str
    family: str
    peer: bytes
    ports: dict[str, int]
    host_tcp_port: int
    tcp_index: int  # numbers this link's synthetic TCP connection (its initial sequence numbers)
    interfaces: dict[int, int] = field(default_factory=dict)  # link type -> interface id, an IDB written on first use
    # synthetic TCP connection (host is the client): next sequence numbers each way, None before the handshake
    client_seq: int | None = None
    server_seq: int = 0


@dataclass
class RecorderCounters:
    frames: int = 0
    bytes: int = 0
    dropped_after_close: int = 0
    links: dict[str, int] = field(default_factory=dict)


class Recorder:
    """Streaming pcapng writer: Recorder(path).record(link, "rx"|"tx", payload, host_ns, kind), then close()."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        asterix_port: int = 8600,
        frame_port: int = 8700,
        modbus_rtu_port: int = 5020,
        modbus_tcp_port: int = 502,
        tsoffset_s: int | None = None,
    ) -> None:
        for name, port in (("asterix_port", asterix_port), ("frame_port", frame_port),
                           ("modbus_rtu_port", modbus_rtu_port), ("modbus_tcp_port", modbus_tcp_port)):
            if not 1 <= port <= 65535:
                raise ValueError(f"Recorder: {name} {port} is not a UDP/TCP port")
        bases = sorted((asterix_port, frame_port, modbus_rtu_port))
        if bases[1] - bases[0] < 64 or bases[2] - bases[1] < 64:
            # recordings before version 2 numbered one port per link above each base: apart, a port names one kind
            raise ValueError(f"Recorder: UDP port bases {bases} must be at least 64 apart")
        self.path = Path(path)
        self.asterix_port = asterix_port
        self.frame_port = frame_port
        self.modbus_rtu_port = modbus_rtu_port
        self.modbus_tcp_port = modbus_tcp_port
        # host_ns is the monotonic (or virtual) clock: shift it to the wall clock for Wireshark's display
        self.tsoffset_s = round((time.time_ns() - time.monotonic_ns()) / 1e9) if tsoffset_s is None else tsoffset_s
        self.counters = RecorderCounters()
        self._links: dict[str, _Link] = {}
        self._interfaces = 0
        self._families = {"radar": 0, "launcher": 0}
        self._ip_ident = 0
        self._host = HOST_PACKED
        self._lock = threading.Lock()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)  # section length unknown: we stream
        shb += _options([(SHB_USERAPPL, b"hil recording")])
        self._write(_block(SHB_TYPE, shb))

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:  # a regular file takes it all at once; loop anyway rather than assume
            n = os.write(self._fd, view)
            view = view[n:]

    def _link(self, name: str, kind: str) -> _Link:
        link = self._links.get(name)
        if link is not None:
            return link
        family = "radar" if kind in RADAR_KINDS else "launcher"
        index = self._families[family]
        self._families[family] += 1
        peer = ipaddress.IPv4Address(FIRST_PEER + len(self._links))
        # the registered ports on every link (the peer address tells links apart), so Wireshark needs no flags
        ports = {"asterix": self.asterix_port, "frame": self.frame_port, "modbus_rtu": self.modbus_rtu_port,
                 "modbus_tcp": self.modbus_tcp_port}
        link = _Link(name, family, peer.packed, ports, HOST_TCP_PORT + index, len(self._links))
        self._links[name] = link
        self.counters.links[name] = 0
        return link

    def _interface(self, link: _Link, kind: str) -> int:
        """The link's interface for this kind's encapsulation, its IDB written the first time."""
        linktype = LINKTYPE_UPPER_PDU if kind in UPPER_PDU_DISSECTORS else LINKTYPE_IPV4
        iface = link.interfaces.get(linktype)
        if iface is not None:
            return iface
        ports = link.ports
        peer = str(ipaddress.IPv4Address(link.peer))
        encapsulation = "upper_pdu" if linktype == LINKTYPE_UPPER_PDU else "ipv4"
        meta = {"tag": COMMENT_TAG, "version": 2, "link": link.name, "family": link.family, "host": HOST_ADDRESS,
                "peer": peer, "ports": ports, "host_tcp_port": link.host_tcp_port, "encapsulation": encapsulation}
        if linktype == LINKTYPE_UPPER_PDU:
            description = (f"hil {link.family} link {link.name}, serial line: Modbus RTU (dissector mbrtu), "
                           "hil frames (dissector hil: hil/wireshark/hil.lua)")
        else:
            description = (f"hil {link.family} link {link.name}: ASTERIX udp/{ports['asterix']}, "
                           f"Modbus/TCP tcp/{ports['modbus_tcp']}")
        body = struct.pack("<HHI", linktype, 0, 0) + _options([
            (IF_NAME, link.name.encode()),
            (IF_DESCRIPTION, description.encode()),
            (IF_TSRESOL, bytes([9])),
            (IF_TSOFFSET, struct.pack("<q", self.tsoffset_s)),
            (OPT_COMMENT, json.dumps(meta, sort_keys=True).encode()),
        ])
        self._write(_block(IDB_TYPE, body))
        iface = link.interfaces[linktype] = self._interfaces
        self._interfaces += 1
        return iface

    def _packet(self, iface: int, inbound: bool, host_ns: int, packet: bytes, comment: bytes = b"") -> bytes:
        """One enhanced packet block: the packet, its direction, its CRC-32 and the comment, if any (the options as
        _options would write them, packed at once: a frame is recorded for every one the links carry)."""
        n = len(packet)
        options = _EPB_INBOUND if inbound else _EPB_OUTBOUND
        options += _EPB_CRC32_HEAD + zlib.crc32(packet).to_bytes(4, "little") + b"\0" * 3
        if comment:
            options += _option(OPT_COMMENT, comment)
        body_len = 20 + n + (-n % 4) + len(options) + 4
        return b"".join((struct.pack("<IIIIIII", EPB_TYPE, 12 + body_len, iface, host_ns >> 32, host_ns & 0xFFFFFFFF,
                                     n, n), packet, b"\0" * (-n % 4), options, _END_OF_OPTIONS,
                         (12 + body_len).to_bytes(4, "little")))

    def _next_ident(self) -> int:
        self._ip_ident = (self._ip_ident + 1) & 0xFFFF
        return self._ip_ident

    def _tcp_packets(self, link: _Link, inbound: bool, host_ns: int, payload: bytes, comment: bytes) -> list[bytes]:
        host, peer = self._host, link.peer
        hport, pport = link.host_tcp_port, link.ports["modbus_tcp"]
        out = []
        if link.client_seq is None:
            # a handshake first, so Wireshark shows the connection from its start with relative numbers
            isn_c, isn_s = 1_000_000 * (link.tcp_index + 1), 2_000_000 * (link.tcp_index + 1)
            out.append((False, _tcp(host, peer, hport, pport, isn_c, 0, TCP_SYN, b""), host, peer))
            out.append((True, _tcp(peer, host, pport, hport, isn_s, isn_c + 1, TCP_SYN | TCP_ACK, b""), peer, host))
            out.append((False, _tcp(host, peer, hport, pport, isn_c + 1, isn_s + 1, TCP_ACK, b""), host, peer))
            link.client_seq, link.server_seq = isn_c + 1, isn_s + 1
        if inbound:
            seg = _tcp(peer, host, pport, hport, link.server_seq, link.client_seq, TCP_PSH | TCP_ACK, payload)
            out.append((True, seg, peer, host))
            link.server_seq = (link.server_seq + len(payload)) & 0xFFFFFFFF
        else:
            seg = _tcp(host, peer, hport, pport, link.client_seq, link.server_seq, TCP_PSH | TCP_ACK, payload)
            out.append((False, seg, host, peer))
            link.client_seq = (link.client_seq + len(payload)) & 0xFFFFFFFF
        # the annotation belongs to the segment carrying the ADU (the last one), not to the handshake
        iface = self._interface(link, "modbus_tcp")
        return [self._packet(iface, d, host_ns, _ipv4(s, t, IP_PROTO_TCP, self._next_ident(), seg),
                             comment if k == len(out) - 1 else b"")
                for k, (d, seg, s, t) in enumerate(out)]

    def record(self, link_name: str, direction: str, payload: bytes | bytearray | memoryview, host_ns: int,
               kind: str, annotation: Mapping[str, Any] | None = None) -> None:
        """Append one frame; it is in the file (the kernel's page cache) when this returns.

        annotation: an optional JSON-ready mapping stored with the frame (its packet comment) and given back
        by read_recording() as RecordedFrame.annotation. Floats keep their exact value (JSON repr round-trips).
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"Recorder.record: direction {direction!r} is not one of {DIRECTIONS}")
        if kind not in KINDS:
            raise ValueError(f"Recorder.record: kind {kind!r} is not one of {KINDS}")
        data = bytes(payload)
        if len(data) > MAX_PAYLOAD:
            raise ValueError(f"Recorder.record: {len(data)}-byte payload does not fit one IPv4 packet")
        host_ns = int(host_ns)
        if not 0 <= host_ns < 1 << 64:
            raise ValueError(f"Recorder.record: host_ns {host_ns} outside 0..2**64-1")
        comment = b""
        if annotation is not None:
            # allow_nan=False: NaN is not JSON, and a comment other readers cannot parse helps nobody
            comment = json.dumps(dict(annotation), separators=(",", ":"), allow_nan=False).encode()
            if len(comment) > 0xFFFF:
                raise ValueError(f"Recorder.record: {len(comment)}-byte annotation does not fit one pcapng option")
        with self._lock:
            if self._fd is None:
                # a link still talking while the run shuts down must not crash it: count and move on
                if not self.counters.dropped_after_close:
                    log.warning("recording %s is closed: dropping frames from %s", self.path, link_name)
                self.counters.dropped_after_close += 1
                return
            link = self._link(link_name, kind)
            inbound = direction == "rx"
            src, dst = (link.peer, self._host) if inbound else (self._host, link.peer)
            port = link.ports[kind]
            if kind == "modbus_tcp":
                blocks = self._tcp_packets(link, inbound, host_ns, data, comment)
            elif kind in UPPER_PDU_DISSECTORS:
                packet = _upper_pdu(UPPER_PDU_DISSECTORS[kind], src, dst, port, data)
                blocks = [self._packet(self._interface(link, kind), inbound, host_ns, packet, comment)]
            else:
                packet = _ipv4(src, dst, IP_PROTO_UDP, self._next_ident(), _udp(port, port, data))
                blocks = [self._packet(self._interface(link, kind), inbound, host_ns, packet, comment)]
            self._write(b"".join(blocks))
            self.counters.frames += 1
            self.counters.bytes += len(data)
            self.counters.links[link_name] += 1

    __call__ = record

    def close(self, fsync: bool = False) -> None:
        """Close the file (again: no-op); fsync first when asked (the end of a run, not its every frame)."""
        with self._lock:
            if self._fd is not None:
                try:
                    if fsync:
                        os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the reader -----------------------------------------------------------------------------------------


@dataclass
class _Interface:
    name: str
    linktype: int
    meta: dict[str, object] | None
    udp_kinds: dict[int, str]


def _parse_options(data: bytes, endian: str) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos + 4 <= len(data):
        code, length = struct.unpack_from(endian + "HH", data, pos)
        pos += 4
        if code == OPT_ENDOFOPT:
            break
        if pos + length > len(data):
            raise RecordingError(f"option {code} of {length} bytes runs past its block")
        out.append((code, data[pos:pos + length]))
        pos += length + (-length % 4)
    return out


def _interface(body: bytes, endian: str) -> _Interface:
    if len(body) < 8:
        raise RecordingError("Interface Description Block shorter than its fixed fields")
    (linktype,) = struct.unpack_from(endian + "H", body, 0)
    name = ""
    meta: dict[str, object] | None = None
    tsresol = bytes([6])  # the pcapng default: microseconds
    for code, value in _parse_options(body[8:], endian):
        if code == IF_NAME:
            name = value.decode("utf-8", "replace")
        elif code == OPT_COMMENT:
            with contextlib.suppress(ValueError):
                candidate = json.loads(value.decode("utf-8"))
                if isinstance(candidate, dict) and candidate.get("tag") == COMMENT_TAG:
                    meta = candidate
        elif code == IF_TSRESOL:
            tsresol = value[:1]
    udp_kinds: dict[int, str] = {}
    if meta is not None:
        if tsresol != bytes([9]):
            raise RecordingError(f"interface {name!r}: timestamp resolution {tsresol.hex()} is not ns")
        ports = meta.get("ports")
        if not isinstance(ports, dict) or not all(isinstance(v, int) for v in ports.values()):
            raise RecordingError(f"interface {name!r}: comment has no port map")
        # a kind this reader does not know (a newer writer, or a damaged comment) is not decoded as another one
        udp_kinds = {port: kind for kind, port in ports.items() if kind in KINDS and kind != "modbus_tcp"}
        name = str(meta.get("link", name))
    return _Interface(name, linktype, meta, udp_kinds)


def _annotation(value: bytes) -> dict[str, Any] | None:
    """A packet comment that is a JSON object (ours); anything else (a comment typed in Wireshark) is no annotation."""
    try:
        candidate = json.loads(value.decode("utf-8"))
    except ValueError:
        return None
    return candidate if isinstance(candidate, dict) else None


def _upper_pdu_payload(packet: bytes) -> tuple[str, bytes, bytes] | None:
    """(kind, payload, source address) of an exported-PDU record; None for a dissector that is not one of ours."""
    pos, dissector, src = 0, "", b""
    while True:
        if pos + 4 > len(packet):
            raise RecordingError("exported-PDU tags run past their packet")
        tag, length = struct.unpack_from(">HH", packet, pos)
        pos += 4
        if tag == EXP_PDU_END:
            break
        if pos + length > len(packet):
            raise RecordingError(f"exported-PDU tag {tag} of {length} bytes runs past its packet")
        if tag == EXP_PDU_DISSECTOR_NAME:
            dissector = packet[pos:pos + length].rstrip(b"\0").decode("ascii", "replace")
        elif tag == EXP_PDU_IPV4_SRC:
            src = packet[pos:pos + length]
        pos += length
    kind = UPPER_PDU_KINDS.get(dissector)
    return None if kind is None else (kind, packet[pos:], src)


def _frame(iface: _Interface, body: bytes, endian: str) -> RecordedFrame | None:
    if len(body) < 20:
        raise RecordingError("Enhanced Packet Block shorter than its fixed fields")
    _, ts_hi, ts_lo, caplen, _ = struct.unpack_from(endian + "IIIII", body, 0)
    if 20 + caplen > len(body):
        raise RecordingError(f"packet of {caplen} bytes runs past its block")
    packet = body[20:20 + caplen]
    flags = 0
    annotation: dict[str, Any] | None = None
    for code, value in _parse_options(body[20 + caplen + (-caplen % 4):], endian):
        if code == EPB_FLAGS and len(value) == 4:
            (flags,) = struct.unpack(endian + "I", value)
        elif code == OPT_COMMENT:
            annotation = _annotation(value)
        elif code == EPB_HASH and len(value) == 5 and value[0] == HASH_CRC32:
            (crc,) = struct.unpack(endian + "I", value[1:])
            if crc != zlib.crc32(packet):
                raise RecordingError(f"packet of {caplen} bytes fails its CRC-32 (a flipped bit?)")
    host_ns = (ts_hi << 32) | ts_lo
    if iface.linktype == LINKTYPE_UPPER_PDU:
        found = _upper_pdu_payload(packet)
        if found is None:
            return None
        pdu_kind, payload, src = found
        inbound = (flags & 0b11) == EPB_INBOUND if flags & 0b11 else src != HOST_PACKED
        return RecordedFrame(iface.name, "rx" if inbound else "tx", pdu_kind, host_ns, payload, annotation)
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    proto = packet[9]
    # the EPB's direction flag, or (from another writer) whether the host address is the destination
    direction_bits = flags & 0b11
    inbound = direction_bits == EPB_INBOUND if direction_bits else packet[16:20] == HOST_PACKED
    direction = "rx" if inbound else "tx"
    seg = packet[ihl:]
    if proto == IP_PROTO_UDP and len(seg) >= 8:
        (port,) = struct.unpack_from(">H", seg, 2)
        kind = iface.udp_kinds.get(port)
        if kind is None:
            return None
        return RecordedFrame(iface.name, direction, kind, host_ns, seg[8:], annotation)
    if proto == IP_PROTO_TCP and len(seg) >= 20:
        offset = (seg[12] >> 4) * 4
        payload = seg[offset:]
        if not payload:
            return None  # handshake and bare ACKs carry no ADU
        return RecordedFrame(iface.name, direction, "modbus_tcp", host_ns, payload, annotation)
    return None


def _truncated(path: Path, offset: int) -> str:
    return f"{path}: recording ends mid-block at byte {offset}"


def _blocks(f: BinaryIO, path: Path) -> Iterator[tuple[int, int, bytes, str]]:
    """(byte offset, block type, body, endianness) of each complete block; a cut-off last block ends the file
    quietly (recording_end() says where)."""
    endian = "<"
    offset = 0
    first = True
    while True:
        head = f.read(8)
        if len(head) < 8:
            if head:
                log.info("%s (a run that was killed?)", _truncated(path, offset))
            return
        btype_le = struct.unpack("<I", head[:4])[0]
        if first:
            if btype_le != SHB_TYPE:
                raise RecordingError(f"{path} is not a pcapng file (starts with {head[:4].hex()})")
            magic = f.read(4)
            if len(magic) < 4:
                log.info("%s (a run that was killed?)", _truncated(path, offset))
                return
            if magic == struct.pack("<I", BYTE_ORDER_MAGIC):
                endian = "<"
            elif magic == struct.pack(">I", BYTE_ORDER_MAGIC):
                endian = ">"
            else:
                raise RecordingError(f"{path}: bad byte-order magic {magic.hex()}")
            head += magic
            first = False
        elif btype_le == SHB_TYPE:
            raise RecordingError(f"{path}: a second section at byte {offset} is not supported")
        btype, total = struct.unpack_from(endian + "II", head, 0)
        if total < 12 or total % 4 or total > MAX_BLOCK_BYTES:
            raise RecordingError(f"{path}: block at byte {offset} has impossible length {total}")
        rest = f.read(total - len(head))
        if len(rest) < total - len(head):
            log.info("%s (a run that was killed?)", _truncated(path, offset))
            return
        block = head + rest
        (trailer,) = struct.unpack_from(endian + "I", block, total - 4)
        if trailer != total:
            raise RecordingError(f"{path}: block at byte {offset} has trailer {trailer}, not {total}")
        yield offset, btype, block[8:total - 4], endian
        offset += total


def recording_end(path: str | os.PathLike[str]) -> str | None:
    """Where a recording stops short, in one line ("<file>: recording ends mid-block at byte N"), or None when it
    ends on a block boundary (an empty file included). Reads only the block lengths; RecordingError (naming the
    file) for a length no block of ours can have."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(12)
        if not head:
            return None
        if len(head) < 12:
            return _truncated(p, 0)
        endian = ">" if head[8:12] == struct.pack(">I", BYTE_ORDER_MAGIC) else "<"
        offset = 0
        while offset < size:
            if size - offset < 8:
                return _truncated(p, offset)
            f.seek(offset + 4)
            (total,) = struct.unpack(endian + "I", f.read(4))
            if total < 12 or total % 4 or total > MAX_BLOCK_BYTES:
                raise RecordingError(f"{p}: block at byte {offset} has impossible length {total}")
            if offset + total > size:
                return _truncated(p, offset)
            offset += total
    return None


def read_recording(path: str | os.PathLike[str]) -> Iterator[RecordedFrame]:
    """Frames of a recording written by Recorder, in file order; packets of foreign interfaces are skipped."""
    p = Path(path)
    interfaces: list[_Interface] = []
    with open(p, "rb") as f:
        for offset, btype, body, endian in _blocks(f, p):
            try:
                if btype == SHB_TYPE:
                    continue
                if btype == IDB_TYPE:
                    interfaces.append(_interface(body, endian))
                elif btype == EPB_TYPE:
                    if len(body) < 4:
                        raise RecordingError("Enhanced Packet Block shorter than its fixed fields")
                    (iface_id,) = struct.unpack_from(endian + "I", body, 0)
                    if iface_id >= len(interfaces):
                        raise RecordingError(f"packet on interface {iface_id} which was never described")
                    iface = interfaces[iface_id]
                    if iface.meta is None or iface.linktype not in (LINKTYPE_IPV4, LINKTYPE_UPPER_PDU):
                        continue
                    frame = _frame(iface, body, endian)
                    if frame is not None:
                        yield frame
            except RecordingError as e:
                raise RecordingError(f"{p}: block at byte {offset}: {e}") from None
