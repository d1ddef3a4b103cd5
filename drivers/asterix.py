"""ASTERIX CAT048 plots and CAT034 service messages (docs/PROTOCOLS.md §2): encoders and a checking decoder."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hil.geo import METRES_PER_FOOT, METRES_PER_NM

CAT048 = 48
CAT034 = 34
TOD_LSB_S = 1.0 / 128.0
TOD_WRAP = 86400 * 128
RHO_LSB_M = METRES_PER_NM / 256.0
THETA_LSB_RAD = 2.0 * math.pi / 65536.0
SECTOR_LSB_RAD = 2.0 * math.pi / 256.0
HEIGHT_LSB_M = 25.0 * METRES_PER_FOOT
TYP_PSR = 1
TYP_PSR_SSR = 3
MSG_NORTH_MARKER = 1
MSG_SECTOR_CROSSING = 2


class AsterixError(ValueError):
    """ASTERIX data that cannot be decoded (or a value that cannot be encoded)."""


class AsterixTruncated(AsterixError):
    """A block, record or item runs past the end of the data, or a block length is impossible."""


class AsterixUnknownCategory(AsterixError):
    """A data block of a category this decoder does not handle."""


class AsterixOutOfRange(AsterixError):
    """A field whose value is outside what the item allows."""


class AsterixUnsupported(AsterixError):
    """An FSPEC bit or compound subfield that the UAP marks spare or does not define."""


class AsterixMissingItem(AsterixError):
    """A record without an item the host needs (CAT048: I010, I140, I040; CAT034: I010, I000, I030)."""


# ---- item layout tables (shared by the decoders: the Cython kernel mirrors them as C arrays) -------------
# kind codes: fixed length n, extended (1-byte parts with FX), repetitive (rep byte, then rep x n),
# explicit (length byte counts itself), compound (primary subfield with FX, subfields each fixed/rep).
FIXED, EXTENDED, REPETITIVE, EXPLICIT, COMPOUND = 0, 1, 2, 3, 4
NONE = (-1, 0)  # spare FRN / spare subfield

# compound subfields as (kind, size); NONE for spare
_CAT048_I130 = [(FIXED, 1)] * 7
_CAT048_I120 = [(FIXED, 2), (REPETITIVE, 6)]
_CAT034_I050 = [(FIXED, 1), NONE, NONE, (FIXED, 1), (FIXED, 1), (FIXED, 2)]
_CAT034_I060 = [(FIXED, 1), NONE, NONE, (FIXED, 1), (FIXED, 1), (FIXED, 1)]

# UAP in FRN order: (item name, kind, size or compound subfields)
UAP: dict[int, list[tuple[str, int, object]]] = {
    CAT048: [
        ("010", FIXED, 2), ("140", FIXED, 3), ("020", EXTENDED, 1), ("040", FIXED, 4), ("070", FIXED, 2),
        ("090", FIXED, 2), ("130", COMPOUND, _CAT048_I130), ("220", FIXED, 3), ("240", FIXED, 6),
        ("250", REPETITIVE, 8), ("161", FIXED, 2), ("042", FIXED, 4), ("200", FIXED, 4), ("170", EXTENDED, 1),
        ("210", FIXED, 4), ("030", EXTENDED, 1), ("080", FIXED, 2), ("100", FIXED, 4), ("110", FIXED, 2),
        ("120", COMPOUND, _CAT048_I120), ("230", FIXED, 2), ("260", FIXED, 7), ("055", FIXED, 1),
        ("050", FIXED, 2), ("065", FIXED, 1), ("060", FIXED, 2), ("SP", EXPLICIT, 0), ("RE", EXPLICIT, 0),
    ],
    CAT034: [
        ("010", FIXED, 2), ("000", FIXED, 1), ("030", FIXED, 3), ("020", FIXED, 1), ("041", FIXED, 2),
        ("050", COMPOUND, _CAT034_I050), ("060", COMPOUND, _CAT034_I060), ("070", REPETITIVE, 2),
        ("100", FIXED, 8), ("110", FIXED, 1), ("120", FIXED, 8), ("090", FIXED, 2), ("RE", EXPLICIT, 0),
        ("SP", EXPLICIT, 0),
    ],
}


# ---- decoded records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cat048Plot:
    """One CAT048 target report in SI: NaN / -1 where the item is absent."""

    sac: int
    sic: int
    tod_s: float
    typ: int
    range_m: float
    azimuth_rad: float
    height_m: float
    range_rate_mps: float
    mode3a: int
    plot_number: int


@dataclass(frozen=True)
class Cat034Message:
    """One CAT034 service message in SI: NaN where the item is absent."""

    sac: int
    sic: int
    message_type: int
    tod_s: float
    sector_azimuth_rad: float
    rotation_period_s: float

    @property
    def is_north(self) -> bool:
        return self.message_type == MSG_NORTH_MARKER


@dataclass(frozen=True)
class ServiceEvent:
    """A CAT034 message as a link decoder hands it back: board time of its frame (µs) and host receive time."""

    board_t_us: int
    host_rx_ns: int
    message: Cat034Message


@dataclass(frozen=True)
class AsterixPayload:
    """The raw ASTERIX data blocks of one received frame or datagram (for recording)."""

    host_rx_ns: int
    payload: bytes


# ---- encoders -------------------------------------------------------------------------------------------


def _block(cat: int, records: Sequence[bytes]) -> bytes:
    body = b"".join(records)
    if len(body) + 3 > 0xFFFF:
        raise AsterixOutOfRange(f"CAT{cat:03d} block of {len(body) + 3} bytes exceeds 65535")
    return struct.pack(">BH", cat, len(body) + 3) + body


def _fspec(frns: Sequence[int]) -> bytes:
    nbytes = (max(frns) + 6) // 7
    out = bytearray(nbytes)
    for frn in frns:
        out[(frn - 1) // 7] |= 0x80 >> ((frn - 1) % 7)
    for i in range(nbytes - 1):
        out[i] |= 0x01
    return bytes(out)


def _tod_unit(tod_s: float) -> int:
    """_tod_units of one finite time in plain floats: the same rounding (half to even), without numpy's cost."""
    return round((tod_s % 86400.0) * 128.0) % TOD_WRAP


