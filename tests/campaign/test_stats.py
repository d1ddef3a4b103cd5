"""A campaign's statistics against scipy and numpy on synthetic outcomes; merged latency equals all samples'."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from hil.campaign.stats import group_stats, mean_interval, merged_latency, upper_bound, wilson
from hil.measure.latency import StageLatency, histogram_summary


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=300, deadline=None)
def test_wilson_interval_is_scipys(kn: tuple[int, int]) -> None:
    k, n = kn
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    w = wilson(k, n)
    assert w["p"] == k / n
    assert w["lo"] == pytest.approx(ref.low, abs=1e-12) and w["hi"] == pytest.approx(ref.high, abs=1e-12)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=300, deadline=None)
def test_upper_bound_is_the_exact_one_sided_bound(kn: tuple[int, int]) -> None:
    k, n = kn
    ref = sps.binomtest(k, n, alternative="less").proportion_ci(confidence_level=0.95, method="exact").high
    assert upper_bound(k, n) == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_zero_fratricides_in_200_runs_bound_the_rate_at_one_and_a_half_percent() -> None:
    bound = upper_bound(0, 200)
    assert bound is not None and round(bound, 4) == 0.0149  # the "1.5 %"; the rule of three says 3/200
    assert wilson(0, 0)["p"] is None and upper_bound(0, 0) is None


def test_mean_interval_is_students_t() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.normal(600.0, 80.0, 37))
    got = mean_interval(values)
    lo, hi = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert got["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert (got["lo"], got["hi"]) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    assert mean_interval([5.0]) == {"n": 1, "mean": 5.0, "lo": None, "hi": None}


def synthetic_records(n_runs: int, seed: int) -> list[dict[str, Any]]:
    """Run records as workers return them, with made-up outcomes: two kinds, kills, leaks, a rare fratricide."""
    rng = random.Random(seed)
    out = []
    for i in range(n_runs):
        kinds = {}
        for kind, present in (("aircraft", 4), ("missile", 3)):
            killed = rng.randint(0, present)
            leaked = rng.randint(0, present - killed)
            kinds[kind] = {"present": present, "killed": killed, "leaked": leaked,
                           "survived": present - killed - leaked, "rounds": killed + rng.randint(0, 3)}
        rounds = sum(k["rounds"] for k in kinds.values()) + rng.randint(0, 2)
        out.append({"point": 0, "seed": i, "verdict": rng.choice(["pass", "pass", "fail"]), "latency": None,
                    "outcomes": {"kinds": kinds, "hostiles": 7, "hostiles_killed": sum(k["killed"] for k in
                                                                                       kinds.values()),
                                 "leaks": sum(k["leaked"] for k in kinds.values()), "rounds_launched": rounds,
                                 "fratricide": 1 if rng.random() < 0.03 else 0, "friendly_neutral_killed": 0,
                                 "gospa_mean_m": rng.uniform(300, 900), "launches": rounds, "floor_us": None}})
    return out


def test_group_statistics_match_a_numpy_reference() -> None:
    records = synthetic_records(200, seed=11)
    s = group_stats(records)
    killed = np.array([[r["outcomes"]["kinds"][k]["killed"] for k in ("aircraft", "missile")] for r in records])
    leaked = np.array([[r["outcomes"]["kinds"][k]["leaked"] for k in ("aircraft", "missile")] for r in records])
    rounds = np.array([r["outcomes"]["rounds_launched"] for r in records])
    frat = np.array([r["outcomes"]["fratricide"] for r in records])
    gospa = np.array([r["outcomes"]["gospa_mean_m"] for r in records])

    def ref(k: int, n: int) -> tuple[float, float, float]:
        ci = sps.binomtest(k, n).proportion_ci(method="wilson")
        return k / n, ci.low, ci.high

    assert s["runs"] == 200 and s["hostiles"] == 1400
    for got, (p, lo, hi) in ((s["kill_probability"], ref(int(killed.sum()), 1400)),
                             (s["leak_rate"], ref(int(leaked.sum()), 1400)),
                             (s["kills_per_round"], ref(int(killed.sum()), int(rounds.sum()))),
                             (s["kinds"]["missile"]["kill_probability"], ref(int(killed[:, 1].sum()), 600)),
                             (s["kinds"]["aircraft"]["leak_rate"], ref(int(leaked[:, 0].sum()), 800))):
        assert (got["p"], got["lo"], got["hi"]) == (pytest.approx(p), pytest.approx(lo), pytest.approx(hi))
    assert s["rounds_per_kill"] == pytest.approx(rounds.sum() / killed.sum())
    runs_with = int((frat > 0).sum())
    assert s["fratricide"]["runs_with"] == runs_with and s["fratricide"]["total"] == int(frat.sum())
    assert s["fratricide"]["upper_bound_per_run"] == pytest.approx(
        sps.binomtest(runs_with, 200, alternative="less").proportion_ci(method="exact").high)
    assert s["gospa_mean_m"]["mean"] == pytest.approx(gospa.mean())
    assert s["kinds"]["aircraft"]["outcomes"]["killed"] == int(killed[:, 0].sum())
    assert s["runs_passed"]["k"] == sum(r["verdict"] == "pass" for r in records)


def test_statistics_do_not_depend_on_the_order_runs_finished_in_only_on_plan_order() -> None:
    records = synthetic_records(50, seed=3)
    assert group_stats(records) == group_stats([dict(r) for r in records])


def test_merged_latency_histogram_is_the_histogram_of_all_samples() -> None:
    rng = np.random.default_rng(7)
    runs = [rng.lognormal(math.log(150_000), 0.8, int(rng.integers(200, 3000))).astype(np.int64) for _ in range(12)]
    everything = StageLatency()
    encoded = []
    for samples in runs:
        one = StageLatency()
        for v in samples:
            one.record("host_total", int(v))
            everything.record("host_total", int(v))
        encoded.append(one.encode())  # what a worker sends back: latency.json's content
    merged = merged_latency(encoded)
    a, b = merged.histogram("host_total"), everything.histogram("host_total")
    assert a.get_total_count() == b.get_total_count() == sum(len(r) for r in runs)
    buckets = [(i.value_iterated_to, i.count_at_value_iterated_to) for i in a.get_recorded_iterator()]
    assert buckets == [(i.value_iterated_to, i.count_at_value_iterated_to) for i in b.get_recorded_iterator()]
    assert histogram_summary(a) == histogram_summary(b)
    # what must never be done: the mean of the runs' p99s is not the campaign's p99
    mean_p99 = np.mean([np.percentile(r, 99) for r in runs]) / 1e3
    assert abs(mean_p99 - histogram_summary(a)["p99"]) > 1.0
