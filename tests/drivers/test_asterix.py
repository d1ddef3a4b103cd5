"""ASTERIX CAT048/CAT034: our encoder and decoder against libasterix, tshark, and hostile bytes."""

from __future__ import annotations

import math
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers.asterix import (
    HEIGHT_LSB_M,
    RHO_LSB_M,
    THETA_LSB_RAD,
    AsterixError,
    AsterixMissingItem,
    AsterixOutOfRange,
    AsterixTruncated,
    AsterixUnknownCategory,
    AsterixUnsupported,
    Cat034Message,
    Cat048Plot,
    decode_blocks,
    encode_cat034,
    encode_cat048_block,
)
from hil.geo import METRES_PER_FOOT, METRES_PER_NM
from tests.helpers import require_tool

asterix_base = pytest.importorskip("asterix.base")
asterix_gen = pytest.importorskip("asterix.generated")
Cat048 = asterix_gen.Cat_048_1_32
Cat034 = asterix_gen.Cat_034_1_29


def random_plots(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "tod_s": rng.uniform(0, 86399, n),
        "range_m": rng.uniform(0, 250 * METRES_PER_NM, n),
        "azimuth_rad": rng.uniform(-1, 8, n),
        "height_m": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(-5000, 20000, n)),
        "range_rate_mps": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(-500, 500, n)),
        "mode3a": np.where(rng.random(n) < 0.5, -1, rng.integers(0, 0o10000, n)),
        "plot_number": rng.integers(0, 10000, n),
    }


def libasterix_records(data: bytes, cat_class: object) -> list:
    base = asterix_base
    out = []
    for db in base.RawDatablock.parse(base.Bits.from_bytes(data)):
        recs = cat_class.cv_uap.parse(db.get_raw_records())  # type: ignore[attr-defined]
        assert not isinstance(recs, ValueError)
        out += recs
    return out


def test_own_round_trip_within_one_lsb() -> None:
    rng = np.random.default_rng(1)
    p = random_plots(rng, 300)
    recs = decode_blocks(encode_cat048_block(3, 4, **p))
    assert len(recs) == 300 and all(isinstance(r, Cat048Plot) for r in recs)
    for i, r in enumerate(recs):
        assert isinstance(r, Cat048Plot)
        assert (r.sac, r.sic) == (3, 4)
        assert abs(r.tod_s - p["tod_s"][i]) <= 1 / 256 + 1e-9
        assert abs(r.range_m - p["range_m"][i]) <= RHO_LSB_M / 2 + 1e-6
        daz = (r.azimuth_rad - p["azimuth_rad"][i] + math.pi) % (2 * math.pi) - math.pi
        assert abs(daz) <= THETA_LSB_RAD / 2 + 1e-9 and 0 <= r.azimuth_rad < 2 * math.pi
        if np.isnan(p["height_m"][i]):
            assert math.isnan(r.height_m)
        else:
            assert abs(r.height_m - p["height_m"][i]) <= HEIGHT_LSB_M / 2 + 1e-6
        if np.isnan(p["range_rate_mps"][i]):
            assert math.isnan(r.range_rate_mps)
        else:
            assert abs(r.range_rate_mps - p["range_rate_mps"][i]) <= 0.5
        assert r.mode3a == p["mode3a"][i]
        assert r.typ == (1 if p["mode3a"][i] < 0 else 3)
        assert r.plot_number == p["plot_number"][i] % 4096


def test_libasterix_reads_what_we_write() -> None:
    rng = np.random.default_rng(2)
    p = random_plots(rng, 40)
    ours = decode_blocks(encode_cat048_block(1, 2, **p))
    theirs = libasterix_records(encode_cat048_block(1, 2, **p), Cat048)
    assert len(theirs) == len(ours)
    for r, t in zip(ours, theirs, strict=True):
        assert isinstance(r, Cat048Plot)
        assert t.get_item("140").variation.content.as_quantity("s") == pytest.approx(r.tod_s)
        i040 = t.get_item("040").variation
        assert i040.get_item("RHO").variation.content.as_quantity("NM") * METRES_PER_NM == pytest.approx(r.range_m)
        assert math.radians(i040.get_item("THETA").variation.content.as_quantity("°")) == pytest.approx(r.azimuth_rad)
        assert t.get_item("020").variation.get_item("TYP").as_uint() == r.typ
        assert t.get_item("161").variation.get_item("TRN").as_uint() == r.plot_number
        i070 = t.get_item("070")
        assert (i070 is None) == (r.mode3a < 0)
        if i070 is not None:
            assert int(i070.variation.get_item("MODE3A").variation.content.as_string(), 8) == r.mode3a
        i110 = t.get_item("110")
        assert (i110 is None) == math.isnan(r.height_m)
        if i110 is not None:
            ft = i110.variation.get_item("3DH").variation.content.as_quantity("ft")
            assert ft * METRES_PER_FOOT == pytest.approx(r.height_m)
        i120 = t.get_item("120")
        assert (i120 is None) == math.isnan(r.range_rate_mps)
        if i120 is not None:
            cal = i120.variation.get_item("CAL").variation
            assert cal.get_item("D").as_uint() == 0
            assert cal.get_item("CAL").variation.content.as_quantity("m/s") == r.range_rate_mps

    msg = libasterix_records(encode_cat034(5, 6, 2, 1234.5, math.radians(90), 4.5), Cat034)[0]
    assert msg.get_item("000").as_uint() == 2
    assert msg.get_item("030").variation.content.as_quantity("s") == 1234.5
    assert msg.get_item("020").variation.content.as_quantity("°") == 90.0
    assert msg.get_item("041").variation.content.as_quantity("s") == 4.5


