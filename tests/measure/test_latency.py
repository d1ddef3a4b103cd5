"""Stage latency histograms and deadline attribution: the figures a user reads match the values recorded."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers.histograms import FLUSH_AT, percentile_values, record_many
from hil.measure.latency import (
    HIGHEST_NS,
    STAGES,
    DeadlineMonitor,
    StageLatency,
    decode_histogram,
    encode_histogram,
    histogram_summary,
    new_histogram,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-10**6, max_value=2 * HIGHEST_NS), max_size=300))
def test_bulk_recording_lands_in_the_same_buckets_as_hdrh(values: list[int]) -> None:
    bulk = new_histogram()
    clamped = record_many(bulk, values)
    one_by_one = new_histogram()
    for v in values:
        assert one_by_one.record_value(min(max(v, 0), HIGHEST_NS))
    assert clamped == sum(1 for v in values if v < 0 or v > HIGHEST_NS)
    assert bulk.get_total_count() == len(values)
    a = np.ctypeslib.as_array(bulk.counts)
    b = np.ctypeslib.as_array(one_by_one.counts)
    np.testing.assert_array_equal(a, b)
    assert histogram_summary(bulk) == histogram_summary(one_by_one)
    assert (bulk.get_min_value(), bulk.get_max_value()) == (one_by_one.get_min_value(), one_by_one.get_max_value())


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=HIGHEST_NS), max_size=400),
       st.lists(st.floats(0.0, 100.0), min_size=1, max_size=8), st.booleans())
def test_percentiles_in_numpy_are_hdrh_s_own(values: list[int], percentiles: list[float], decoded: bool) -> None:
    """percentile_values gives what hdrh's get_percentile_to_value_dict gives (and get_value_at_percentile for
    one), on a histogram as recorded or as decoded from latency.json."""
    hist = new_histogram()
    record_many(hist, values)
    if decoded:
        hist = decode_histogram(encode_histogram(hist))
    got = percentile_values(hist, percentiles)
    assert got == hist.get_percentile_to_value_dict(percentiles)
    if values:
        assert got[percentiles[0]] == hist.get_value_at_percentile(percentiles[0])


def test_percentiles_match_the_recorded_values_to_three_significant_figures() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=np.log(200_000), sigma=1.0, size=20_000).astype(np.int64)
    lat = StageLatency()
    for v in values.tolist():
        lat.record("track", v)
    s = lat.summary()["track"]
    assert s["count"] == len(values)
    for key, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)):
        exact_us = np.percentile(values, p) / 1e3
        assert s[key] == pytest.approx(exact_us, rel=2e-3, abs=1.0), key
    assert s["max"] == pytest.approx(values.max() / 1e3, rel=1e-3)
    assert s["p50"] <= s["p90"] <= s["p99"] <= s["p99_9"] <= s["max"]


def test_every_value_counts_whether_or_not_the_buffer_was_flushed() -> None:
    lat = StageLatency()
    n = FLUSH_AT + FLUSH_AT // 2 + 3  # one bulk fold during recording and a remainder still buffered
    for i in range(n):
        lat.record("decode", 1_000 + i)
    assert lat.count("decode") == n
    assert lat.summary()["decode"]["count"] == n
    assert lat.summary()["command"] == {"count": 0, "p50": None, "p90": None, "p99": None, "p99_9": None,
                                        "max": None, "clamped": 0}


def test_a_negative_latency_is_clamped_and_counted_not_hidden() -> None:
    lat = StageLatency()
    lat.record("sensor_to_shooter", -250_000)  # a board clock offset estimated wrong
    lat.record("sensor_to_shooter", 3_000_000)
    s = lat.summary()["sensor_to_shooter"]
    assert s["count"] == 2 and s["clamped"] == 1


def test_unknown_stage_is_an_error() -> None:
    with pytest.raises(KeyError):
        StageLatency().record("decdoe", 5)


def test_sensor_to_shooter_carries_its_clock_uncertainty() -> None:
    lat = StageLatency()
    for unc_us in (20, 30, 40, 50, 900):
        lat.record_with_uncertainty("sensor_to_shooter", 4_000_000, unc_us * 1_000)
    s = lat.summary()["sensor_to_shooter"]
    assert s["uncertainty_us"] == pytest.approx(40, abs=1.0)
    assert s["uncertainty_max_us"] == pytest.approx(900, rel=2e-3)
    assert "uncertainty_us" not in lat.summary()["decode"]


def test_encode_decode_round_trip_keeps_every_figure() -> None:
    lat = StageLatency()
    rng = np.random.default_rng(3)
    for stage in STAGES:
        for v in rng.integers(1_000, 10_000_000, size=500).tolist():
            lat.record(stage, v)
    lat.record_with_uncertainty("sensor_to_shooter", 6_000_000, 75_000)
    blob = lat.encode()
    assert set(blob) == {*STAGES, "sensor_to_shooter.uncertainty"}
    assert all(isinstance(v, str) for v in blob.values())
    again = StageLatency.decode(blob)
    before, after = lat.summary(), again.summary()
    for stage in STAGES:
        for key in ("count", "p50", "p90", "p99", "p99_9", "max", "uncertainty_us"):
            assert before[stage].get(key) == after[stage].get(key), (stage, key)


def test_merge_adds_two_runs() -> None:
    a, b = StageLatency(), StageLatency()
    for _ in range(100):
        a.record("command", 100_000)
    for _ in range(300):
        b.record("command", 900_000)
    b.record_with_uncertainty("sensor_to_shooter", 1_000_000, 10_000)
    a.merge(b)
    s = a.summary()
    assert s["command"]["count"] == 400
    assert s["command"]["p50"] == pytest.approx(900, rel=2e-3)  # 3/4 of the values are 900 µs
    assert s["sensor_to_shooter"]["uncertainty_us"] == pytest.approx(10, abs=1.0)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
                 st.binary(max_size=120).map(lambda b: base64.b64encode(b"HISTFAA" + b).decode())))
def test_decoding_garbage_is_a_clear_error(blob: str) -> None:
    try:
        h = decode_histogram(blob)
    except ValueError:
        return
    assert h.get_total_count() >= 0


def test_a_histogram_of_another_layout_is_rebucketed_or_refused() -> None:
    from hdrh.histogram import HdrHistogram

    other = HdrHistogram(1, 3_600_000_000_000, 2)  # ns, up to an hour, 2 significant figures
    other.record_value(2_000_000, 10)
    h = decode_histogram(other.encode())
    assert h.get_total_count() == 10 and h.get_value_at_percentile(50) == pytest.approx(2_000_000, rel=1e-2)
    other.record_value(3_000_000_000_000)  # 50 minutes: beyond what a stage histogram holds
    with pytest.raises(ValueError, match="out of range"):
        decode_histogram(other.encode())


def test_decode_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError):
        StageLatency.decode(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_overruns_are_attributed_to_compute_or_os() -> None:
    d = DeadlineMonitor(period_ns=5_000_000, budget_ns=4_000_000)
    assert d.record(lateness_ns=50_000, compute_ns=1_000_000) is None  # on time, fits
    assert d.record(lateness_ns=3_500_000, compute_ns=1_000_000) == "os"  # woke late: would have fitted
    assert d.record(lateness_ns=0, compute_ns=4_500_000) == "compute"  # our own work too slow
    assert d.record(lateness_ns=9_000_000, compute_ns=6_000_000) == "compute"  # both: compute alone is over
    s = d.summary()
    assert (s["iterations"], s["overruns"], s["compute"], s["os"]) == (4, 3, 2, 1)
    assert s["budget_us"] == 4000 and s["period_us"] == 5000
    assert s["lateness_max_us"] == pytest.approx(9000, rel=2e-3)
    assert s["compute_p50_us"] == pytest.approx(1000, rel=2e-3)


def test_an_overrun_whose_cpu_time_fits_is_the_os_not_compute() -> None:
    d = DeadlineMonitor(period_ns=5_000_000)
    assert d.record(lateness_ns=0, compute_ns=7_400_000, cpu_ns=700_000) == "os"  # lost its CPU while computing
    assert d.record(lateness_ns=0, compute_ns=7_400_000, cpu_ns=7_000_000) == "compute"  # computed all of it
    assert d.record(lateness_ns=0, compute_ns=7_400_000) == "compute"  # CPU time unknown: wall time decides
    assert d.record(lateness_ns=4_800_000, compute_ns=400_000, cpu_ns=400_000) == "os"  # woke late
    # woken by a link's bytes, not its tick: no lateness, its compute judged all the same
    assert d.record(lateness_ns=None, compute_ns=6_000_000, cpu_ns=6_000_000) == "compute"
    assert d.record(lateness_ns=None, compute_ns=300_000) is None
    s = d.summary()
    assert (s["overruns"], s["compute"], s["os"], s["os_in_compute"]) == (5, 3, 2, 1)
    assert (s["iterations"], s["ticks"]) == (6, 4)
    assert s["lateness_max_us"] == pytest.approx(4800, rel=2e-3)
    again = DeadlineMonitor.decode(d.encode())
    assert again.summary() == s
    again.merge(d)
    assert again.summary()["os_in_compute"] == 2
    old = d.encode()
    del old["os_in_compute"], old["ticks"]  # an encoding from before the CPU time was taken, when ticks alone were
    assert DeadlineMonitor.decode(old).summary()["os_in_compute"] == 0
    assert DeadlineMonitor.decode(old).summary()["ticks"] == 6


def test_deadline_monitor_round_trip_and_merge() -> None:
    d = DeadlineMonitor(period_ns=1_000_000)
    for i in range(50):
        d.record(lateness_ns=i * 30_000, compute_ns=200_000)
    again = DeadlineMonitor.decode(d.encode())
    assert again.summary() == d.summary()
    again.merge(d)
    assert again.summary()["iterations"] == 100 and again.summary()["overruns"] == 2 * d.summary()["overruns"]
    with pytest.raises(ValueError):
        DeadlineMonitor.decode({"period_ns": 1})
    with pytest.raises(ValueError):
        DeadlineMonitor(period_ns=0)


def test_the_summary_in_stages_is_the_summary_a_histogram_a_stage() -> None:
    """The run's journal takes the latency figures a stage's histogram at a time: the same figures, one stage each."""
    lat, again = StageLatency(), StageLatency()
    rng = np.random.default_rng(3)
    for copy in (lat, again):
        for stage in ("decode", "track", "fire_control"):
            for v in rng.integers(1_000, 900_000, 500).tolist():
                copy.record(stage, v)
        copy.record_with_uncertainty("sensor_to_shooter", 2_000_000, 40_000)
        rng = np.random.default_rng(3)
    stages = lat.summary_in_stages()
    steps = 0
    try:
        while True:
            next(stages)
            steps += 1
    except StopIteration as done:
        staged = done.value
    assert staged == again.summary()
    assert steps == len(staged) and staged["sensor_to_shooter"]["uncertainty_us"] == pytest.approx(40, abs=1.0)
