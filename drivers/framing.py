"""Serial framing of the radar link (docs/PROTOCOLS.md §1): HDLC-stuffed frames with CRC, and their payloads."""

from __future__ import annotations

import binascii
import enum
import logging
import struct
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FLAG = 0x7E
ESCAPE = 0x7D
ESCAPE_XOR = 0x20
FLAG_BYTE, ESCAPE_BYTE = bytes([FLAG]), bytes([ESCAPE])
HEADER_LEN = 11  # frame type u8, seq u16, t_us u64
CRC_LEN = 2
MAX_PAYLOAD = 1024
MIN_CONTENT = HEADER_LEN + CRC_LEN
MAX_CONTENT = MIN_CONTENT + MAX_PAYLOAD
# A forward seq jump of at least half the counter range is read as the sender restarting, not as loss.
SEQ_RESET_GAP = 0x8000
RECENT_FRAMES = 32  # frames remembered by (seq, board time) to recognise one that comes again (ext/decode.pxd)

STIMULUS_START = 0x01
STIMULUS_END = 0x02
STIMULUS_CHUNK = 32
STIMULUS_RECORD = struct.Struct("<HHffffff")
NO_MODE3A = 0xFFFF

log = logging.getLogger(__name__)


class FrameType(enum.IntEnum):
    ASTERIX = 0x01
    STIMULUS = 0x02
    SENSOR_CONFIG = 0x03
    TIME_SYNC_REQ = 0x10
    TIME_SYNC_RESP = 0x11
    IDENT_REQ = 0x20
    IDENT_RESP = 0x21
    STATUS = 0x30
    LOG = 0x7F


KNOWN_TYPES = frozenset(int(t) for t in FrameType)


class PayloadError(ValueError):
    """A frame payload that does not match the layout of its frame type."""