def test_we_read_what_libasterix_writes_including_items_we_skip() -> None:
    rec = Cat048.cv_record.create({
        "010": (("SAC", 9), ("SIC", 8)), "140": (3600.25, "s"), "020": ((("TYP", 3), 0, 0, 0, 0, 0),),
        "040": (("RHO", (12.5, "NM")), ("THETA", (270.0, "°"))), "070": (0, 0, 0, 0, ("MODE3A", "7700")),
        "090": 0x123, "130": {"SRL": 5, "PAM": 3}, "220": 0xABCDEF, "240": 0, "250": [1, 2, 3],
        "161": (0, ("TRN", 4095)), "042": 9, "200": 8, "170": (0x10, 0), "210": 7, "030": [5, 7],
        "080": 5, "100": 6, "110": (0, (-1000.0, "ft")), "120": {"CAL": (0, 0, (-20, "m/s")), "RDS": [1, 2]},
        "230": 10, "260": 5, "055": 1, "050": 2, "065": 3, "060": 4, "SP": b"\x01\x02",
    })
    north = Cat034.cv_record.create({"010": (("SAC", 9), ("SIC", 8)), "000": 1, "030": (10.0, "s"),
                                     "041": (4.0, "s"), "050": {"COM": 0, "PSR": 0}, "070": [1, 2]})
    data = (Cat048.create([rec, rec]).unparse().to_bytes() + Cat034.create([north]).unparse().to_bytes())
    recs = decode_blocks(data)
    assert len(recs) == 3
    plot, msg = recs[0], recs[2]
    assert plot == recs[1]
    assert plot == Cat048Plot(9, 8, 3600.25, 3, 12.5 * METRES_PER_NM, math.radians(270.0), -1000.0 * METRES_PER_FOOT,
                              -20.0, 0o7700, 4095)
    assert isinstance(msg, Cat034Message) and msg.is_north and msg.tod_s == 10.0
    assert math.isnan(msg.sector_azimuth_rad) and msg.rotation_period_s == 4.0


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None)
def test_random_bytes_give_records_or_a_clear_error(data: bytes) -> None:
    try:
        decode_blocks(data)
    except AsterixError as e:
        assert str(e)


