"""ASTERIX CAT062 system tracks (edition 1.19; docs/CAT062.md): an encoder, a decoder that counts what it rejects,
and the UDP links a fire-control computer publishes its tracks on and the plant reads them from.

hil works in one local ENU frame (x east, y north, z up, metres) around a reference point, the origin
(WGS-84 latitude and longitude in degrees, height above the ellipsoid in metres). On the wire each track is:

    I062/010  SAC/SIC of the system              I062/040  track number (16 bits: the track id mod 65536)
    I062/015  service identification             I062/080  status: CNF tentative, CST coasting, TSE ended
    I062/070  time of track information, 1/128 s I062/060  Mode 3/A code, when known
    I062/105  WGS-84 latitude / longitude, 180/2^25 deg: the position every consumer reads
    I062/100  x / y in the system plane, 0.5 m: the stereographic projection tangent at the origin
    I062/130  geometric altitude (height above the WGS-84 ellipsoid), 6.25 ft
    I062/185  velocity east / north at the target (the spec's axes), 0.25 m/s
    I062/220  rate of climb (along the target's own vertical), 6.25 ft/min

The decoder takes the position from I062/105 (or, without it, from I062/100) and I062/130, and maps every value
back into the receiver's ENU frame. An item whose value does not fit its field is left out of that record (and
counted); a track without a finite position is not sent (and counted).

    encoder = Cat062Encoder(sac=0, sic=1, origin=(52.0, 4.0, 0.0))
    datagrams = encoder.encode(tod_s, track_id, status, state, mode3a).datagrams
    tracks = Cat062Decoder(origin).decode(datagram)          # never raises on bad bytes: counters, log
    tracks = decode_cat062(datagram, origin)                 # raises AsterixError on the first bad record

    with SystemTrackPublisher("udp://127.0.0.1:8620", 0, 1, origin) as pub:
        pub.publish(tod_s, track_id, status, state, mode3a)
    rx = SystemTrackReceiver("udp://127.0.0.1:0", origin=origin); rx.port; rx.poll()
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from hil.drivers.asterix import (
    TOD_LSB_S,
    TOD_WRAP,
    AsterixError,
    AsterixMissingItem,
    AsterixOutOfRange,
    AsterixTruncated,
    AsterixUnsupported,
)
from hil.drivers.framing import RateLimitedLog
from hil.drivers.transport import UdpTransport, open_transport
from hil.errors import LinkError
from hil.geo import METRES_PER_FOOT, WGS84_A, WGS84_E2, WGS84_F, geodetic_to_ecef

log = logging.getLogger(__name__)

# hil.geo's conversion is typed for one point; it works element by element on arrays as well
_geodetic_to_ecef = cast(Callable[..., npt.NDArray[np.float64]], geodetic_to_ecef)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Origin = tuple[float, float, float]

CAT062 = 62
LATLON_LSB_DEG = 180.0 / 2**25
XY_LSB_M = 0.5
VELOCITY_LSB_MPS = 0.25
ALTITUDE_LSB_M = 6.25 * METRES_PER_FOOT
CLIMB_LSB_MPS = 6.25 * METRES_PER_FOOT / 60.0
ALTITUDE_MIN_M = -1500.0 * METRES_PER_FOOT  # I062/130's range
ALTITUDE_MAX_M = 150000.0 * METRES_PER_FOOT
MAX_DATAGRAM_BYTES = 1472  # a 1500-byte Ethernet MTU less the IPv4 and UDP headers: never fragmented
MIN_DATAGRAM_BYTES = 64  # room for the block header and the longest record this encoder writes (39 bytes)
MAX_UDP_PAYLOAD = 65507  # the most an IPv4 UDP datagram carries
MAX_DATAGRAMS_PER_POLL = 1024
SRC_3D_RADAR = 2  # I062/080 SRC: the source of the I062/130 altitude

REJECT_KEYS = ("truncated", "unsupported_item", "missing_item", "out_of_range")


class SystemTrackStatus(IntEnum):
    """A system track's status as I062/080 carries it; the tracker's own 1 (tentative) and 2 (confirmed) map
    onto it unchanged."""

    ENDED = 0  # TSE: the last message for a track the system has dropped
    TENTATIVE = 1  # CNF = 1
    CONFIRMED = 2  # CNF = 0
    COASTING = 3  # confirmed, and CST: no update for longer than the system's threshold


@dataclass(frozen=True)
class SystemTracks:
    """System tracks as decoded, one row per record: SI units, the receiver's ENU frame, NaN / -1 where an item
    was absent. state is [x, y, z, vx, vy, vz]; z is NaN without an altitude, vz without a rate of climb."""

    sac: IntArray
    sic: IntArray
    service_id: IntArray  # -1: no I062/015
    tod_s: FloatArray  # time of track information, seconds since midnight (UTC)
    track_number: IntArray
    status: npt.NDArray[np.int8]  # SystemTrackStatus values
    state: FloatArray  # (n, 6)
    mode3a: IntArray  # -1: no I062/060
    rx_ns: IntArray  # when the datagram carrying the record was received (the receiver's clock), 0 if unknown

    def __len__(self) -> int:
        return len(self.track_number)

    @classmethod
    def empty(cls) -> SystemTracks:
        i = np.zeros(0, np.int64)
        return cls(i, i, i, np.zeros(0), i, np.zeros(0, np.int8), np.zeros((0, 6)), i, i)

    @classmethod
    def concatenate(cls, parts: Sequence[SystemTracks]) -> SystemTracks:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))


@dataclass(frozen=True)
class EncodedTracks:
    """What one encode produced: datagrams (one CAT062 data block each, at most max_datagram_bytes), the records in
    them, tracks left out (no finite position or time) and items left out of a record (a value outside its field:
    a velocity beyond ±8192 m/s, an altitude outside -1500..150000 ft, a climb beyond ±1040 m/s, x/y beyond
    ±4194 km)."""

    datagrams: list[bytes]
    records: int
    skipped: int
    omitted_items: int


# ---- geodesy: the origin's ENU frame, WGS-84, the system plane ---------------------------------------------


def _enu_axes(lat_rad: npt.ArrayLike, lon_rad: npt.ArrayLike) -> FloatArray:
    """East, north and up unit vectors in ECEF at each latitude / longitude, as rows: (..., 3, 3)."""
    sl, cl = np.sin(lat_rad), np.cos(lat_rad)
    so, co = np.sin(lon_rad), np.cos(lon_rad)
    zero = np.zeros_like(sl)
    east = np.stack([-so, co, zero], axis=-1)
    north = np.stack([-sl * co, -sl * so, cl], axis=-1)
    up = np.stack([cl * co, cl * so, sl], axis=-1)
    return np.stack([east, north, up], axis=-2)


def _ecef_to_geodetic(p: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Latitude, longitude (radians) and ellipsoidal height of ECEF points (n, 3): Bowring's closed form, better
    than a millimetre from the ground up to a thousand kilometres."""
    b = WGS84_A * (1.0 - WGS84_F)
    ep2 = (WGS84_A**2 - b**2) / b**2
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    r = np.hypot(x, y)
    theta = np.arctan2(z * WGS84_A, r * b)
    lat = np.arctan2(z + ep2 * b * np.sin(theta) ** 3, r - WGS84_E2 * WGS84_A * np.cos(theta) ** 3)
    lon = np.arctan2(y, x)
    sl = np.sin(lat)
    h = r * np.cos(lat) + z * sl - WGS84_A * np.sqrt(1.0 - WGS84_E2 * sl * sl)
    return lat, lon, h


