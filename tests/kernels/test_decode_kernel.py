"""The Cython link decoder agrees with its pure-Python reference on any traffic, hostile or not."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.drivers.asterix import Cat048Plot, decode_blocks, encode_cat034, encode_cat048_block
from hil.drivers.framing import Frame, FrameType, crc16_ccitt, encode_frame, stuff
from hil.drivers.plot_batch import PlotBatch, elevation_from_height
from hil.drivers.radar_link import REJECT_KEYS
from hil.ext.reference import decode as reference_decode
from hil.ext.reference.decode import LinkDecoder as ReferenceDecoder
from hil.geo import METRES_PER_NM

decode = pytest.importorskip("hil.ext.decode", reason="build the kernel: HIL_EXT=decode python setup.py build_ext")
LinkDecoder = decode.LinkDecoder


def plots_block(rng: np.random.Generator, n: int, site_z: float = 0.0) -> bytes:
    rng_m = rng.uniform(0, 200 * METRES_PER_NM, n)
    return encode_cat048_block(
        int(rng.integers(0, 256)), int(rng.integers(0, 256)), rng.uniform(0, 86399, n), rng_m,
        rng.uniform(0, 2 * np.pi, n),
        np.where(rng.random(n) < 0.2, np.nan, site_z + rng_m * np.sin(rng.uniform(-0.2, 1.2, n))).clip(-60000, 60000),
        np.where(rng.random(n) < 0.2, np.nan, rng.uniform(-500, 500, n)),
        np.where(rng.random(n) < 0.5, -1, rng.integers(0, 0o10000, n)), rng.integers(0, 4096, n),
    )


def segment(kind: str, seed: int, seq: int) -> bytes:
    """One piece of link traffic of the given kind (deterministic in seed)."""
    rng = np.random.default_rng(seed)
    t_us = int(rng.integers(0, 2**40))
    if kind == "plots":
        return encode_frame(FrameType.ASTERIX, seq, t_us, plots_block(rng, int(rng.integers(1, 12)), 30.0))
    if kind == "plots+sector":
        payload = plots_block(rng, int(rng.integers(1, 5))) + encode_cat034(
            1, 2, int(rng.integers(1, 3)), float(rng.uniform(0, 86399)), float(rng.uniform(0, 6.28)), 4.0)
        return encode_frame(FrameType.ASTERIX, seq, t_us, payload)
    if kind == "service":
        ftype = int(rng.choice([FrameType.TIME_SYNC_RESP, FrameType.IDENT_RESP, FrameType.STATUS, FrameType.LOG]))
        return encode_frame(ftype, seq, t_us, rng.bytes(int(rng.integers(0, 40))))
    if kind == "garbage":
        return rng.bytes(int(rng.integers(1, 60)))
    if kind == "corrupt":
        wire = bytearray(encode_frame(FrameType.ASTERIX, seq, t_us, plots_block(rng, 3)))
        for _ in range(int(rng.integers(1, 4))):
            wire[int(rng.integers(0, len(wire)))] = int(rng.integers(0, 256))
        return bytes(wire)
    if kind == "bad_asterix":  # good CRC, hostile content
        block = bytearray(plots_block(rng, 4) + encode_cat034(1, 2, 1, 5.0, 0.0, 4.0))
        for _ in range(int(rng.integers(1, 4))):
            block[int(rng.integers(0, len(block)))] = int(rng.integers(0, 256))
        return encode_frame(FrameType.ASTERIX, seq, t_us, bytes(block[: int(rng.integers(0, len(block) + 1))]))
    if kind == "odd_frame":  # unknown type with a good CRC, a dangling escape, or an overlong frame
        which = int(rng.integers(0, 3))
        if which == 0:
            content = struct.pack("<BHQ", int(rng.choice([0x00, 0x04, 0x55, 0xFF])), seq, t_us) + rng.bytes(5)
            return b"\x7e" + stuff(content + struct.pack(">H", crc16_ccitt(content))) + b"\x7e"
        if which == 1:
            return encode_frame(FrameType.LOG, seq, t_us, b"x")[:-1] + b"\x7d\x7e"
        return b"\x7e" + rng.bytes(1100).replace(b"\x7e", b"\x00") + b"\x7e"
    if kind == "random_payload":
        return encode_frame(FrameType.ASTERIX, seq, t_us, rng.bytes(int(rng.integers(0, 50))))
    raise AssertionError(kind)


KINDS = ["plots", "plots+sector", "service", "garbage", "corrupt", "bad_asterix", "random_payload", "odd_frame"]


def normalised(events: list) -> list:
    """Events as plain tuples with NaN made comparable."""
    out = []
    for e in events:
        fields = [getattr(e, f) for f in e.__dataclass_fields__]
        flat = []
        for f in fields:
            if hasattr(f, "__dataclass_fields__"):
                flat.append(tuple(None if isinstance(v, float) and math.isnan(v) else v
                                  for v in (getattr(f, g) for g in f.__dataclass_fields__)))
            else:
                flat.append(f)
        out.append((type(e).__name__, *flat))
    return out


@given(
    st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2**32 - 1), st.integers(0, 3)), max_size=25),
    st.lists(st.integers(1, 200), min_size=1, max_size=8),
    st.integers(0, 40),
    st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_kernel_and_reference_agree_on_hostile_streams(segs: list, cuts: list[int], capacity: int,
                                                       keep: bool) -> None:
    seq, parts = 0, []
    for kind, seed, skip in segs:
        seq = (seq + 1 + (skip == 3) * 5 - (skip == 2) * 3) & 0xFFFF  # gaps and restarts too
        parts.append(segment(kind, seed, seq))
    wire = b"".join(parts)
    fast, ref = LinkDecoder(sensor=2, site_z_m=30.0, keep_asterix=keep), ReferenceDecoder(2, 30.0, keep)
    b_fast, b_ref = PlotBatch.empty(capacity), PlotBatch.empty(capacity)
    ev_fast: list = []
    ev_ref: list = []
    pos, k = 0, 0
    while pos < len(wire):
        chunk = wire[pos : pos + cuts[k % len(cuts)]]
        ev_fast += fast.feed(chunk, 1000 + k, b_fast)
        ev_ref += ref.feed(chunk, 1000 + k, b_ref)
        pos, k = pos + len(chunk), k + 1
    assert normalised(ev_fast) == normalised(ev_ref)
    assert b_fast.equals(b_ref, rtol=1e-12)
    assert fast.counters == ref.counters
    c = fast.counters
    assert fast.seq_resets == c["seq_resets"]
    assert fast.rejected_total == sum(c[k] for k in REJECT_KEYS) + c["plots_dropped"]


@given(st.binary(max_size=300), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=300, deadline=None)
def test_datagrams_agree(garbage: bytes, seed: int, good: bool) -> None:
    rng = np.random.default_rng(seed)
    data = plots_block(rng, int(rng.integers(1, 20))) + encode_cat034(1, 2, 1, 7.0, 0.0, 4.0) if good else garbage
    fast, ref = LinkDecoder(sensor=1, keep_asterix=True), ReferenceDecoder(1, 0.0, True)
    b_fast, b_ref = PlotBatch.empty(32), PlotBatch.empty(32)
    assert normalised(fast.feed_datagram(data, 5, b_fast)) == normalised(ref.feed_datagram(data, 5, b_ref))
    assert b_fast.equals(b_ref, rtol=1e-12)
    assert fast.counters == ref.counters
    if good:
        tods = [r.tod_s for r in decode_blocks(data) if isinstance(r, Cat048Plot)]
        np.testing.assert_array_equal(b_fast.column("board_t_us"), np.floor(np.array(tods) * 1e6))


def test_plots_land_in_si_with_elevation_and_times() -> None:
    site_z = 25.0
    rng_m = np.array([20000.0, 5000.0, 9000.0])
    el = np.array([0.05, -0.001, 0.3])
    block = encode_cat048_block(7, 8, [1.0, 1.0, 1.0], rng_m, [0.5, 3.0, 6.0], site_z + rng_m * np.sin(el),
                                [12.0, np.nan, -3.0], [0o7700, -1, 5], [1, 2, 3])
    dec = LinkDecoder(sensor=4, site_z_m=site_z)
    batch = PlotBatch.empty(8)
    wire = encode_frame(FrameType.ASTERIX, 0, 123_456_789, block)
    assert dec.feed(wire, 42, batch) == []
    assert batch.n == 3
    np.testing.assert_allclose(batch.column("range_m"), rng_m, atol=1852 / 512)
    np.testing.assert_allclose(batch.column("azimuth_rad"), [0.5, 3.0, 6.0], atol=1e-4)
    # I110 has 25 ft steps: elevation is good to about 7.62 m / range
    np.testing.assert_allclose(batch.column("elevation_rad"), el, atol=7.62 / 5000)
    np.testing.assert_array_equal(batch.column("range_rate_mps"), [12.0, np.nan, -3.0])
    np.testing.assert_array_equal(batch.column("mode3a"), [0o7700, -1, 5])
    np.testing.assert_array_equal(batch.column("sensor"), [4, 4, 4])
    np.testing.assert_array_equal(batch.column("board_t_us"), [123_456_789] * 3)
    np.testing.assert_array_equal(batch.column("host_rx_ns"), [42] * 3)
    assert np.isnan(batch.column("t_s")).all()  # filled by the link from its clock sync


def test_whole_payload_rejected_when_one_record_is_bad_and_capacity_overflow_counted() -> None:
    rng = np.random.default_rng(5)
    good = plots_block(rng, 5)
    bad = bytearray(good)
    bad[-1 - 0] ^= 0xFF
    truncated = good + good[:-3]
    dec = LinkDecoder()
    batch = PlotBatch.empty(7)
    events = dec.feed(encode_frame(FrameType.ASTERIX, 0, 1, truncated) + encode_frame(FrameType.ASTERIX, 1, 1, good)
                      + encode_frame(FrameType.ASTERIX, 2, 1, good), 0, batch)
    assert events == []
    c = dec.counters
    assert (c["truncated"], c["asterix_ok"], c["plots_ok"], c["plots_dropped"], batch.n) == (1, 2, 7, 3, 7)


def test_non_plot_frames_come_back_whole() -> None:
    dec = LinkDecoder()
    batch = PlotBatch.empty(4)
    wire = encode_frame(FrameType.IDENT_RESP, 9, 77, b"hil-radar-avr;1.0;abc")
    got = dec.feed(wire[:7], 1, batch) + dec.feed(wire[7:], 2, batch)
    assert got == [Frame(FrameType.IDENT_RESP, 9, 77, b"hil-radar-avr;1.0;abc")]


def test_batch_shape_is_checked_once() -> None:
    dec = LinkDecoder()
    batch = PlotBatch.empty(4)
    batch.mode3a = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="differ"):
        dec.feed(b"\x7e", 0, batch)
    batch = PlotBatch.empty(4)
    batch.range_m = np.zeros(4, np.float32)
    with pytest.raises(ValueError):
        dec.feed(b"\x7e", 0, batch)


def test_elevation_helper_edges() -> None:
    got = elevation_from_height([np.nan, 10.0, 1e6, -1e6, 10.0], [100.0, 0.0, 100.0, 100.0, 100.0], 0.0)
    np.testing.assert_allclose(got, [np.nan, 0.0, np.pi / 2, -np.pi / 2, math.asin(0.1)])


def test_any_bytes_like_input_decodes_alike() -> None:
    wire = segment("plots+sector", 3, 1) + segment("service", 4, 2)
    results = []
    for data in (wire, bytearray(wire), memoryview(wire), np.frombuffer(wire, np.uint8)):
        batch = PlotBatch.empty(16)
        events = LinkDecoder(sensor=1, keep_asterix=True).feed(data, 9, batch)
        results.append((normalised(events), batch.copy()))
    for events, batch in results[1:]:
        assert events == results[0][0] and batch.equals(results[0][1])
    assert results[0][1].n > 0 and len(results[0][0]) >= 3


SPOILED_BATCHES = {
    "big-endian": lambda b: setattr(b, "range_m", np.zeros(4, ">f8")),
    "read-only": lambda b: b.azimuth_rad.setflags(write=False),
    "strided": lambda b: setattr(b, "t_s", np.zeros(8)[::2]),
    "2-D": lambda b: setattr(b, "host_rx_ns", np.zeros((4, 1), np.int64)),
    "a list": lambda b: setattr(b, "sensor", [0] * 4),
    "n past capacity": lambda b: setattr(b, "n", 5),
}


@pytest.mark.parametrize("spoil", SPOILED_BATCHES.values(), ids=SPOILED_BATCHES.keys())
def test_columns_the_decoder_cannot_write_into_are_refused(spoil: Any) -> None:
    batch = PlotBatch.empty(4)
    spoil(batch)
    with pytest.raises(ValueError):
        LinkDecoder().feed(segment("plots", 1, 0), 0, batch)
    with pytest.raises(ValueError):
        LinkDecoder().feed_datagram(b"", 0, batch)


# ---- the batch functions a radar link applies after decoding: kernel and numpy reference, bit for bit ----------

def filled_batch(board_us: list[int], host_ns: list[int], t_s: list[float] | None = None) -> PlotBatch:
    batch = PlotBatch.empty(len(board_us) + 3)  # spare rows: only [0, n) may be touched
    batch.t_s[:] = -7.0
    batch.n = len(board_us)
    batch.board_t_us[: batch.n] = board_us
    batch.host_rx_ns[: batch.n] = host_ns
    if t_s is not None:
        batch.t_s[: batch.n] = t_s
    return batch


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


@given(
    st.lists(st.integers(-(2**50), 2**50), max_size=40),
    st.integers(0, 2**61),
    st.one_of(st.floats(-(2.0**60), 2.0**60), st.integers(-(10**15), 10**15).map(float)),
    st.one_of(st.floats(-5e-3, 5e-3), st.just(0.0)),
)
@settings(max_examples=400, deadline=None)
def test_plot_times_through_a_clock_mapping(board_us: list[int], ref_ns: int, offset_ns: float,
                                            drift: float) -> None:
    fast, ref = filled_batch(board_us, [0] * len(board_us)), filled_batch(board_us, [0] * len(board_us))
    span = decode.map_board_times(fast, ref_ns, offset_ns, drift)
    assert span == reference_decode.map_board_times(ref, ref_ns, offset_ns, drift)
    assert span == (None if not board_us else (min(board_us), board_us[-1]))
    assert same_bits(fast.t_s, ref.t_s)  # the spare rows untouched too
    for b in board_us[:3]:
        got = decode.board_to_host_s(b, ref_ns, offset_ns, drift)
        assert got == reference_decode.board_to_host_s(b, ref_ns, offset_ns, drift)


@given(st.lists(st.integers(-(2**62), 2**62), max_size=40))
@settings(max_examples=200, deadline=None)
def test_receive_times_and_board_time_span(values: list[int]) -> None:
    fast, ref = filled_batch(values[::-1], values), filled_batch(values[::-1], values)
    span = decode.receive_times(fast)
    assert span == reference_decode.receive_times(ref) == (None if not values else (min(values), values[0]))
    assert same_bits(fast.t_s, ref.t_s)
    if values:
        assert decode.board_time_span(fast) == reference_decode.board_time_span(ref)
    else:
        with pytest.raises(ValueError):
            decode.board_time_span(fast)


@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, 1e9 + 0.001, np.nan, np.inf, 5e-324]), max_size=30))
@settings(max_examples=300, deadline=None)
def test_runs_of_equal_plot_times(t_s: list[float]) -> None:
    batch = filled_batch([0] * len(t_s), [0] * len(t_s), t_s)

    def exact(runs: list) -> list:
        assert all(type(t) is float and type(k) is int for t, k in runs)
        return [(float(t).hex(), k) for t, k in runs]

    assert exact(decode.time_runs(batch)) == exact(reference_decode.time_runs(batch))


@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, 2.5, 1e9 + 0.001, np.nan, np.inf, -np.inf, 5e-324]), max_size=12),
       st.lists(st.integers(-(2**62), 2**62), min_size=12, max_size=12),
       st.sampled_from([0.0, 1.5, 1e9, -3.25, np.inf]))
@settings(max_examples=300, deadline=None)
def test_run_times_are_their_twins(t_s: list[float], rx: list[int], start_s: float) -> None:
    """The host's one pass over a poll's plots: run times bit for bit, the latest receive time, whether in order."""
    batch = filled_batch([0] * len(t_s), rx[: len(t_s)], t_s)
    run_t, latest, in_order = decode.run_times(batch, start_s)
    want_t, want_latest, want_order = reference_decode.run_times(batch, start_s)
    assert same_bits(run_t, want_t) and run_t.shape == (len(t_s),)
    assert (latest, in_order) == (want_latest, want_order)
    assert latest == (max(rx[: len(t_s)]) if t_s else 0)