@given(st.integers(1, 30), st.data())
@settings(max_examples=200, deadline=None)
def test_corrupted_blocks_give_records_or_a_clear_error(n: int, data: st.DataObject) -> None:
    block = bytearray(encode_cat048_block(1, 2, **random_plots(np.random.default_rng(n), n)))
    for _ in range(data.draw(st.integers(1, 4))):
        block[data.draw(st.integers(0, len(block) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(block)))
    try:
        recs = decode_blocks(bytes(block[:cut]))
    except AsterixError:
        return
    assert all(isinstance(r, Cat048Plot | Cat034Message) for r in recs)


def test_specific_errors() -> None:
    block = encode_cat048_block(1, 2, [1.0], [1000.0], [0.0], [np.nan], [np.nan], [-1], [1])
    with pytest.raises(AsterixTruncated, match="available"):
        decode_blocks(block[:-1])
    with pytest.raises(AsterixTruncated):
        decode_blocks(block[:2])
    with pytest.raises(AsterixUnknownCategory, match="category 62"):
        decode_blocks(b"\x3e" + block[1:])
    bad_tod = bytearray(block)
    bad_tod[6:9] = (86400 * 128).to_bytes(3, "big")
    with pytest.raises(AsterixOutOfRange, match="86400"):
        decode_blocks(bytes(bad_tod))
    no_pos = struct.pack(">BHB", 48, 9, 0xC0) + b"\x01\x02" + b"\x00\x00\x80"
    with pytest.raises(AsterixMissingItem, match="I040"):
        decode_blocks(no_pos)
    spare = struct.pack(">BHBBBBB", 48, 8, 0x01, 0x01, 0x01, 0x01, 0x40)  # FRN 30: beyond the UAP
    with pytest.raises(AsterixUnsupported, match="FRN 30"):
        decode_blocks(spare)
    with pytest.raises(AsterixOutOfRange, match="RHO"):
        encode_cat048_block(1, 2, [0.0], [300 * METRES_PER_NM], [0.0], [np.nan], [np.nan], [-1], [0])
    with pytest.raises(AsterixOutOfRange, match="CAL"):
        encode_cat048_block(1, 2, [0.0], [1000.0], [0.0], [np.nan], [600.0], [-1], [0])
    with pytest.raises(ValueError, match="same length"):
        encode_cat048_block(1, 2, [0.0, 1.0], [1000.0], [0.0], [np.nan], [np.nan], [-1], [0])
    assert isinstance(AsterixTruncated("x"), ValueError)


def write_pcap(path: Path, payloads: list[bytes], port: int) -> None:
    """Plain libpcap file, Ethernet/IPv4/UDP to 127.0.0.1:port, one datagram per payload."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, p in enumerate(payloads):
            udp = struct.pack(">HHHH", 40000, port, 8 + len(p), 0) + p
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
            s = sum(struct.unpack(">10H", ip))
            s = (s & 0xFFFF) + (s >> 16)
            ip = ip[:10] + struct.pack(">H", ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF) + ip[12:]
            eth = b"\0" * 12 + b"\x08\x00" + ip + udp
            f.write(struct.pack("<IIII", i, 0, len(eth), len(eth)) + eth)


@pytest.mark.tools
def test_wireshark_dissector_agrees(tmp_path: Path) -> None:
    tshark = require_tool("tshark", "tshark")
    rng = np.random.default_rng(3)
    p = random_plots(rng, 12)
    block = encode_cat048_block(1, 2, **p)
    sector = encode_cat034(1, 2, 2, 100.0, math.radians(45), 4.0)
    pcap = tmp_path / "radar.pcap"
    write_pcap(pcap, [block, sector], 8600)
    fields = ["048_140_VALUE", "048_040_RHO", "048_040_THETA", "048_020_TYP", "048_070_MODE3A", "048_161_TRN",
              "048_110_3DH", "048_120_CAL_CAL", "034_000_VALUE", "034_020_VALUE", "034_041_VALUE"]
    cmd = [tshark, "-r", str(pcap), "-d", "udp.port==8600,asterix", "-T", "fields", "-E", "separator=;",
           "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f"asterix.{f}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    assert len(out) == 2
    cols = [c.split("|") if c else [] for c in out[0].split(";")]
    ours = [r for r in decode_blocks(block) if isinstance(r, Cat048Plot)]
    assert [float(v) for v in cols[0]] == pytest.approx([r.tod_s for r in ours])
    assert [float(v) * METRES_PER_NM for v in cols[1]] == pytest.approx([r.range_m for r in ours])
    assert [math.radians(float(v)) for v in cols[2]] == pytest.approx([r.azimuth_rad for r in ours])
    assert [int(v) for v in cols[3]] == [r.typ for r in ours]
    assert [int(v) for v in cols[4]] == [r.mode3a for r in ours if r.mode3a >= 0]
    assert [int(v) for v in cols[5]] == [r.plot_number for r in ours]
    assert [float(v) * METRES_PER_FOOT for v in cols[6]] == pytest.approx(
        [r.height_m for r in ours if not math.isnan(r.height_m)])
    assert [float(v) for v in cols[7]] == [r.range_rate_mps for r in ours if not math.isnan(r.range_rate_mps)]
    cols34 = out[1].split(";")
    assert cols34[8:11] == ["2", "45", "4"]


_NUM = st.floats(allow_nan=True, allow_infinity=False, width=64)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n),  # time of day, any way round
    st.lists(st.one_of(st.floats(0.0, 300 * METRES_PER_NM), st.floats(-1e3, 1e9)), min_size=n, max_size=n),
    st.lists(st.floats(-20.0, 20.0), min_size=n, max_size=n),
    st.lists(st.one_of(st.just(math.nan), st.floats(-1e5, 1e5)), min_size=n, max_size=n),
    st.lists(st.one_of(st.just(math.nan), st.floats(-700.0, 700.0)), min_size=n, max_size=n),
    st.lists(st.integers(-1, 0o7777 + 2), min_size=n, max_size=n),
    st.lists(st.integers(0, 10_000), min_size=n, max_size=n))))
def test_the_few_plots_path_gives_the_array_paths_bytes(plots: tuple[list[Any], ...]) -> None:
    """A block of up to SMALL_BLOCK plots is encoded in plain floats: the same bytes as the array path, and the
    same refusal where that one refuses."""
    from hil.drivers import asterix

    arrays = [np.asarray(p, dtype=np.float64 if k < 5 else np.int64) for k, p in enumerate(plots)]
    padded = [np.concatenate([a] * (asterix.SMALL_BLOCK + 1))[: asterix.SMALL_BLOCK * len(a) + 1] for a in arrays]

    def encode(args: list[np.ndarray]) -> bytes | str:
        try:
            return encode_cat048_block(1, 2, *args)
        except AsterixOutOfRange:
            return "refused"

    small = encode(arrays)
    # the array path on the same plots: a block too big for the few-plots path, whose first records are these
    big = encode(padded)
    if small == "refused" or big == "refused":
        assert small == big
        return
    assert isinstance(small, bytes) and isinstance(big, bytes)
    assert big[3:].startswith(small[3:])
