"""Tracker benchmarks: kernel time per scan for 10..5000 targets, and accuracy on the issue's scene.

In the normal suite (--benchmark-disable) each benchmark runs one scan and then checks the tracks, so it
doubles as a correctness pass. `python -m tests.bench.bench_tracker` prints the whole table.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from hil.ext.tracker import Tracker
from hil.ext.tracker_types import TrackerConfig
from hil.scenario import Scenario
from tests.helpers import accuracy, clutter_for, new_tracker, scene, track_scan

WARMUP_SCANS = 8  # tracks confirmed and settled before timing starts


def time_scans(n_targets: int, n_scans: int, model: str = "imm",
               max_range_m: float = 120_000.0) -> tuple[np.ndarray, Tracker, Scenario]:
    """Kernel time of each scan after the warm-up (seconds) and the tracker at the end."""
    sc, scans = scene(n_targets, n_scans, max_range_m=max_range_m)
    trk = new_tracker(sc, TrackerConfig(model=model))
    times = []
    for k, scan in enumerate(scans):
        tick = time.perf_counter()
        track_scan(trk, 1, scan)
        if k >= WARMUP_SCANS:
            times.append(time.perf_counter() - tick)
    return np.array(times), trk, sc


def _stepper(trk: Tracker, scans: list[Any]) -> Callable[[], None]:
    it = iter(scans[WARMUP_SCANS:])

    def step() -> None:
        track_scan(trk, 1, next(it))

    return step


@pytest.mark.parametrize("n_targets", [10, 40, 100, 1000, pytest.param(5000, marks=pytest.mark.slow)])
def test_scan_time(benchmark: Any, n_targets: int) -> None:
    """Kernel time of one scan (update + sweep) in steady state; afterwards every target holds a track."""
    n_scans = 60 if n_targets <= 1000 else 30
    sc, scans = scene(n_targets, n_scans)
    trk = new_tracker(sc, TrackerConfig())
    for scan in scans[:WARMUP_SCANS]:
        track_scan(trk, 1, scan)
    benchmark.extra_info["clutter_per_scan"] = clutter_for(n_targets)
    benchmark.pedantic(_stepper(trk, scans), rounds=len(scans) - WARMUP_SCANS, iterations=1)
    confirmed = int(trk.tracks().confirmed.sum())
    assert 0.9 * n_targets <= confirmed <= 1.1 * n_targets + 3


def test_accuracy_on_the_reference_scene(benchmark: Any) -> None:
    """40 targets, one radar, crossings and 4 g turns: GOSPA per live target well under Stone Soup's 150 m."""
    n_scans = 300 if benchmark.enabled else 100
    result = benchmark.pedantic(accuracy, kwargs={"n_scans": n_scans}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["gospa_per_target_m"] < 135.0  # 0.9 x Stone Soup's figure on this kind of scene
    assert result["turners_lost"] == 0 and result["turners"] == 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[10, 40, 100, 1000, 5000])
    parser.add_argument("--scans", type=int, default=60)
    args = parser.parse_args()
    # the same 5-120 km for every count (density grows with the targets), and, beyond 1000 targets, the area
    # grown with the count so that targets and clutter per km² stay those of 1000 (a sparse scene)
    print("| targets | clutter/scan | out to km | model | median ms/scan | p99 ms/scan | µs per target "
          "| gate tests/plot |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.targets:
        for reach in sorted({120_000.0, 120_000.0 * math.sqrt(max(n / 1000.0, 1.0))}):
            for model in ("imm", "cv"):
                t, trk, _ = time_scans(n, args.scans if n <= 1000 else 30, model, reach)
                c = trk.counters()
                print(f"| {n} | {clutter_for(n):.0f} | {reach / 1e3:.0f} | {model} | {np.median(t) * 1e3:.3f} | "
                      f"{np.percentile(t, 99) * 1e3:.3f} | {np.median(t) * 1e6 / n:.2f} | "
                      f"{c['gate_tests'] / max(c['plots_in'], 1):.1f} |")
    print()
    print("| scene | model | GOSPA per live target (m) | localisation | missed | false | switches | breaks "
          "| turners lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    for radars in (1, 2):
        for model in ("imm", "cv"):
            s = accuracy(40, 300, radars, model)
            print(f"| 40 targets, {radars} radar(s), 300 scans | {model} | {s['gospa_per_target_m']:.1f} | "
                  f"{s['localisation_mean_m']:.0f} | {s['missed_mean_m']:.0f} | {s['false_mean_m']:.0f} | "
                  f"{s['identity_switches']} | {s['track_breaks']} | {s['turners_lost']} of {s['turners']} |")


if __name__ == "__main__":
    main()