def _tod_units(tod_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.mod(np.round(np.mod(np.asarray(tod_s, dtype=np.float64), 86400.0) * 128.0), TOD_WRAP).astype(np.int64)


def _check_range(name: str, values: npt.NDArray[np.int64], lo: int, hi: int, unit: str) -> None:
    bad = (values < lo) | (values > hi)
    if bad.any():
        raise AsterixOutOfRange(f"{name} {values[bad][0]} {unit} outside {lo}..{hi}")


SMALL_BLOCK = 8  # plots in a block up to which encode_cat048_block works in plain floats


def _cat048_records_small(sac: int, sic: int, tod_s: list[float], range_m: list[float], azimuth_rad: list[float],
                          height_m: list[float], range_rate_mps: list[float], mode3a: list[int],
                          plot_number: list[int]) -> list[bytes]:
    """encode_cat048_block's records for a few plots, with the array path's rounding and range checks in its
    order (round half to even, as numpy rounds)."""
    tod = [_tod_unit(float(t)) for t in tod_s]
    rng, az = [float(v) for v in range_m], [float(v) for v in azimuth_rad]
    if not all(math.isfinite(v) for v in rng) or not all(math.isfinite(v) for v in az):
        raise AsterixOutOfRange("range and azimuth must be finite")
    rho = [round(v / RHO_LSB_M) for v in rng]
    _check_small("I040 RHO", rho, 0, 0xFFFF, "x 1/256 NM")
    theta = [round(v / THETA_LSB_RAD) % 65536 for v in az]
    h = [float(v) for v in height_m]
    hq = [round(v / HEIGHT_LSB_M) if math.isfinite(v) else 0 for v in h]
    _check_small("I110 height", hq, -8192, 8191, "x 25 ft")
    rr = [float(v) for v in range_rate_mps]
    cal = [round(v) if math.isfinite(v) else 0 for v in rr]
    _check_small("I120 CAL", cal, -512, 511, "m/s")
    m3a = [int(v) for v in mode3a]
    _check_small("I070 Mode-3/A", m3a, -1, 0o7777, "")
    if not (0 <= sac <= 255 and 0 <= sic <= 255):
        raise AsterixOutOfRange(f"SAC/SIC {sac}/{sic} must be bytes")
    records = []
    for i in range(len(tod)):
        has_m3a = m3a[i] >= 0
        frns = [1, 2, 3, 4, 11]
        items = [struct.pack(">BB", sac, sic), tod[i].to_bytes(3, "big"),
                 bytes([(TYP_PSR_SSR if has_m3a else TYP_PSR) << 5]), struct.pack(">HH", rho[i], theta[i])]
        if has_m3a:
            frns.append(5)
            items.append(struct.pack(">H", m3a[i] & 0x0FFF))
        items.append(struct.pack(">H", int(plot_number[i]) & 0x0FFF))
        if math.isfinite(h[i]):
            frns.append(19)
            items.append(struct.pack(">H", hq[i] & 0x3FFF))
        if math.isfinite(rr[i]):
            frns.append(20)
            items.append(struct.pack(">BH", 0x80, cal[i] & 0x03FF))
        records.append(_fspec(frns) + b"".join(items))
    return records


def _check_small(name: str, values: list[int], lo: int, hi: int, unit: str) -> None:
    for v in values:
        if v < lo or v > hi:
            raise AsterixOutOfRange(f"{name} {v} {unit} outside {lo}..{hi}")


def encode_cat048_plots(sac: int, sic: int, tod_s: list[float], range_m: list[float], azimuth_rad: list[float],
                        height_m: list[float], range_rate_mps: list[float], mode3a: list[int],
                        plot_number: list[int]) -> bytes:
    """encode_cat048_block for a few plots (up to SMALL_BLOCK, finite times) given as plain lists, as a board sends
    one dwell: the same bytes, without the arrays."""
    return _block(CAT048, _cat048_records_small(sac, sic, tod_s, range_m, azimuth_rad, height_m, range_rate_mps,
                                                mode3a, plot_number))


def encode_cat048_block(
    sac: int,
    sic: int,
    tod_s: npt.ArrayLike,
    range_m: npt.ArrayLike,
    azimuth_rad: npt.ArrayLike,
    height_m: npt.ArrayLike,
    range_rate_mps: npt.ArrayLike,
    mode3a: npt.ArrayLike,
    plot_number: npt.ArrayLike,
) -> bytes:
    """One CAT048 data block with one record per plot (NaN height / range-rate and mode3a -1 omit the item)."""
    rows = [np.asarray(a).reshape(-1) for a in (tod_s, range_m, azimuth_rad, height_m, range_rate_mps, mode3a,
                                                  plot_number)]
    n = len(rows[0])
    if n <= SMALL_BLOCK and all(len(r) == n for r in rows[1:]) and np.isfinite(rows[0].astype(np.float64)).all():
        # a board sends one dwell at a time, mostly one plot: plain floats cost a tenth of numpy's small calls
        # and give the same bytes (hypothesis checks it against the array path)
        return _block(CAT048, _cat048_records_small(sac, sic, *(r.tolist() for r in rows)))
    tod = _tod_units(tod_s).reshape(-1)
    n = len(tod)
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in (range_m, azimuth_rad, height_m, range_rate_mps)]
    m3a = np.asarray(mode3a, dtype=np.int64).reshape(-1)
    pno = np.asarray(plot_number, dtype=np.int64).reshape(-1)
    if any(len(a) != n for a in (*arrays, m3a, pno)):
        raise ValueError("encode_cat048_block: all plot arrays must have the same length")
    rng, az, h, rr = arrays
    if not (np.isfinite(rng).all() and np.isfinite(az).all()):
        raise AsterixOutOfRange("range and azimuth must be finite")
    rho = np.round(rng / RHO_LSB_M).astype(np.int64)
    _check_range("I040 RHO", rho, 0, 0xFFFF, "x 1/256 NM")
    theta = np.mod(np.round(az / THETA_LSB_RAD).astype(np.int64), 65536)
    has_h = np.isfinite(h)
    hq = np.round(np.where(has_h, h, 0.0) / HEIGHT_LSB_M).astype(np.int64)
    _check_range("I110 height", hq, -8192, 8191, "x 25 ft")
    has_rr = np.isfinite(rr)
    cal = np.round(np.where(has_rr, rr, 0.0)).astype(np.int64)
    _check_range("I120 CAL", cal, -512, 511, "m/s")
    _check_range("I070 Mode-3/A", m3a, -1, 0o7777, "")
    if not (0 <= sac <= 255 and 0 <= sic <= 255):
        raise AsterixOutOfRange(f"SAC/SIC {sac}/{sic} must be bytes")
    records = []
    for i in range(n):
        has_m3a = m3a[i] >= 0
        frns = [1, 2, 3, 4, 11]
        typ = TYP_PSR_SSR if has_m3a else TYP_PSR
        items = [
            struct.pack(">BB", sac, sic),
            int(tod[i]).to_bytes(3, "big"),
            bytes([typ << 5]),
            struct.pack(">HH", rho[i], theta[i]),
        ]
        if has_m3a:
            frns.append(5)
            items.append(struct.pack(">H", m3a[i] & 0x0FFF))
        items.append(struct.pack(">H", pno[i] & 0x0FFF))
        if has_h[i]:
            frns.append(19)
            items.append(struct.pack(">H", hq[i] & 0x3FFF))
        if has_rr[i]:
            frns.append(20)
            items.append(struct.pack(">BH", 0x80, cal[i] & 0x03FF))
        records.append(_fspec(frns) + b"".join(items))
    return _block(CAT048, records)


