"""The machine floor: the probe and cyclictest give non-negative wake-up lateness, and their output is read right."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.errors import HilError
from hil.measure.floor import FloorProbe, fifo_permitted, measure_cyclictest, parse_cyclictest_json
from hil.measure.latency import decode_histogram
from tests.helpers import in_child, require_tool


def _check_plausible(s: dict[str, Any]) -> None:
    assert s["count"] > 0
    assert 0 <= s["p50"] <= s["p90"] <= s["p99"] <= s["p99_9"] <= s["max"]
    assert decode_histogram(s["hdr"]).get_total_count() == s["count"]


@pytest.mark.parametrize("in_process", [False, True], ids=["process", "thread"])
def test_probe_measures_non_negative_lateness(in_process: bool) -> None:
    probe = FloorProbe(period_us=500, in_process=in_process).start()
    time.sleep(0.4)
    hist = probe.stop()
    s = probe.summary()
    _check_plausible(s)
    assert hist.get_total_count() == s["count"] == probe.iterations
    assert hist.get_min_value() >= 0 and s["missed_periods"] >= 0
    assert s["source"] == f"probe ({'thread' if in_process else 'process'})"


def test_a_pinned_probe_reports_from_its_cpu() -> None:
    import os

    cpu = max(os.sched_getaffinity(0))
    probe = FloorProbe(period_us=1000, cpus=[cpu]).start()
    time.sleep(0.1)
    probe.stop()
    s = probe.summary()
    _check_plausible(s)
    assert s["cpus"] == [cpu]


def test_probe_as_a_context_manager_and_its_misuse() -> None:
    with FloorProbe(period_us=1000, in_process=True) as probe:
        time.sleep(0.05)
    assert probe.histogram is not None and probe.histogram.get_total_count() == probe.iterations
    with pytest.raises(ValueError):
        FloorProbe(period_us=0)
    with pytest.raises(RuntimeError):
        FloorProbe().stop()


def test_a_probe_that_may_not_go_fifo_says_so() -> None:
    def body() -> dict[str, Any]:
        probe = FloorProbe(period_us=1000, in_process=True, fifo_priority=50).start()
        time.sleep(0.1)
        probe.stop()
        return {"note": probe.note, "count": probe.summary()["count"], "permitted": fifo_permitted(50)}

    out = in_child(body, drop_to_nobody=True)
    assert not out["permitted"]
    assert "refused" in out["note"] and "CAP_SYS_NICE" in out["note"] and out["count"] > 0


@pytest.mark.skipif(not fifo_permitted(50), reason="needs SCHED_FIFO permission")
def test_a_fifo_probe_thread_leaves_the_rest_of_the_process_alone() -> None:
    import os

    with FloorProbe(period_us=1000, in_process=True, fifo_priority=50) as probe:
        time.sleep(0.05)
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert probe.note == "" and probe.iterations > 0


def test_cyclictest_json_is_folded_into_one_histogram() -> None:
    doc = {"rt_test_version:": "2.40", "thread": {
        "0": {"histogram": {"10": 90, "20": 9}, "cycles": 100, "min": 10, "max": 250_000, "avg": 12.0},
        "1": {"histogram": {"15": 100}, "cycles": 100, "min": 15, "max": 15, "avg": 15.0},
    }}
    s = parse_cyclictest_json(doc)
    assert s["source"] == "cyclictest 2.40"
    assert (s["cycles"], s["overflows"], s["count"]) == (200, 1, 200)
    assert s["p50"] == pytest.approx(15, abs=1)
    assert s["p99"] == pytest.approx(20, abs=1)
    assert s["max"] == pytest.approx(250_000, rel=1e-3)  # the overflowed wake-up is kept at cyclictest's max
    assert s["max_reported_us"] == 250_000


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20))
def test_cyclictest_output_we_do_not_understand_is_a_clear_error(doc: Any) -> None:
    try:
        s = parse_cyclictest_json({"thread": doc} if isinstance(doc, dict) else doc)
    except HilError:
        return
    assert s["count"] >= 0


def test_cyclictest_runs_beside_us() -> None:
    require_tool("cyclictest", "rt-tests")
    s = measure_cyclictest(0.3, interval_us=1000, priority=50)
    assert s is not None
    _check_plausible(s)
    assert s["count"] == s["cycles"] == 300
    assert s["priority"] == (50 if fifo_permitted(50) else None)


def test_cyclictest_without_permission_is_none_and_the_probe_stands_in() -> None:
    require_tool("cyclictest", "rt-tests")
    assert in_child(lambda: measure_cyclictest(0.1, interval_us=1000, priority=50), drop_to_nobody=True) is None