def crc16_ccitt(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor), as the firmware computes it.

    binascii.crc_hqx is exactly this CRC given the init value (tests check it bit by bit and against the
    firmware's C); in C it runs about 25-37 times faster than a table loop in Python."""
    return binascii.crc_hqx(data, crc)


def stuff(content: bytes) -> bytes:
    """HDLC byte stuffing of frame content (without the flags)."""
    return content.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")


def encode_frame(ftype: int, seq: int, t_us: int, payload: bytes = b"") -> bytes:
    """One complete frame on the wire, opening and closing flags included."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    content = struct.pack("<BHQ", ftype, seq & 0xFFFF, t_us & 0xFFFF_FFFF_FFFF_FFFF) + bytes(payload)
    content += struct.pack(">H", crc16_ccitt(content))
    return b"\x7e" + stuff(content) + b"\x7e"


@dataclass(frozen=True)
class Frame:
    ftype: int
    seq: int
    t_us: int
    payload: bytes


class RateLimitedLog:
    """At most `burst` log lines per `interval_s` per limiter, then one line saying how many were suppressed."""

    def __init__(self, logger: logging.Logger, burst: int = 10, interval_s: float = 10.0) -> None:
        self.logger, self.burst, self.interval_s = logger, burst, interval_s
        self._window_start = -float("inf")
        self._in_window = 0
        self.suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.interval_s:
            if self.suppressed:
                self.logger.warning("%d similar messages suppressed", self.suppressed)
            self._window_start, self._in_window, self.suppressed = now, 0, 0
        if self._in_window < self.burst:
            self._in_window += 1
            self.logger.warning(msg, *args)
        else:
            self.suppressed += 1


REJECT_REASONS = ("crc", "length", "escape", "unknown_type")


@dataclass
class FrameCounters:
    frames_ok: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    bytes_discarded: int = 0  # bytes outside any frame, or in a rejected frame
    seq_gaps: int = 0  # events where at least one frame went missing
    frames_lost: int = 0  # sum of those gaps
    seq_resets: int = 0  # the sender restarted its counter (board reset)
    duplicates: int = 0  # the frame just taken in, again (not decoded twice)


class FrameDecoder:
    """Pure-Python stream decoder: feed any chunks of bytes, get whole checked frames back.

    Resyncs on every flag; what it rejects it counts (counters) and logs, rate-limited.
    """

    def __init__(self, name: str = "link", logger: logging.Logger | None = None) -> None:
        self.name = name
        self.counters = FrameCounters()
        self._log = RateLimitedLog(logger or log)
        self._buf = bytearray()
        self._in_frame = False
        self._escaped = False
        self._overlong = False
        self._last_seq: int | None = None
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_FRAMES)  # (seq, board time) of recent frames

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Whole checked frames out of any chunk of bytes. The chunk is cut at the flags and each piece between
        them taken at once (bytes.find for the escapes): the same frames, counters and rejections as one byte at
        a time (_feed_bytes, which takes a piece that could run past a frame's length)."""
        out: list[Frame] = []
        data = bytes(data)
        pos, n = 0, len(data)
        while pos < n:
            flag = data.find(FLAG_BYTE, pos)
            end = n if flag < 0 else flag
            if end > pos:
                self._take(data[pos:end], out)
            if flag < 0:
                break
            self._flag(out)
            pos = flag + 1
        return out

    def _flag(self, out: list[Frame]) -> None:
        """A flag: it closes the frame in progress (if any) and opens the next."""
        if self._in_frame and (self._buf or self._escaped or self._overlong):
            frame = self._close()
            if frame is not None:
                out.append(frame)
        self._in_frame = True
        self._buf.clear()
        self._escaped = self._overlong = False

    def _take(self, piece: bytes, out: list[Frame]) -> None:
        """Bytes between flags."""
        if not self._in_frame or self._overlong:
            self.counters.bytes_discarded += len(piece)
            return
        if len(self._buf) + len(piece) > MAX_CONTENT:
            self._feed_bytes(piece, out)  # it may overrun: byte by byte, as the definition counts it
            return
        buf, i = self._buf, 0
        if self._escaped:
            buf.append(piece[0] ^ ESCAPE_XOR)
            self._escaped = False
            i = 1
        while True:
            k = piece.find(ESCAPE_BYTE, i)
            if k < 0:
                buf += piece[i:]
                return
            buf += piece[i:k]
            if k + 1 < len(piece):
                buf.append(piece[k + 1] ^ ESCAPE_XOR)  # an escape escapes whatever follows, an escape too
                i = k + 2
            else:
                self._escaped = True
                return

    def _feed_bytes(self, data: bytes, out: list[Frame]) -> None:
        """One byte at a time: the definition feed() follows, used where a frame may run past its length."""
        c = self.counters
        for b in data:
            if b == FLAG:
                self._flag(out)
            elif not self._in_frame or self._overlong:
                c.bytes_discarded += 1
            elif self._escaped:
                self._buf.append(b ^ ESCAPE_XOR)
                self._escaped = False
            elif b == ESCAPE:
                self._escaped = True
            else:
                self._buf.append(b)
            if self._in_frame and not self._overlong and len(self._buf) > MAX_CONTENT:
                # Do not buffer garbage without bound: the frame is already too long, wait for the next flag.
                self._reject("length", f"longer than {MAX_CONTENT} bytes", len(self._buf))
                self._overlong = True
                self._buf.clear()

    def _reject(self, reason: str, detail: str, nbytes: int) -> None:
        self.counters.rejected[reason] += 1
        self.counters.bytes_discarded += nbytes
        self._log.warning("%s: frame rejected (%s): %s", self.name, reason, detail)

    def _close(self) -> Frame | None:
        buf = self._buf
        if self._overlong:
            return None
        if self._escaped:
            self._reject("escape", "escape byte right before a flag", len(buf) + 1)
            return None
        if len(buf) < MIN_CONTENT:
            self._reject("length", f"{len(buf)} bytes, shorter than {MIN_CONTENT}", len(buf))
            return None
        got = (buf[-2] << 8) | buf[-1]
        want = crc16_ccitt(buf[:-2])
        if got != want:
            self._reject("crc", f"crc {got:04x} != {want:04x} over {len(buf)} bytes", len(buf))
            return None
        ftype, seq, t_us = struct.unpack_from("<BHQ", buf)
        if ftype not in KNOWN_TYPES:
            self._reject("unknown_type", f"type 0x{ftype:02x}", len(buf))
            return None
        if (seq, t_us) in self._recent:
            # a frame taken in a moment ago, again (a link that repeats itself): counted, not decoded twice, and not
            # a board that restarted its counter (that one's clock starts over too)
            self.counters.duplicates += 1
            self.counters.bytes_discarded += len(buf)
            return None
        self._recent.append((seq, t_us))
        self._track_seq(seq)
        self.counters.frames_ok += 1
        return Frame(ftype, seq, t_us, bytes(buf[HEADER_LEN:-2]))

    def _track_seq(self, seq: int) -> None:
        c = self.counters
        if self._last_seq is not None:
            gap = (seq - self._last_seq - 1) & 0xFFFF
            if gap >= SEQ_RESET_GAP:
                c.seq_resets += 1
                self._log.warning("%s: sequence jumped from %d to %d: sender restarted", self.name,
                                  self._last_seq, seq)
            elif gap:
                c.seq_gaps += 1
                c.frames_lost += gap
        self._last_seq = seq


# ---- payloads -----------------------------------------------------------------------------------------

_SENSOR_CONFIG = struct.Struct("<12fI4Bf")


@dataclass(frozen=True)
class SensorConfig:
    """Radar sensor settings sent to a board (SENSOR_CONFIG frame), SI units."""

    site_x: float
    site_y: float
    site_z: float
    scan_period_s: float
    sigma_range_m: float
    sigma_azimuth_rad: float
    sigma_elevation_rad: float
    sigma_range_rate_mps: float
    pd: float
    clutter_per_scan: float
    max_range_m: float
    iff_reply_p: float
    seed: int
    sac: int
    sic: int
    sectors: int
    north_offset_rad: float = 0.0

    SIZE = _SENSOR_CONFIG.size

    def encode(self) -> bytes:
        return _SENSOR_CONFIG.pack(
            self.site_x, self.site_y, self.site_z, self.scan_period_s, self.sigma_range_m,
            self.sigma_azimuth_rad, self.sigma_elevation_rad, self.sigma_range_rate_mps, self.pd,
            self.clutter_per_scan, self.max_range_m, self.iff_reply_p, self.seed & 0xFFFF_FFFF,
            self.sac, self.sic, self.sectors, 0, self.north_offset_rad,
        )

    @classmethod
    def decode(cls, payload: bytes) -> SensorConfig:
        if len(payload) != _SENSOR_CONFIG.size:
            raise PayloadError(f"SENSOR_CONFIG payload is {len(payload)} bytes, expected {_SENSOR_CONFIG.size}")
        v = _SENSOR_CONFIG.unpack(payload)
        names = [f for f in cls.__dataclass_fields__ if f != "north_offset_rad"]
        return cls(**dict(zip(names, v[:16], strict=True)), north_offset_rad=v[17])


@dataclass(frozen=True)
class StimulusChunk:
    """One decoded STIMULUS payload: states are ENU [count, 6] (x, y, z, vx, vy, vz), mode3a -1 = none."""

    flags: int
    ids: npt.NDArray[np.int64]
    mode3a: npt.NDArray[np.int32]
    states: npt.NDArray[np.float64]

    @property
    def start(self) -> bool:
        return bool(self.flags & STIMULUS_START)

    @property
    def end(self) -> bool:
        return bool(self.flags & STIMULUS_END)


_STIM_DTYPE = np.dtype([("id", "<u2"), ("mode3a", "<u2"), ("state", "<f4", (6,))])


def encode_stimulus(ids: npt.ArrayLike, mode3a: npt.ArrayLike, states: npt.ArrayLike) -> list[bytes]:
    """STIMULUS payloads for one truth set: chunks of <= 32 records, START on the first, END on the last."""
    ids_a = np.asarray(ids, dtype=np.int64).reshape(-1)
    m3a = np.asarray(mode3a, dtype=np.int64).reshape(-1)
    st = np.asarray(states, dtype=np.float64).reshape(-1, 6)
    n = len(ids_a)
    if len(m3a) != n or len(st) != n:
        raise ValueError(f"ids ({n}), mode3a ({len(m3a)}) and states ({len(st)}) differ in length")
    if n and (ids_a.min() < 0 or ids_a.max() > 0xFFFF):
        raise ValueError("target ids must fit in u16")
    if n and ((m3a < -1) | (m3a > 0o7777)).any():
        raise ValueError("mode3a must be -1 (none) or a 12-bit code")
    rec = np.zeros(n, dtype=_STIM_DTYPE)
    rec["id"] = ids_a
    rec["mode3a"] = np.where(m3a < 0, NO_MODE3A, m3a)
    rec["state"] = st
    starts = list(range(0, n, STIMULUS_CHUNK)) or [0]
    out = []
    for k, i in enumerate(starts):
        flags = (STIMULUS_START if k == 0 else 0) | (STIMULUS_END if k == len(starts) - 1 else 0)
        chunk = rec[i : i + STIMULUS_CHUNK]
        out.append(struct.pack("<BB", flags, len(chunk)) + chunk.tobytes())
    return out


def decode_stimulus(payload: bytes) -> StimulusChunk:
    if len(payload) < 2:
        raise PayloadError("STIMULUS payload shorter than its 2-byte header")
    flags, count = payload[0], payload[1]
    if count > STIMULUS_CHUNK:
        raise PayloadError(f"STIMULUS count {count} exceeds {STIMULUS_CHUNK}")
    if len(payload) != 2 + count * STIMULUS_RECORD.size:
        raise PayloadError(f"STIMULUS payload is {len(payload)} bytes for {count} records")
    rec = np.frombuffer(payload, dtype=_STIM_DTYPE, offset=2, count=count)
    m3a = rec["mode3a"].astype(np.int32)
    m3a[m3a == NO_MODE3A] = -1
    return StimulusChunk(flags, rec["id"].astype(np.int64), m3a, rec["state"].astype(np.float64))


_SYNC_REQ = struct.Struct("<I")
_SYNC_RESP = struct.Struct("<IQQ")
_STATUS = struct.Struct("<IIII")


def encode_time_sync_req(token: int) -> bytes:
    return _SYNC_REQ.pack(token & 0xFFFF_FFFF)


def decode_time_sync_req(payload: bytes) -> int:
    if len(payload) != _SYNC_REQ.size:
        raise PayloadError(f"TIME_SYNC_REQ payload is {len(payload)} bytes, expected {_SYNC_REQ.size}")
    return int(_SYNC_REQ.unpack(payload)[0])


def encode_time_sync_resp(token: int, board_rx_us: int, board_tx_us: int) -> bytes:
    return _SYNC_RESP.pack(token & 0xFFFF_FFFF, board_rx_us, board_tx_us)


def decode_time_sync_resp(payload: bytes) -> tuple[int, int, int]:
    """(token, board_rx_us, board_tx_us)."""
    if len(payload) != _SYNC_RESP.size:
        raise PayloadError(f"TIME_SYNC_RESP payload is {len(payload)} bytes, expected {_SYNC_RESP.size}")
    token, rx, tx = _SYNC_RESP.unpack(payload)
    return int(token), int(rx), int(tx)


@dataclass(frozen=True)
class Ident:
    name: str
    version: str
    build: str

    def __str__(self) -> str:
        return f"{self.name};{self.version};{self.build}"


def encode_ident(name: str, version: str, build: str) -> bytes:
    text = f"{name};{version};{build}"
    if not text.isascii():
        raise ValueError("IDENT text must be ASCII")
    return text.encode("ascii")


def decode_ident(payload: bytes) -> Ident:
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as e:
        raise PayloadError(f"IDENT_RESP is not ASCII: {payload[:32]!r}") from e
    parts = text.split(";")
    if len(parts) != 3:
        raise PayloadError(f"IDENT_RESP {text[:64]!r} is not name;version;build")
    return Ident(*parts)


@dataclass(frozen=True)
class BoardStatus:
    plots_sent: int
    frames_rx: int
    frames_rejected: int
    overruns: int


def encode_status(status: BoardStatus) -> bytes:
    return _STATUS.pack(status.plots_sent, status.frames_rx, status.frames_rejected, status.overruns)


def decode_status(payload: bytes) -> BoardStatus:
    if len(payload) != _STATUS.size:
        raise PayloadError(f"STATUS payload is {len(payload)} bytes, expected {_STATUS.size}")
    return BoardStatus(*_STATUS.unpack(payload))
