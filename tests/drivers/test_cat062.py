"""ASTERIX CAT062 system tracks: our encoder and decoder against each other, libasterix, tshark and hostile bytes, and
the publisher and receiver over real UDP on loopback."""

from __future__ import annotations

import logging
import math
import select
import socket
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers.asterix import (
    AsterixError,
    AsterixMissingItem,
    AsterixOutOfRange,
    AsterixTruncated,
    AsterixUnsupported,
)
from hil.drivers.cat062 import (
    ALTITUDE_LSB_M,
    CLIMB_LSB_MPS,
    LATLON_LSB_DEG,
    MAX_DATAGRAM_BYTES,
    VELOCITY_LSB_MPS,
    XY_LSB_M,
    Cat062Decoder,
    Cat062Encoder,
    ReferenceFrame,
    SystemTrackPublisher,
    SystemTrackReceiver,
    SystemTracks,
    SystemTrackStatus,
    decode_cat062,
    encode_cat062,
)
from hil.errors import LinkError
from hil.geo import METRES_PER_FOOT, WGS84_A, WGS84_E2, geodetic_to_enu
from tests.helpers import require_tool, tshark_fields

ORIGIN = (52.0, 4.5, 12.0)
S = SystemTrackStatus


def random_tracks(rng: np.random.Generator, n: int, reach_m: float = 120e3) -> dict[str, np.ndarray]:
    """Tracks as a host holds them: ENU states within reach_m, every status, some without velocity or a code."""
    state = np.column_stack([
        rng.uniform(-reach_m, reach_m, (n, 2)), rng.uniform(-100.0, 20e3, n), rng.uniform(-700.0, 700.0, (n, 2)),
        rng.uniform(-300.0, 300.0, n),
    ])
    state[rng.random(n) < 0.1, 3:] = np.nan
    state[rng.random(n) < 0.1, 5] = np.nan
    return {
        "tod_s": rng.uniform(0.0, 86399.0, n),
        "track_id": rng.integers(0, 65536, n),
        "status": rng.integers(0, 4, n),
        "state": state,
        "mode3a": np.where(rng.random(n) < 0.5, -1, rng.integers(0, 0o10000, n)),
    }