def encode_cat034(
    sac: int, sic: int, message_type: int, tod_s: float, sector_azimuth_rad: float, rotation_period_s: float
) -> bytes:
    """One CAT034 data block with one service message (north marker = 1, sector crossing = 2)."""
    if not 1 <= message_type <= 4:
        raise AsterixOutOfRange(f"CAT034 message type {message_type} outside 1..4")
    period = round(rotation_period_s * 128.0)
    if not 0 <= period <= 0xFFFF:
        raise AsterixOutOfRange(f"antenna rotation period {rotation_period_s} s outside 0..512 s")
    sector = round(sector_azimuth_rad / SECTOR_LSB_RAD) % 256
    record = _fspec([1, 2, 3, 4, 5]) + struct.pack(">BBB", sac, sic, message_type)
    tod = _tod_unit(float(tod_s)) if math.isfinite(tod_s) else int(_tod_units(tod_s))
    record += tod.to_bytes(3, "big") + struct.pack(">BH", sector, period)
    return _block(CAT034, [record])


# ---- decoder --------------------------------------------------------------------------------------------


def _fx_bits(data: bytes, pos: int, end: int) -> tuple[list[int], int]:
    """The field at pos whose octets carry 7 bits and an FX bit asking for one more (an FSPEC, a compound item's
    primary subfield, an extended item): the 0-based indices of its set bits, and the position after it (-1 if
    it runs past end)."""
    bits: list[int] = []
    k = 0
    while True:
        if pos >= end:
            return bits, -1
        octet = data[pos]
        pos += 1
        for bit in range(7):
            if octet & (0x80 >> bit):
                bits.append(k + bit)
        k += 7
        if not octet & 1:
            return bits, pos