class ReferenceFrame:
    """The ENU frame around an origin (lat deg, lon deg, h m) and its conversions to and from what CAT062 carries.

    The system plane of I062/100 is the stereographic projection of each position's foot at the origin's height
    (same latitude and longitude) onto the plane tangent there, on the sphere of the origin's Gaussian radius:
    x east, y north, scale 1 at the origin; within 100 km it agrees with any stereographic convention to about a
    metre.
    """

    def __init__(self, origin: Sequence[float]) -> None:
        lat0, lon0, h0 = (float(v) for v in origin)
        if not (np.isfinite([lat0, lon0, h0]).all() and -90.0 <= lat0 <= 90.0):
            raise AsterixOutOfRange(f"origin {tuple(origin)} is not a WGS-84 latitude, longitude and height")
        self.origin: Origin = (lat0, lon0, h0)
        self.ecef0 = np.asarray(geodetic_to_ecef(lat0, lon0, h0), dtype=np.float64)
        self.axes0 = _enu_axes(np.radians(lat0), np.radians(lon0))
        s2 = np.sin(np.radians(lat0)) ** 2
        meridian = WGS84_A * (1.0 - WGS84_E2) / (1.0 - WGS84_E2 * s2) ** 1.5
        normal = WGS84_A / np.sqrt(1.0 - WGS84_E2 * s2)
        self.radius = float(np.sqrt(meridian * normal))

    def to_geodetic(self, enu: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Latitude, longitude (degrees) and height (m) of ENU points (n, 3)."""
        lat, lon, h = _ecef_to_geodetic(self.ecef0 + enu @ self.axes0)
        return np.degrees(lat), np.degrees(lon), h

    def to_enu(self, lat_deg: FloatArray, lon_deg: FloatArray, h_m: FloatArray) -> FloatArray:
        """ENU points (n, 3) of WGS-84 positions."""
        ecef = _geodetic_to_ecef(lat_deg, lon_deg, h_m).reshape(3, -1).T
        return np.asarray((ecef - self.ecef0) @ self.axes0.T, dtype=np.float64)

    def target_axes(self, lat_deg: FloatArray, lon_deg: FloatArray) -> FloatArray:
        """East, north and up at each position (n, 3, 3, as rows) in this frame's ENU components: a velocity v in
        this frame is target_axes @ v as east / north / up at the target."""
        return np.asarray(_enu_axes(np.radians(lat_deg), np.radians(lon_deg)) @ self.axes0.T, dtype=np.float64)

    def to_plane(self, foot: FloatArray) -> tuple[FloatArray, FloatArray]:
        """System-plane x, y (m) of the ENU points (n, 3) at the origin's height (see the class docstring)."""
        rho = np.hypot(foot[:, 0], foot[:, 1])
        arc = np.arctan2(rho, self.radius + foot[:, 2])
        scale = 2.0 * self.radius * np.tan(arc / 2.0) / np.maximum(rho, 1e-9)
        return foot[:, 0] * scale, foot[:, 1] * scale

    def from_plane(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Latitude, longitude (degrees) of system-plane x, y: the inverse of to_plane."""
        s = np.hypot(x, y)
        arc = 2.0 * np.arctan(s / (2.0 * self.radius))
        scale = self.radius * np.sin(arc) / np.maximum(s, 1e-9)
        lat, lon, _ = self.to_geodetic(np.stack([x * scale, y * scale, self.radius * (np.cos(arc) - 1.0)], axis=-1))
        return lat, lon


# ---- encoder --------------------------------------------------------------------------------------------


def _quantise(values: FloatArray, lsb: float, limit: int) -> tuple[IntArray, BoolArray]:
    """values in units of lsb, rounded; and where that is a number within ±limit (the units are 0 elsewhere)."""
    fits: BoolArray = np.abs(values) < (limit + 0.5) * lsb  # False for NaN
    return np.round(np.where(fits, values, 0.0) / lsb).astype(np.int64), fits


def _tod_units(tod_s: FloatArray) -> IntArray:
    return np.mod(np.round(np.mod(tod_s, 86400.0) / TOD_LSB_S), TOD_WRAP).astype(np.int64)


# The fields of the longest record this encoder writes, in wire order, with their sizes in bytes: FSPEC (3),
# I062/010 SAC, SIC, 015, 070, 105 lat, lon, 100 x, y, 185 vx, vy, 060, 040, 080 (4 octets), 130, 220.
_RECORD_FIELDS = (1, 1, 1, 1, 1, 1, 3, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2)
_RECORD_BYTE_FIELD = np.repeat(np.arange(len(_RECORD_FIELDS)), _RECORD_FIELDS)
_RECORD_BYTES = np.concatenate([8 * f + np.arange(8 - k, 8) for f, k in enumerate(_RECORD_FIELDS)])


class Cat062Encoder:
    """Encodes system tracks into CAT062 datagrams for one system (SAC/SIC) and one reference point."""

    def __init__(
        self,
        sac: int,
        sic: int,
        origin: Sequence[float],
        *,
        service_id: int = 1,
        cartesian: bool = True,
        max_datagram_bytes: int = MAX_DATAGRAM_BYTES,
    ) -> None:
        """cartesian: also send I062/100 (x/y in the system plane) beside I062/105."""
        for name, v in (("SAC", sac), ("SIC", sic), ("service id", service_id)):
            if not 0 <= v <= 255:
                raise AsterixOutOfRange(f"{name} {v} must be a byte (0..255)")
        if not MIN_DATAGRAM_BYTES <= max_datagram_bytes <= MAX_UDP_PAYLOAD:
            raise AsterixOutOfRange(
                f"datagram size {max_datagram_bytes} outside {MIN_DATAGRAM_BYTES}..{MAX_UDP_PAYLOAD} bytes")
        self.sac, self.sic, self.service_id = sac, sic, service_id
        self.frame = ReferenceFrame(origin)
        self.cartesian = cartesian
        self.max_datagram_bytes = max_datagram_bytes

    def encode(
        self,
        tod_s: npt.ArrayLike,
        track_id: npt.ArrayLike,
        status: npt.ArrayLike,
        state: npt.ArrayLike,
        mode3a: npt.ArrayLike,
    ) -> EncodedTracks:
        """One record per track: tod_s (seconds since midnight, one for all or one per track), track ids (sent
        mod 65536), SystemTrackStatus values, ENU states (n, 6: x, y, z, vx, vy, vz; a NaN vx or vy leaves the
        velocity out, a NaN vz the rate of climb, and vx, vy then go out as level flight), Mode 3/A codes (-1:
        unknown)."""
        tid = np.asarray(track_id, dtype=np.int64).reshape(-1)
        n = len(tid)
        st = np.asarray(status, dtype=np.int64).reshape(-1)
        m3a = np.asarray(mode3a, dtype=np.int64).reshape(-1)
        x = np.asarray(state, dtype=np.float64)
        tod = np.asarray(tod_s, dtype=np.float64).reshape(-1)
        if x.shape != (n, 6) or len(st) != n or len(m3a) != n or len(tod) not in (1, n):
            raise AsterixOutOfRange(
                f"track arrays disagree: {n} ids, {len(st)} statuses, state {x.shape} (want ({n}, 6)), "
                f"{len(m3a)} Mode 3/A codes, {len(tod)} times")
        if ((st < SystemTrackStatus.ENDED) | (st > SystemTrackStatus.COASTING)).any():
            raise AsterixOutOfRange(f"track status {st[(st < 0) | (st > 3)][0]} is not a SystemTrackStatus (0..3)")
        if ((m3a < -1) | (m3a > 0o7777)).any():
            raise AsterixOutOfRange(f"Mode 3/A code {m3a[(m3a < -1) | (m3a > 0o7777)][0]} outside -1..0o7777")
        tod = np.broadcast_to(tod, (n,))
        ok = np.isfinite(x[:, :3]).all(axis=1) & np.isfinite(tod)
        skipped = n - int(ok.sum())
        if skipped:
            tid, st, m3a, x, tod = tid[ok], st[ok], m3a[ok], x[ok], tod[ok]
        m = len(tid)
        if m == 0:
            return EncodedTracks([], 0, skipped, 0)

        frame = self.frame
        lat, lon, h = frame.to_geodetic(x[:, :3])
        has_alt: BoolArray = (h >= ALTITUDE_MIN_M) & (h <= ALTITUDE_MAX_M)
        v = x[:, 3:6]
        v_finite = np.isfinite(v)
        axes = frame.target_axes(lat, lon)
        v = np.where(v_finite, v, 0.0)
        # an unknown vertical speed is sent as level flight: no climb along the target's own vertical
        level = -(axes[:, 2, 0] * v[:, 0] + axes[:, 2, 1] * v[:, 1]) / axes[:, 2, 2]
        v[:, 2] = np.where(v_finite[:, 2], v[:, 2], level)
        v_local = np.einsum("nij,nj->ni", axes, v)
        vx_u, vx_fits = _quantise(v_local[:, 0], VELOCITY_LSB_MPS, 2**15 - 1)
        vy_u, vy_fits = _quantise(v_local[:, 1], VELOCITY_LSB_MPS, 2**15 - 1)
        climb_u, climb_fits = _quantise(v_local[:, 2], CLIMB_LSB_MPS, 2**15 - 1)
        horizontal = v_finite[:, 0] & v_finite[:, 1]
        has_vel = horizontal & vx_fits & vy_fits
        has_climb = horizontal & v_finite[:, 2] & climb_fits
        if self.cartesian:
            # the foot of each position at the origin's height lies along its own vertical
            px, py = frame.to_plane(x[:, :3] - (h - frame.origin[2])[:, None] * axes[:, 2, :])
            x_u, x_fits = _quantise(px, XY_LSB_M, 2**23 - 1)
            y_u, y_fits = _quantise(py, XY_LSB_M, 2**23 - 1)
            has_xy = x_fits & y_fits
        else:
            x_u = y_u = np.zeros(m, dtype=np.int64)
            has_xy = np.zeros(m, dtype=bool)
        omitted = int((~has_alt).sum() + (horizontal & ~has_vel).sum()
                      + (horizontal & v_finite[:, 2] & ~has_climb).sum() + (self.cartesian & ~has_xy).sum())

        has_m3a = m3a >= 0
        tentative = st == SystemTrackStatus.TENTATIVE
        ended = st == SystemTrackStatus.ENDED
        coasting = st == SystemTrackStatus.COASTING
        has_ext1 = ended | coasting
        has_fspec3 = has_alt | has_climb
        # one int64 per field of the record (_RECORD_FIELDS), then each record byte picked from its field's bytes
        f = np.empty((m, len(_RECORD_FIELDS)), dtype=np.int64)
        f[:, 0] = 0xB9 | has_xy * 0x04 | has_vel * 0x02  # FSPEC FRN 1 010, 3 015, 4 070, 5 105, 6 100, 7 185, FX
        f[:, 1] = 0x0C | has_m3a * 0x40 | has_fspec3  # FRN 9 060, 12 040, 13 080, FX
        f[:, 2] = has_alt * 0x10 | has_climb * 0x04  # FRN 18 130, 20 220
        f[:, 3:6] = (self.sac, self.sic, self.service_id)
        f[:, 6] = _tod_units(tod)
        f[:, 7] = np.round(lat / LATLON_LSB_DEG)
        f[:, 8] = np.mod(np.round(lon / LATLON_LSB_DEG).astype(np.int64) + 2**25, 2**26) - 2**25
        f[:, 9], f[:, 10], f[:, 11], f[:, 12] = x_u, y_u, vx_u, vy_u
        f[:, 13] = m3a & 0x0FFF
        f[:, 14] = tid & 0xFFFF
        # I062/080: MON 0 (multisensor); MRH geometric and SRC 3D radar when an altitude goes with it; CNF tentative;
        # the first extension's TSE for an ended track, the third's CST for a coasting one
        f[:, 15] = has_alt * (0x20 | SRC_3D_RADAR << 2) | tentative * 0x02 | has_ext1
        f[:, 16] = ended * 0x40 | coasting
        f[:, 17:19] = (0x01, 0x80)
        f[:, 19] = np.round(np.where(has_alt, h, 0.0) / ALTITUDE_LSB_M)
        f[:, 20] = climb_u
        present = np.ones((m, len(_RECORD_FIELDS)), dtype=bool)
        for col, mask in ((2, has_fspec3), (9, has_xy), (10, has_xy), (11, has_vel), (12, has_vel), (13, has_m3a),
                          (16, has_ext1), (17, coasting), (18, coasting), (19, has_alt), (20, has_climb)):
            present[:, col] = mask
        data = f.astype(">i8").view(np.uint8).reshape(m, -1)[:, _RECORD_BYTES]
        keep = present[:, _RECORD_BYTE_FIELD]
        flat = data[keep]
        ends = np.cumsum(keep.sum(axis=1))
        return EncodedTracks(self._blocks(flat, ends), m, skipped, omitted)

    def _blocks(self, flat: npt.NDArray[np.uint8], ends: IntArray) -> list[bytes]:
        """Records (flat bytes, each ending at ends[i]) packed in order into blocks of at most max_datagram_bytes."""
        budget = self.max_datagram_bytes - 3
        out: list[bytes] = []
        first, start = 0, 0
        while first < len(ends):  # each pass takes at least one record (records are shorter than the budget)
            last = int(np.searchsorted(ends, start + budget, side="right"))
            stop = int(ends[last - 1])
            out.append(bytes((CAT062, (stop - start + 3) >> 8, (stop - start + 3) & 0xFF)) + flat[start:stop].tobytes())
            first, start = last, stop
        return out


def encode_cat062(
    sac: int,
    sic: int,
    origin: Sequence[float],
    tod_s: npt.ArrayLike,
    track_id: npt.ArrayLike,
    status: npt.ArrayLike,
    state: npt.ArrayLike,
    mode3a: npt.ArrayLike,
    **options: Any,
) -> list[bytes]:
    """The datagrams of Cat062Encoder(sac, sic, origin, **options).encode(...), for one-off use."""
    return Cat062Encoder(sac, sic, origin, **options).encode(tod_s, track_id, status, state, mode3a).datagrams


# ---- decoder --------------------------------------------------------------------------------------------
# Item layouts of the edition 1.19 UAP, enough to step over every item (the ones hil does not read included).
# kinds: fixed n bytes; extended in parts of n bytes, each ending in an FX bit; repetitive (a count byte, then
# count x n bytes); explicit (a length byte that counts itself); compound (FX-extended presence bits, then the
# subfields present, each fixed, extended or repetitive).
FIXED, EXTENDED, REPETITIVE, EXPLICIT, COMPOUND = range(5)
Layout = tuple[int, Any]

_F1, _F2, _F3, _F4, _F6, _F7, _F8 = ((FIXED, k) for k in (1, 2, 3, 4, 6, 7, 8))
_I110: tuple[Layout, ...] = (_F1, _F4, _F6, _F2, _F2, _F1, _F1)
_I290: tuple[Layout, ...] = (_F1, _F1, _F1, _F1, _F2, _F1, _F1, _F1, _F1, _F1)
_I295: tuple[Layout, ...] = (_F1,) * 31
_I340: tuple[Layout, ...] = (_F2, _F4, _F2, _F2, _F2, _F1)
_I380: tuple[Layout, ...] = (
    _F3, _F6, _F2, _F2, _F2, _F2, _F2, (EXTENDED, 1), (REPETITIVE, 15), _F2, _F2, _F7, _F2, _F2,
    _F2, _F2, _F2, _F2, _F1, _F8, _F1, _F6, _F2, _F1, (REPETITIVE, 8), _F2, _F2, _F2,
)
_I390: tuple[Layout, ...] = (
    _F2, _F7, _F4, _F1, _F4, _F1, _F4, _F4, _F3, _F2, _F2, (REPETITIVE, 4), _F6, _F1, _F7, _F7, _F2, _F7,
)
_I500: tuple[Layout, ...] = (_F4, _F2, _F4, _F1, _F1, _F2, _F2, _F1)

# FRN 1.. in order: (item, layout); None for a spare FRN
UAP062: tuple[tuple[str, Layout] | None, ...] = (
    ("010", _F2), None, ("015", _F1), ("070", _F3), ("105", _F8), ("100", _F6), ("185", _F4),
    ("210", _F2), ("060", _F2), ("245", _F7), ("380", (COMPOUND, _I380)), ("040", _F2), ("080", (EXTENDED, 1)),
    ("290", (COMPOUND, _I290)),
    ("200", _F1), ("295", (COMPOUND, _I295)), ("136", _F2), ("130", _F2), ("135", _F2), ("220", _F2),
    ("390", (COMPOUND, _I390)),
    ("270", (EXTENDED, 1)), ("300", _F1), ("110", (COMPOUND, _I110)), ("120", _F2), ("510", (EXTENDED, 3)),
    ("500", (COMPOUND, _I500)), ("340", (COMPOUND, _I340)),
    None, None, None, None, None, ("RE", (EXPLICIT, 0)), ("SP", (EXPLICIT, 0)),
)  # fmt: skip


def _presence(buf: bytes, pos: int, end: int, what: str) -> tuple[list[int], int]:
    """The 0-based indices set in an FX-extended presence field (an FSPEC, a compound item's first subfield) at
    pos, and the position after it."""
    present: list[int] = []
    base = 0
    while True:
        if pos >= end:
            raise AsterixTruncated(f"{what} runs past the end of the block")
        octet = buf[pos]
        pos += 1
        if octet & 0xFE:
            present += [base + bit for bit in range(7) if octet & (0x80 >> bit)]
        if not octet & 1:
            return present, pos
        base += 7


def _field_end(buf: bytes, pos: int, end: int, layout: Layout, what: str) -> int:
    kind, spec = layout
    if kind == FIXED:
        stop = pos + spec
    elif kind == EXTENDED:
        stop = pos + spec
        while stop <= end and buf[stop - 1] & 1:
            stop += spec
    elif kind == REPETITIVE:
        if pos >= end:
            raise AsterixTruncated(f"{what}: repetition count runs past the end of the block")
        stop = pos + 1 + buf[pos] * spec
    elif kind == EXPLICIT:
        if pos >= end:
            raise AsterixTruncated(f"{what}: length byte runs past the end of the block")
        if buf[pos] == 0:
            raise AsterixTruncated(f"{what}: explicit length 0")
        stop = pos + buf[pos]
    else:
        present, stop = _presence(buf, pos, end, what)
        for idx in present:
            if idx >= len(spec):
                raise AsterixUnsupported(f"{what}: subfield {idx + 1} is not defined")
            stop = _field_end(buf, stop, end, spec[idx], f"{what} subfield {idx + 1}")
    if stop > end:
        raise AsterixTruncated(f"{what} needs {stop - pos} bytes, {end - pos} left in the block")
    return stop


# FSPEC bytes -> the items they name, in order, as (name, kind, spec): worked out once per FSPEC a sender uses
_PLANS: dict[bytes, tuple[tuple[str, int, Any], ...]] = {}
MAX_PLANS = 1024  # hostile input could name a new FSPEC in every record: beyond this, plans are not kept


def _plan(fspec: bytes) -> tuple[tuple[str, int, Any], ...]:
    plan = _PLANS.get(fspec)
    if plan is not None:
        return plan
    frns, _ = _presence(fspec, 0, len(fspec), "CAT062 FSPEC")
    entries = []
    for frn in frns:
        entry = UAP062[frn] if frn < len(UAP062) else None
        if entry is None:
            raise AsterixUnsupported(f"CAT062 FSPEC names FRN {frn + 1}, which the UAP leaves spare")
        name, (kind, spec) = entry
        entries.append((name, kind, spec))
    plan = tuple(entries)
    if len(_PLANS) < MAX_PLANS:
        _PLANS[fspec] = plan
    return plan


def _split_record(buf: bytes, pos: int, end: int) -> tuple[dict[str, int], int]:
    """Start positions of the items of the record at pos, by item name, and the position after the record."""
    start = pos
    while pos < end and buf[pos] & 1:
        pos += 1
    if pos >= end:
        raise AsterixTruncated("CAT062 FSPEC runs past the end of the block")
    pos += 1
    items: dict[str, int] = {}
    for name, kind, spec in _plan(buf[start:pos]):
        items[name] = pos
        if kind == FIXED:
            pos += spec  # checked against end below, before any value is read
        else:
            pos = _field_end(buf, pos, end, (kind, spec), f"I062/{name}")
    if pos > end:
        raise AsterixTruncated(f"CAT062 record needs {pos - start} bytes, {end - start} left in the block")
    return items, pos


_I16 = struct.Struct(">h").unpack_from
_I16X2 = struct.Struct(">hh").unpack_from
_I32X2 = struct.Struct(">ii").unpack_from
_U16 = struct.Struct(">H").unpack_from


def _s24(v: int) -> int:
    return v - (1 << 24) if v & (1 << 23) else v


class _Rows:
    """Raw values of the records decoded so far, column by column (converted to SI all at once)."""

    def __init__(self) -> None:
        self.ints: list[tuple[int, ...]] = []  # sac, sic, service, tod, track, status, mode3a, flags, rx_ns
        self.rx_ns = 0  # the receive time of the datagram being decoded
        self.geo: list[tuple[int, int, int, int, int, int, int, int]] = []  # lat, lon, x, y, alt, vx, vy, climb

    def add(self, buf: bytes, items: dict[str, int]) -> None:
        """Take one record's values (raises on a missing mandatory item or a value outside its range)."""
        for name in ("010", "040", "070", "080"):
            if name not in items:
                raise AsterixMissingItem(f"CAT062 record without I062/{name}")
        if "105" not in items and "100" not in items:
            raise AsterixMissingItem("CAT062 record without a position (I062/105 or I062/100)")
        p = items["070"]
        tod = buf[p] << 16 | buf[p + 1] << 8 | buf[p + 2]
        if tod >= TOD_WRAP:
            raise AsterixOutOfRange(f"I062/070 time of day {tod * TOD_LSB_S:.3f} s is not below 86400 s")
        flags = 0
        lat = lon = x = y = alt = vx = vy = climb = 0
        if "105" in items:
            lat, lon = _I32X2(buf, items["105"])
            if not -(2**24) <= lat <= 2**24:
                raise AsterixOutOfRange(f"I062/105 latitude {lat * LATLON_LSB_DEG:.6f} deg outside -90..90")
            if not -(2**25) <= lon < 2**25:
                raise AsterixOutOfRange(f"I062/105 longitude {lon * LATLON_LSB_DEG:.6f} deg outside -180..180")
            flags |= 1
        if "100" in items:
            p = items["100"]
            x = _s24(buf[p] << 16 | buf[p + 1] << 8 | buf[p + 2])
            y = _s24(buf[p + 3] << 16 | buf[p + 4] << 8 | buf[p + 5])
            flags |= 2
        if "130" in items:
            (alt,) = _I16(buf, items["130"])
            flags |= 4
        if "185" in items:
            vx, vy = _I16X2(buf, items["185"])
            flags |= 8
        if "220" in items:
            (climb,) = _I16(buf, items["220"])
            flags |= 16
        p = items["080"]
        if buf[p] & 0x01 and buf[p + 1] & 0x40:
            status = SystemTrackStatus.ENDED
        elif buf[p] & 0x02:
            status = SystemTrackStatus.TENTATIVE
        elif buf[p] & 0x01 and buf[p + 1] & 0x01 and buf[p + 2] & 0x01 and buf[p + 3] & 0x80:
            status = SystemTrackStatus.COASTING
        else:
            status = SystemTrackStatus.CONFIRMED
        p = items["010"]
        sac, sic = buf[p], buf[p + 1]
        service = buf[items["015"]] if "015" in items else -1
        (track,) = _U16(buf, items["040"])
        mode3a = _U16(buf, items["060"])[0] & 0x0FFF if "060" in items else -1
        self.ints.append((sac, sic, service, tod, track, int(status), mode3a, flags, self.rx_ns))
        self.geo.append((lat, lon, x, y, alt, vx, vy, climb))

    def tracks(self, frame: ReferenceFrame) -> SystemTracks:
        n = len(self.ints)
        if n == 0:
            return SystemTracks.empty()
        ints = np.array(self.ints, dtype=np.int64).reshape(n, 9)
        raw = np.array(self.geo, dtype=np.float64).reshape(n, 8)
        flags = ints[:, 7]
        has_wgs, has_alt, has_vel, has_climb = ((flags & bit) != 0 for bit in (1, 4, 8, 16))
        lat, lon = raw[:, 0] * LATLON_LSB_DEG, raw[:, 1] * LATLON_LSB_DEG
        if not has_wgs.all():
            plane_lat, plane_lon = frame.from_plane(raw[:, 2] * XY_LSB_M, raw[:, 3] * XY_LSB_M)
            lat, lon = np.where(has_wgs, lat, plane_lat), np.where(has_wgs, lon, plane_lon)
        h = np.where(has_alt, raw[:, 4] * ALTITUDE_LSB_M, frame.origin[2])
        state = np.empty((n, 6))
        state[:, :3] = frame.to_enu(lat, lon, h)
        local = np.stack([raw[:, 5] * VELOCITY_LSB_MPS, raw[:, 6] * VELOCITY_LSB_MPS, raw[:, 7] * CLIMB_LSB_MPS], -1)
        state[:, 3:] = np.einsum("nij,ni->nj", frame.target_axes(lat, lon), local)
        state[~has_alt, 2] = np.nan
        state[~has_vel, 3:] = np.nan
        state[~has_climb, 5] = np.nan
        return SystemTracks(
            sac=ints[:, 0], sic=ints[:, 1], service_id=ints[:, 2], tod_s=ints[:, 3] * TOD_LSB_S,
            track_number=ints[:, 4], status=ints[:, 5].astype(np.int8), state=state, mode3a=ints[:, 6],
            rx_ns=ints[:, 8],
        )


def _walk(buf: bytes, rows: _Rows, on_error: Callable[[AsterixError], None]) -> int:
    """Every CAT062 record of every data block in buf into rows; returns the blocks of other categories (skipped).

    A bad block header ends the datagram, a record whose layout cannot be followed ends its block, a record
    with a bad value is skipped: each goes to on_error, which may raise."""
    other = 0
    pos = 0
    while pos < len(buf):
        if len(buf) - pos < 3:
            on_error(AsterixTruncated(f"{len(buf) - pos} bytes left, too few for a block header"))
            break
        cat, length = buf[pos], buf[pos + 1] << 8 | buf[pos + 2]
        if length < 3 or pos + length > len(buf):
            on_error(AsterixTruncated(f"CAT{cat:03d} block says {length} bytes, {len(buf) - pos} are there"))
            break
        end = pos + length
        if cat != CAT062:
            other += 1  # a system may send CAT063/065 status beside its tracks: not an error
        else:
            rec = pos + 3
            while rec < end:
                try:
                    items, nxt = _split_record(buf, rec, end)
                except AsterixError as e:
                    on_error(e)
                    break
                try:
                    rows.add(buf, items)
                except AsterixError as e:
                    on_error(e)
                rec = nxt
        pos = end
    return other


def _raise(e: AsterixError) -> None:
    raise e


def decode_cat062(data: bytes | bytearray | memoryview, origin: Sequence[float] | ReferenceFrame) -> SystemTracks:
    """Every CAT062 record in data (one or more data blocks) in the origin's ENU frame; blocks of other categories
    are skipped; raises an AsterixError on the first malformed block or record."""
    frame = origin if isinstance(origin, ReferenceFrame) else ReferenceFrame(origin)
    rows = _Rows()
    _walk(bytes(data), rows, _raise)
    return rows.tracks(frame)


class Cat062Decoder:
    """Decodes datagrams of CAT062 blocks into the origin's ENU frame. decode() never raises on bad bytes: what
    it rejects it counts (counters, by reason) and logs, rate-limited."""

    def __init__(self, origin: Sequence[float] | ReferenceFrame, name: str = "cat062") -> None:
        self.frame = origin if isinstance(origin, ReferenceFrame) else ReferenceFrame(origin)
        self.name = name
        self.counters: dict[str, int] = dict.fromkeys(("datagrams", "records", "other_categories", *REJECT_KEYS), 0)
        self._log = RateLimitedLog(log)

    @property
    def rejected(self) -> int:
        return sum(self.counters[k] for k in REJECT_KEYS)

    def _reject(self, e: AsterixError) -> None:
        key = ("truncated" if isinstance(e, AsterixTruncated)
               else "unsupported_item" if isinstance(e, AsterixUnsupported)
               else "missing_item" if isinstance(e, AsterixMissingItem) else "out_of_range")
        self.counters[key] += 1
        self._log.warning("%s: CAT062 data rejected (%s): %s", self.name, key, e)

    def decode(self, data: bytes | bytearray | memoryview, rx_ns: int = 0) -> SystemTracks:
        """The tracks of one datagram (rx_ns: when it was received, kept with each record)."""
        return self.decode_datagrams([(bytes(data), rx_ns)])

    def decode_datagrams(self, datagrams: Sequence[tuple[bytes, int]]) -> SystemTracks:
        """The tracks of (datagram, rx_ns) pairs, in order, converted to SI together."""
        rows = _Rows()
        for data, rx_ns in datagrams:
            rows.rx_ns = rx_ns
            self.counters["datagrams"] += 1
            self.counters["other_categories"] += _walk(data, rows, self._reject)
        self.counters["records"] += len(rows.ints)
        return rows.tracks(self.frame)


# ---- links ----------------------------------------------------------------------------------------------


def _udp_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "udp" or parts.hostname is None or parts.port is None:
        raise LinkError(f"{url}: expected udp://HOST:PORT")
    return parts.hostname, parts.port


class SystemTrackPublisher:
    """Sends system tracks as CAT062 datagrams to url (udp://HOST:PORT). publish() never blocks and never raises on
    the network: a datagram the OS refuses (buffer full, no route, or nothing listening there: the OS says so on
    the send after one went nowhere) is counted in stats["send_errors"] and dropped."""

    def __init__(
        self,
        url: str,
        sac: int,
        sic: int,
        origin: Sequence[float],
        *,
        service_id: int = 1,
        cartesian: bool = True,
        max_datagram_bytes: int = MAX_DATAGRAM_BYTES,
    ) -> None:
        host, port = _udp_address(url)
        if port == 0:
            raise LinkError(f"{url}: a destination needs a port")
        self.encoder = Cat062Encoder(sac, sic, origin, service_id=service_id, cartesian=cartesian,
                                     max_datagram_bytes=max_datagram_bytes)
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except OSError as e:
            raise LinkError(f"{url}: cannot resolve {host}: {e}") from e
        self.url = url
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # connected, so that the OS reports "nothing listening there" (an ICMP port unreachable) on a later send
            self._sock.connect(address)
        except OSError as e:
            self._sock.close()
            raise LinkError(f"{url}: cannot send there: {e}") from e
        self._sock.setblocking(False)
        self.stats = dict.fromkeys(("updates", "records_encoded", "datagrams_sent", "bytes_sent", "send_errors",
                                    "tracks_skipped", "items_omitted"), 0)

    def publish(
        self,
        tod_s: npt.ArrayLike,
        track_id: npt.ArrayLike,
        status: npt.ArrayLike,
        state: npt.ArrayLike,
        mode3a: npt.ArrayLike,
    ) -> int:
        """Send one update (arguments as Cat062Encoder.encode); returns the datagrams the OS took."""
        enc = self.encoder.encode(tod_s, track_id, status, state, mode3a)
        s = self.stats
        s["updates"] += 1
        s["tracks_skipped"] += enc.skipped
        s["items_omitted"] += enc.omitted_items
        sent = 0
        for datagram in enc.datagrams:
            try:
                self._sock.send(datagram)
            except OSError:  # BlockingIOError, ConnectionRefusedError (nothing listening), ENETUNREACH, ...
                s["send_errors"] += 1
                continue
            sent += 1
            s["bytes_sent"] += len(datagram)
        s["datagrams_sent"] += sent
        s["records_encoded"] += enc.records
        return sent

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SystemTrackPublisher:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class SystemTrackReceiver:
    """Receives CAT062 datagrams on a bound UDP port (udp://HOST:PORT; port 0: the OS picks, see .port) and decodes
    them into the origin's ENU frame. poll() never blocks and never raises on bad bytes (see .decoder.counters)."""

    def __init__(
        self,
        bind: str = "udp://127.0.0.1:0",
        *,
        origin: Sequence[float],
        clock_ns: Callable[[], int] = time.monotonic_ns,
        recorder: Callable[[bytes, int], None] | None = None,
        max_datagrams_per_poll: int = MAX_DATAGRAMS_PER_POLL,
    ) -> None:
        """recorder(datagram, rx_ns), if given, sees every datagram as received (for a run's recording)."""
        _udp_address(bind)
        transport = open_transport(bind)
        assert isinstance(transport, UdpTransport)  # a udp:// URL always opens one
        self.transport = transport
        self.decoder = Cat062Decoder(origin, name=f"cat062 udp:{transport.local_port}")
        self.clock_ns = clock_ns
        self.recorder = recorder
        self.max_datagrams_per_poll = max_datagrams_per_poll
        self.last_sender: tuple[str, int] | None = None
        self.stats = dict.fromkeys(("polls", "datagrams", "bytes_rx", "receive_errors"), 0)

    @property
    def port(self) -> int:
        return self.transport.local_port

    def fileno(self) -> int:
        return self.transport.fileno()

    def poll(self) -> SystemTracks:
        """The tracks of every datagram waiting (at most max_datagrams_per_poll of them), in arrival order."""
        self.stats["polls"] += 1
        received: list[tuple[bytes, int]] = []
        for _ in range(self.max_datagrams_per_poll):
            try:
                data, sender = self.transport.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.stats["receive_errors"] += 1
                break
            rx_ns = self.clock_ns()
            self.stats["datagrams"] += 1
            self.stats["bytes_rx"] += len(data)
            self.last_sender = (sender[0], sender[1])
            if self.recorder is not None:
                self.recorder(data, rx_ns)
            received.append((data, rx_ns))
        return self.decoder.decode_datagrams(received) if received else SystemTracks.empty()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> SystemTrackReceiver:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