def on_the_wire(t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the items carry, worked out from the tracks: latitude, longitude, height, velocity east / north / up at
    each target, system-plane x / y."""
    frame = ReferenceFrame(ORIGIN)
    lat, lon, h = frame.to_geodetic(t["state"][:, :3])
    axes = frame.target_axes(lat, lon)
    v = np.where(np.isnan(t["state"][:, 3:]), 0.0, t["state"][:, 3:])
    level = np.isnan(t["state"][:, 5])  # an unknown vertical speed goes out as level flight at the target
    v[level, 2] = -(axes[level, 2, :2] * v[level, :2]).sum(axis=1) / axes[level, 2, 2]
    local = np.einsum("nij,nj->ni", axes, v)
    x, y = frame.to_plane(t["state"][:, :3] - (h - ORIGIN[2])[:, None] * axes[:, 2, :])
    return lat, lon, h, local, np.column_stack([x, y])


def decode_all(datagrams: list[bytes], origin: tuple[float, float, float] = ORIGIN) -> SystemTracks:
    return SystemTracks.concatenate([decode_cat062(d, origin) for d in datagrams])


def test_round_trip_within_the_lsbs() -> None:
    for k, origin in enumerate([ORIGIN, (-33.9, 151.2, 40.0), (0.0, 179.9, 0.0), (78.0, -15.0, 5.0)]):
        t = random_tracks(np.random.default_rng(k), 500)
        enc = Cat062Encoder(7, 9, origin, service_id=4).encode(**t)
        assert (enc.records, enc.skipped, enc.omitted_items) == (500, 0, 0)
        got = decode_all(enc.datagrams, origin)
        assert len(got) == 500
        assert (got.sac == 7).all() and (got.sic == 9).all() and (got.service_id == 4).all()
        assert np.abs(got.tod_s - t["tod_s"]).max() <= 1 / 256 + 1e-9
        assert (got.track_number == t["track_id"]).all()
        assert (got.status == t["status"]).all()
        assert (got.mode3a == t["mode3a"]).all()
        # a half LSB of latitude / longitude (longitude's shrinks with the latitude; the meridian radius plus 20 km
        # is within 1 % of the equator's), a half LSB of altitude, the local axes turned by at most 0.02 rad
        lat_m = math.radians(LATLON_LSB_DEG) * WGS84_A / 2 * 1.01
        err = np.abs(got.state - t["state"])
        assert np.nanmax(err[:, :2]) <= lat_m + ALTITUDE_LSB_M / 2 * 0.02
        assert err[:, 2].max() <= ALTITUDE_LSB_M / 2 + 0.01
        # the turn from east / north / up at the target into the origin's axes keeps the length of the error
        half_v = math.hypot(VELOCITY_LSB_MPS / 2, VELOCITY_LSB_MPS / 2, CLIMB_LSB_MPS / 2)
        assert np.nanmax(np.sqrt(np.nansum(err[:, 3:] ** 2, axis=1))) <= half_v + 1e-9
        # what was not sent comes back as NaN
        assert (np.isnan(got.state[:, 3:5]) == np.isnan(t["state"][:, 3:5])).all()
        assert (np.isnan(got.state[:, 5]) == np.isnan(t["state"][:, 3:6]).any(axis=1)).all()


def test_reference_frame_agrees_with_hil_geo() -> None:
    frame = ReferenceFrame(ORIGIN)
    rng = np.random.default_rng(5)
    lla = np.column_stack([ORIGIN[0] + rng.uniform(-1, 1, 20), ORIGIN[1] + rng.uniform(-1, 1, 20),
                           rng.uniform(-100, 30e3, 20)])
    ours = frame.to_enu(lla[:, 0], lla[:, 1], lla[:, 2])
    theirs = np.array([geodetic_to_enu(lat, lon, h, ORIGIN) for lat, lon, h in lla])
    assert np.abs(ours - theirs).max() < 1e-6
    back = np.column_stack(frame.to_geodetic(ours))
    assert np.abs(back[:, :2] - lla[:, :2]).max() < 1e-10 and np.abs(back[:, 2] - lla[:, 2]).max() < 1e-4


def test_system_plane_is_a_stereographic_projection_around_the_origin() -> None:
    frame = ReferenceFrame(ORIGIN)
    # due north of the origin, at its height: y is the meridian arc (stereographic scale grows as 1 + (s/2R)^2)
    dlat = np.radians(np.array([0.1, 0.5, 0.9]))
    lat = np.radians(ORIGIN[0]) + np.linspace(0.0, 1.0, 2001)[:, None] * dlat
    meridian = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * np.sin(lat) ** 2) ** 1.5
    arc = np.trapezoid(meridian, lat, axis=0)
    foot = frame.to_enu(np.degrees(lat[-1]), np.full(3, ORIGIN[1]), np.full(3, ORIGIN[2]))
    x, y = frame.to_plane(foot)
    assert np.abs(x).max() < 1e-6
    assert np.abs(y - arc * (1 + (arc / (2 * frame.radius)) ** 2 / 3)).max() < 0.5
    lat_back, lon_back = frame.from_plane(x, y)
    assert np.abs(lat_back - np.degrees(lat[-1])).max() < 1e-8 and np.abs(lon_back - ORIGIN[1]).max() < 1e-8


def test_what_does_not_fit_is_left_out_and_counted() -> None:
    state = np.array([
        [1e3, 2e3, 3e3, 9000.0, 0.0, 0.0],  # faster than I062/185 carries: no velocity
        [1e3, 2e3, 60e3, 100.0, 0.0, 0.0],  # above 150000 ft: no altitude
        [1e3, 2e3, 3e3, 100.0, 0.0, 2000.0],  # climbing faster than I062/220 carries: no vertical speed
        [5e6, 0.0, 3e3, 0.0, 0.0, 0.0],  # beyond I062/100's reach and, this far out on the plane, 1900 km up
        [np.nan, 0.0, 0.0, 0.0, 0.0, 0.0],  # no position: not sent
        [1e3, 2e3, 3e3, np.nan, np.nan, np.nan],  # no velocity: not sent, not counted
    ])
    enc = Cat062Encoder(1, 2, ORIGIN).encode(10.0, np.arange(6), np.full(6, 2), state, np.full(6, -1))
    assert (enc.records, enc.skipped, enc.omitted_items) == (5, 1, 5)
    got = decode_all(enc.datagrams)
    assert got.track_number.tolist() == [0, 1, 2, 3, 5]
    assert np.isnan(got.state[0, 3:]).all()
    assert np.isnan(got.state[1, 2]) and not np.isnan(got.state[1, :2]).any()
    # read as level flight: 2000 m/s up, 2 km out, turns 0.7 m/s into the plane
    assert np.isnan(got.state[2, 5]) and got.state[2, 3] == pytest.approx(100.0, abs=1.0)
    assert np.isnan(got.state[3, 2]) and np.isfinite(got.state[3, :2]).all()  # still sent, without its height
    assert np.isnan(got.state[4, 3:]).all()


def test_track_ids_go_out_mod_65536_and_times_wrap_at_midnight() -> None:
    state = np.zeros((2, 6))
    got = decode_all(encode_cat062(1, 2, ORIGIN, [86400.0 + 3.5, -1.0], [70000, 5], [2, 2], state, [-1, -1]))
    assert got.track_number.tolist() == [70000 % 65536, 5]
    assert got.tod_s.tolist() == [3.5, 86399.0]


def test_datagrams_stay_under_their_size_and_keep_every_record_in_order() -> None:
    t = random_tracks(np.random.default_rng(8), 1000)
    for size in (64, 508, MAX_DATAGRAM_BYTES):
        enc = Cat062Encoder(1, 2, ORIGIN, max_datagram_bytes=size).encode(**t)
        assert max(len(d) for d in enc.datagrams) <= size
        assert all(d[0] == 62 and int.from_bytes(d[1:3], "big") == len(d) for d in enc.datagrams)
        assert decode_all(enc.datagrams).track_number.tolist() == t["track_id"].tolist()
    assert len(Cat062Encoder(1, 2, ORIGIN).encode(**t).datagrams) < 1000 * 40 / (MAX_DATAGRAM_BYTES - 3) + 1
    assert Cat062Encoder(1, 2, ORIGIN).encode(0.0, [], [], np.zeros((0, 6)), []).datagrams == []


def test_encoder_refuses_what_is_not_a_track() -> None:
    enc = Cat062Encoder(1, 2, ORIGIN)
    with pytest.raises(AsterixOutOfRange, match="disagree"):
        enc.encode(0.0, [1, 2], [2, 2], np.zeros((2, 5)), [-1, -1])
    with pytest.raises(AsterixOutOfRange, match="status 7"):
        enc.encode(0.0, [1], [7], np.zeros((1, 6)), [-1])
    with pytest.raises(AsterixOutOfRange, match="Mode 3/A"):
        enc.encode(0.0, [1], [2], np.zeros((1, 6)), [0o10000])
    with pytest.raises(AsterixOutOfRange, match="SAC"):
        Cat062Encoder(256, 2, ORIGIN)
    for size in (40, 65508):
        with pytest.raises(AsterixOutOfRange, match="datagram size"):
            Cat062Encoder(1, 2, ORIGIN, max_datagram_bytes=size)
    with pytest.raises(AsterixOutOfRange, match="origin"):
        Cat062Encoder(1, 2, (95.0, 0.0, 0.0))


# ---- an independent decoder and encoder: libasterix ------------------------------------------------------

asterix_base = pytest.importorskip("asterix.base")
asterix_gen = pytest.importorskip("asterix.generated")
Cat062 = asterix_gen.Cat_062_1_19


def libasterix_records(data: bytes) -> list:
    out = []
    for db in asterix_base.RawDatablock.parse(asterix_base.Bits.from_bytes(data)):
        assert db.get_category() == 62
        recs = Cat062.cv_uap.parse(db.get_raw_records())
        assert not isinstance(recs, ValueError)
        out += recs
    return out


def quantity(record: object, item: str, sub: str | None, unit: str) -> float | None:
    it = record.get_item(item)  # type: ignore[attr-defined]
    if it is None:
        return None
    var = it.variation if sub is None else it.variation.get_item(sub).variation
    return float(var.content.as_quantity(unit))


def test_libasterix_reads_what_we_write() -> None:
    t = random_tracks(np.random.default_rng(3), 60)
    datagrams = Cat062Encoder(5, 6, ORIGIN, service_id=2).encode(**t).datagrams
    ours = decode_all(datagrams)
    theirs = [r for d in datagrams for r in libasterix_records(d)]
    assert len(theirs) == len(ours) == 60
    lat, lon, h, local, _ = on_the_wire(t)
    for i, r in enumerate(theirs):
        i010 = r.get_item("010").variation
        assert (i010.get_item("SAC").as_uint(), i010.get_item("SIC").as_uint()) == (5, 6)
        assert r.get_item("015").as_uint() == 2
        assert r.get_item("040").as_uint() == ours.track_number[i]
        assert quantity(r, "070", None, "s") == pytest.approx(ours.tod_s[i])
        assert quantity(r, "105", "LAT", "°") == pytest.approx(lat[i], abs=LATLON_LSB_DEG / 2 + 1e-12)
        assert quantity(r, "105", "LON", "°") == pytest.approx(lon[i], abs=LATLON_LSB_DEG / 2 + 1e-12)
        assert (quantity(r, "130", None, "ft") or 0.0) * METRES_PER_FOOT == pytest.approx(
            h[i], abs=ALTITUDE_LSB_M / 2 + 1e-9)
        assert r.get_item("100") is not None
        vx, vy = quantity(r, "185", "VX", "m/s"), quantity(r, "185", "VY", "m/s")
        assert (vx is None) == bool(np.isnan(t["state"][i, 3]))
        if vx is not None:
            assert (vx, vy) == pytest.approx(local[i, :2], abs=VELOCITY_LSB_MPS / 2 + 1e-9)
        climb = quantity(r, "220", None, "ft/min")
        assert (climb is None) == bool(np.isnan(t["state"][i, 3:6]).any())
        if climb is not None:
            assert climb * METRES_PER_FOOT / 60 == pytest.approx(local[i, 2], abs=CLIMB_LSB_MPS / 2 + 1e-9)
        i060 = r.get_item("060")
        assert (i060 is None) == (t["mode3a"][i] < 0)
        if i060 is not None:
            assert int(i060.variation.get_item("MODE3A").variation.content.as_string(), 8) == t["mode3a"][i]
        i080 = r.get_item("080").variation
        flags = {k: i080.get_item(k) for k in ("CNF", "TSE", "CST")}
        bits = {k: None if v is None else v.as_uint() for k, v in flags.items()}
        status = t["status"][i]
        assert bits["CNF"] == (1 if status == S.TENTATIVE else 0)
        assert bits["TSE"] == (1 if status == S.ENDED else (None if status != S.COASTING else 0))
        assert bits["CST"] == (1 if status == S.COASTING else None)


RICH_RECORD = {
    "010": (("SAC", 9), ("SIC", 8)), "015": 3, "070": (3600.25, "s"), "210": 0x0102, "060": 0o1234,
    "245": 0x1122334455667, "040": 4242, "080": (0, 0, 0, 0x40), "290": {"TRK": 3, "ADS": 0x1234, "MLT": 4},
    "380": {"ADR": 0xABCDEF, "TIS": (0x10,), "TID": [0x0102030405060708090A0B0C0D0E0F], "MB": [1, 2], "BPS": 5},
    "200": 1, "295": {"MFL": 1, "BPS": 2, "GAL": 3}, "136": 100, "135": 200,
    "390": {"TAG": 0x0102, "CS": 0x41424344454647, "TOD": [0x01020304, 0x05060708], "PEC": 0x48494A4B4C4D4E},
    "270": (5, 6, 7), "300": 3, "110": {"SUM": 0x40, "POS": 0x010203040506, "XP": 1}, "120": 0o777,
    "510": (0x11223, 0x44556), "500": {"APC": 0x01020304, "ARC": 5}, "340": {"SID": 0x0102, "POS": 0x0304, "TYP": 0x20},
    "RE": b"\x01\x02\x03", "SP": b"\x09",
}  # fmt: skip


def test_we_read_what_libasterix_writes_including_items_we_skip() -> None:
    want = {"state": np.array([[20e3, -35e3, 8000.0, 150.0, -75.0, -3.25]])}
    lat, lon, h, local, plane = on_the_wire(want)
    moving = {
        "130": (h[0] / METRES_PER_FOOT, "ft"),
        "185": (("VX", (local[0, 0], "m/s")), ("VY", (local[0, 1], "m/s"))),
        "220": (local[0, 2] * 60 / METRES_PER_FOOT, "ft/min"),
    }
    wgs = Cat062.cv_record.create({**RICH_RECORD, **moving, "105": (("LAT", (lat[0], "°")), ("LON", (lon[0], "°")))})
    i100 = (("X", (plane[0, 0], "m")), ("Y", (plane[0, 1], "m")))
    xy = Cat062.cv_record.create({**RICH_RECORD, **moving, "100": i100})
    status_block = bytes([65, 0, 6, 0x80, 0x01, 0x02])  # a CAT065 SDPS status beside the tracks: skipped
    data = Cat062.create([wgs, xy, wgs]).unparse().to_bytes() + status_block
    decoder = Cat062Decoder(ORIGIN)
    got = decoder.decode(data, rx_ns=77)
    assert decoder.counters["records"] == 3 and decoder.counters["other_categories"] == 1 and decoder.rejected == 0
    assert got.sac.tolist() == [9] * 3 and got.service_id.tolist() == [3] * 3 and got.rx_ns.tolist() == [77] * 3
    assert got.track_number.tolist() == [4242] * 3 and got.mode3a.tolist() == [0o1234] * 3
    assert got.status.tolist() == [S.COASTING] * 3 and got.tod_s.tolist() == [3600.25] * 3
    # WGS-84 within its LSBs; the plane within its 0.5 m LSB and the stereographic round trip
    for row, tol in ((0, 0.35), (1, 0.5), (2, 0.35)):
        assert np.abs(got.state[row, :2] - want["state"][0, :2]).max() <= tol
        assert abs(got.state[row, 2] - want["state"][0, 2]) <= ALTITUDE_LSB_M / 2 + 0.01
        assert np.abs(got.state[row, 3:] - want["state"][0, 3:]).max() <= VELOCITY_LSB_MPS
    assert decode_cat062(data, ORIGIN).track_number.tolist() == [4242] * 3


# ---- Wireshark's dissector ------------------------------------------------------------------------------


def write_pcap(datagrams: list[bytes], path: Path, port: int) -> Path:
    """A capture of the datagrams as UDP to 127.0.0.1:port, made by Wireshark's own text2pcap from a hex dump."""
    text2pcap = require_tool("text2pcap", "wireshark-common")
    dump = path.with_suffix(".txt")
    with dump.open("w") as f:
        for d in datagrams:
            for i in range(0, len(d), 16):
                f.write(f"{i:06x} {d[i : i + 16].hex(' ')}\n")
    subprocess.run([text2pcap, "-q", "-4", "127.0.0.1,127.0.0.1", "-u", f"40000,{port}", str(dump), str(path)],
                   check=True, timeout=60, capture_output=True)
    return path


@pytest.mark.tools
def test_wireshark_dissector_agrees(tmp_path: Path) -> None:
    require_tool("tshark", "tshark")
    t = random_tracks(np.random.default_rng(4), 90)
    datagrams = Cat062Encoder(1, 2, ORIGIN, max_datagram_bytes=508).encode(**t).datagrams
    pcap = write_pcap(datagrams, tmp_path / "tracks.pcap", 8620)
    names = ["010_SAC", "010_SIC", "040_VALUE", "070_VALUE", "105_LAT", "105_LON", "100_X", "100_Y", "185_VX",
             "185_VY", "130_VALUE", "220_VALUE", "060_MODE3A", "080_CNF", "080_TSE", "080_CST"]
    rows = tshark_fields(pcap, [f"asterix.062_{n}" for n in names], "-d", "udp.port==8620,asterix",
                         "-E", "aggregator=|")
    assert len(rows) == len(datagrams)
    cols: dict[str, list[str]] = {n: [] for n in names}
    for row in rows:
        for n, cell in zip(names, row, strict=True):
            cols[n] += cell.split("|") if cell else []
    ours = decode_all(datagrams)
    lat, lon, h, local, plane = on_the_wire(t)
    assert [int(v, 0) for v in cols["010_SAC"]] == [1] * 90 and [int(v, 0) for v in cols["010_SIC"]] == [2] * 90
    assert [int(v, 0) for v in cols["040_VALUE"]] == ours.track_number.tolist()
    assert [float(v) for v in cols["070_VALUE"]] == pytest.approx(ours.tod_s.tolist())
    assert [float(v) for v in cols["105_LAT"]] == pytest.approx(lat, abs=LATLON_LSB_DEG / 2 + 1e-12)
    assert [float(v) for v in cols["105_LON"]] == pytest.approx(lon, abs=LATLON_LSB_DEG / 2 + 1e-12)
    assert [float(v) * METRES_PER_FOOT for v in cols["130_VALUE"]] == pytest.approx(h, abs=ALTITUDE_LSB_M / 2 + 1e-9)
    assert [float(v) for v in cols["100_X"]] == pytest.approx(plane[:, 0], abs=XY_LSB_M / 2 + 1e-9)
    assert [float(v) for v in cols["100_Y"]] == pytest.approx(plane[:, 1], abs=XY_LSB_M / 2 + 1e-9)
    moving = ~np.isnan(t["state"][:, 3])
    assert [float(v) for v in cols["185_VX"]] == pytest.approx(local[moving, 0], abs=VELOCITY_LSB_MPS / 2 + 1e-9)
    assert [float(v) for v in cols["185_VY"]] == pytest.approx(local[moving, 1], abs=VELOCITY_LSB_MPS / 2 + 1e-9)
    climbing = ~np.isnan(t["state"][:, 3:6]).any(axis=1)
    assert [float(v) * METRES_PER_FOOT / 60 for v in cols["220_VALUE"]] == pytest.approx(
        local[climbing, 2], abs=CLIMB_LSB_MPS / 2 + 1e-9)
    assert [int(v) for v in cols["060_MODE3A"]] == [m for m in t["mode3a"].tolist() if m >= 0]
    assert [int(v) for v in cols["080_CNF"]] == [int(s == S.TENTATIVE) for s in t["status"]]
    assert [int(v) for v in cols["080_TSE"]] == [int(s == S.ENDED) for s in t["status"] if s in (S.ENDED, S.COASTING)]
    assert [int(v) for v in cols["080_CST"]] == [1 for s in t["status"] if s == S.COASTING]


# ---- hostile bytes --------------------------------------------------------------------------------------


def valid_datagram(n: int, seed: int) -> bytes:
    return Cat062Encoder(1, 2, ORIGIN, max_datagram_bytes=65000).encode(**random_tracks(
        np.random.default_rng(seed), n)).datagrams[0]


def check_tracks(got: SystemTracks) -> None:
    n = len(got)
    assert all(len(getattr(got, f)) == n for f in SystemTracks.__dataclass_fields__)
    assert got.state.shape == (n, 6) and ((got.status >= 0) & (got.status <= 3)).all()
    assert ((got.tod_s >= 0) & (got.tod_s < 86400)).all() and not np.isnan(got.state[:, :2]).any()


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_random_bytes_are_counted_never_raised(data: bytes) -> None:
    decoder = Cat062Decoder(ORIGIN)
    got = decoder.decode(data)
    check_tracks(got)
    assert decoder.counters["datagrams"] == 1 and decoder.counters["records"] == len(got)
    try:
        strict = decode_cat062(data, ORIGIN)
    except AsterixError as e:
        assert str(e) and decoder.rejected >= 1
    else:
        assert decoder.rejected == 0 and len(strict) == len(got)


@given(st.integers(1, 40), st.data())
@settings(max_examples=300, deadline=None)
def test_corrupted_blocks_are_counted_never_raised(n: int, data: st.DataObject) -> None:
    block = bytearray(valid_datagram(n, n))
    for _ in range(data.draw(st.integers(0, 4))):  # in the records: the block header stays as it was
        block[data.draw(st.integers(3, len(block) - 1))] = data.draw(st.integers(0, 255))
    decoder = Cat062Decoder(ORIGIN)
    check_tracks(decoder.decode(bytes(block)))
    cut = data.draw(st.integers(1, len(block) - 1))
    before = decoder.counters["truncated"]
    check_tracks(decoder.decode(bytes(block[:cut])))
    assert decoder.counters["truncated"] == before + 1  # the block header says more bytes than came


def test_each_rejection_has_its_reason_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    good = valid_datagram(3, 1)
    record = bytes.fromhex("b90c") + bytes([1, 2, 1]) + (10 * 128).to_bytes(3, "big") + bytes(8) + b"\x00\x07\x00"

    def block(*records: bytes) -> bytes:
        body = b"".join(records)
        return bytes([62]) + (len(body) + 3).to_bytes(2, "big") + body

    no_track_number = bytes.fromhex("b904") + record[2:16] + b"\x00"
    late = record[:5] + (86400 * 128).to_bytes(3, "big") + record[8:]
    north_of_the_pole = record[:8] + struct.pack(">i", 2**24 + 1) + record[12:]
    spare_frn = bytes.fromhex("f90c") + record[2:]  # FRN 2 is spare
    cases = [
        (block(record, no_track_number, record), AsterixMissingItem, "missing_item", 2),
        (block(late, record), AsterixOutOfRange, "out_of_range", 1),
        (block(north_of_the_pole), AsterixOutOfRange, "out_of_range", 0),
        (block(record, spare_frn, record), AsterixUnsupported, "unsupported_item", 1),
        (good[:-1], AsterixTruncated, "truncated", 0),
        (good + b"\x3e\x00", AsterixTruncated, "truncated", 3),
    ]
    caplog.set_level(logging.WARNING, logger="hil.drivers.cat062")
    for data, error, key, kept in cases:
        with pytest.raises(error):
            decode_cat062(data, ORIGIN)
        decoder = Cat062Decoder(ORIGIN, name="probe")
        assert len(decoder.decode(data)) == kept
        assert decoder.counters[key] == 1 and decoder.rejected == 1, (key, decoder.counters)
        assert f"probe: CAT062 data rejected ({key})" in caplog.text
        caplog.clear()
    assert issubclass(AsterixMissingItem, AsterixError) and issubclass(AsterixError, ValueError)


# ---- the links, over UDP on loopback --------------------------------------------------------------------


def poll_until(receiver: SystemTrackReceiver, want: int) -> SystemTracks:
    """What the receiver gets until want records came (at most 50 waits of 100 ms: bounded, never timed)."""
    parts: list[SystemTracks] = []
    for _ in range(50):
        parts.append(receiver.poll())
        if sum(len(p) for p in parts) >= want:
            break
        select.select([receiver], [], [], 0.1)
    return SystemTracks.concatenate(parts)


def test_publisher_to_receiver_over_loopback() -> None:
    t = random_tracks(np.random.default_rng(11), 200)
    recorded: list[tuple[bytes, int]] = []
    with SystemTrackReceiver(origin=ORIGIN, recorder=lambda d, ns: recorded.append((d, ns))) as rx, \
            SystemTrackPublisher(f"udp://127.0.0.1:{rx.port}", 3, 4, ORIGIN) as pub:
        assert rx.port > 0 and rx.fileno() >= 0
        assert len(rx.poll()) == 0
        sent = pub.publish(**t)
        assert sent == pub.stats["datagrams_sent"] >= 2 and pub.stats["send_errors"] == 0
        got = poll_until(rx, 200)
        assert len(got) == 200 and rx.decoder.rejected == 0
        assert got.track_number.tolist() == t["track_id"].tolist()
        assert (got.sac == 3).all() and (got.rx_ns > 0).all()
        assert np.nanmax(np.abs(got.state[:, :3] - t["state"][:, :3])) < 1.0
        assert rx.last_sender is not None and rx.last_sender[0] == "127.0.0.1"
        assert [d for d, _ in recorded] == Cat062Encoder(3, 4, ORIGIN).encode(**t).datagrams
        assert rx.stats["datagrams"] == sent and pub.stats["bytes_sent"] == rx.stats["bytes_rx"]


def test_publishing_where_nothing_listens_is_counted_not_raised() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    t = random_tracks(np.random.default_rng(12), 5)
    with SystemTrackPublisher(f"udp://127.0.0.1:{port}", 1, 2, ORIGIN) as pub:
        for _ in range(10):
            pub.publish(**t)
        assert pub.stats["updates"] == 10 and pub.stats["send_errors"] >= 1
        assert pub.stats["datagrams_sent"] + pub.stats["send_errors"] == 10


def test_link_urls_are_checked() -> None:
    with pytest.raises(LinkError, match="udp://HOST:PORT"):
        SystemTrackPublisher("127.0.0.1:9000", 1, 2, ORIGIN)
    with pytest.raises(LinkError, match="needs a port"):
        SystemTrackPublisher("udp://127.0.0.1:0", 1, 2, ORIGIN)
    with pytest.raises(LinkError, match="udp://HOST:PORT"):
        SystemTrackReceiver("socket://127.0.0.1:9000", origin=ORIGIN)
    with SystemTrackReceiver(origin=ORIGIN) as rx, pytest.raises(LinkError, match="cannot bind"):
        SystemTrackReceiver(f"udp://127.0.0.1:{rx.port}", origin=ORIGIN)