def _item_end(data: bytes, pos: int, end: int, name: str, kind: int, spec: object) -> int:
    """Position just past the item starting at pos (raises on truncation / spare subfields)."""
    if kind == FIXED:
        size = int(spec)  # type: ignore[call-overload]
        stop = pos + size
    elif kind == EXTENDED:
        stop = _fx_bits(data, pos, end)[1]
        if stop < 0:
            raise AsterixTruncated(f"I{name}: extended item runs past the record")
    elif kind == REPETITIVE:
        if pos >= end:
            raise AsterixTruncated(f"I{name}: repetition factor missing")
        stop = pos + 1 + data[pos] * int(spec)  # type: ignore[call-overload]
    elif kind == EXPLICIT:
        if pos >= end:
            raise AsterixTruncated(f"{name}: length byte missing")
        if data[pos] < 1:
            raise AsterixTruncated(f"{name}: explicit length 0")
        stop = pos + data[pos]
    else:  # COMPOUND
        subs: list[tuple[int, int]] = spec  # type: ignore[assignment]
        present, stop = _fx_bits(data, pos, end)
        if stop < 0:
            raise AsterixTruncated(f"I{name}: compound primary subfield runs past the record")
        for idx in present:
            sub_kind, sub_size = subs[idx] if idx < len(subs) else NONE
            if sub_kind == FIXED:
                stop += sub_size
            elif sub_kind == REPETITIVE:
                if stop >= end:
                    raise AsterixTruncated(f"I{name}: repetition factor missing")
                stop += 1 + data[stop] * sub_size
            else:
                raise AsterixUnsupported(f"I{name}: subfield {idx + 1} is spare")
    if stop > end:
        raise AsterixTruncated(f"I{name}: item needs {stop - pos} bytes, {end - pos} left in the block")
    return stop


def split_record(cat: int, data: bytes, pos: int, end: int) -> tuple[dict[str, bytes], int]:
    """Items of the record at pos as {name: raw bytes}, and the position after the record."""
    uap = UAP[cat]
    frns, pos = _fx_bits(data, pos, end)
    if pos < 0:
        raise AsterixTruncated(f"CAT{cat:03d}: FSPEC runs past the block")
    items = {}
    for frn in frns:
        if frn >= len(uap):
            raise AsterixUnsupported(f"CAT{cat:03d}: FSPEC names FRN {frn + 1}, which the UAP does not define")
        name, kind, spec = uap[frn]
        stop = _item_end(data, pos, end, name, kind, spec)
        items[name] = data[pos:stop]
        pos = stop
    return items, pos


def _tod(raw: bytes, item: str) -> float:
    v = int.from_bytes(raw, "big")
    if v >= TOD_WRAP:
        raise AsterixOutOfRange(f"I{item} time of day {v / 128.0:.3f} s is not below 86400 s")
    return v * TOD_LSB_S


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def _require(items: dict[str, bytes], cat: int, names: Sequence[str]) -> None:
    for name in names:
        if name not in items:
            raise AsterixMissingItem(f"CAT{cat:03d} record without I{name}")


def _cat048(items: dict[str, bytes]) -> Cat048Plot:
    _require(items, CAT048, ("010", "140", "040"))
    sac, sic = items["010"]
    rho, theta = struct.unpack(">HH", items["040"])
    height = math.nan
    if "110" in items:
        height = _signed(int.from_bytes(items["110"], "big") & 0x3FFF, 14) * HEIGHT_LSB_M
    rr = math.nan
    i120 = items.get("120")
    if i120 is not None and i120[0] & 0x80:
        rr = float(_signed(int.from_bytes(i120[1:3], "big") & 0x03FF, 10))
    m3a = int.from_bytes(items["070"], "big") & 0x0FFF if "070" in items else -1
    pno = int.from_bytes(items["161"], "big") & 0x0FFF if "161" in items else -1
    typ = items["020"][0] >> 5 if "020" in items else 0
    return Cat048Plot(
        sac, sic, _tod(items["140"], "140"), typ, rho * RHO_LSB_M, theta * THETA_LSB_RAD, height, rr, m3a, pno
    )


def _cat034(items: dict[str, bytes]) -> Cat034Message:
    _require(items, CAT034, ("010", "000", "030"))
    sac, sic = items["010"]
    mtype = items["000"][0]
    if not 1 <= mtype <= 4:
        raise AsterixOutOfRange(f"CAT034 I000 message type {mtype} outside 1..4")
    sector = items["020"][0] * SECTOR_LSB_RAD if "020" in items else math.nan
    period = int.from_bytes(items["041"], "big") / 128.0 if "041" in items else math.nan
    return Cat034Message(sac, sic, mtype, _tod(items["030"], "030"), sector, period)


def decode_blocks(data: bytes | bytearray | memoryview) -> list[Cat048Plot | Cat034Message]:
    """Every record of every data block in data, in order; raises an AsterixError subclass on bad input."""
    buf = bytes(data)
    out: list[Cat048Plot | Cat034Message] = []
    pos = 0
    while pos < len(buf):
        if len(buf) - pos < 3:
            raise AsterixTruncated(f"{len(buf) - pos} bytes left, too few for a block header")
        cat, length = buf[pos], int.from_bytes(buf[pos + 1 : pos + 3], "big")
        if length < 3:
            raise AsterixTruncated(f"block length {length} is below the 3-byte header")
        end = pos + length
        if end > len(buf):
            raise AsterixTruncated(f"CAT{cat:03d} block says {length} bytes, {len(buf) - pos} available")
        if cat not in UAP:
            raise AsterixUnknownCategory(f"category {cat} is not handled (only CAT048 and CAT034)")
        rec_pos = pos + 3
        while rec_pos < end:
            items, rec_pos = split_record(cat, buf, rec_pos, end)
            out.append(_cat048(items) if cat == CAT048 else _cat034(items))
        pos = end
    return out
