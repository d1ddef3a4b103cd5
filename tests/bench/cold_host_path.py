"""What a machine's caches cost the host path: the same dwells through the same Host, back to back and after a gap.

    python -m tests.bench.cold_host_path [--targets 40] [--gap-ms 3]

In a run the host path starts when a radar's bytes arrive, a few milliseconds after it last ran; in its benchmarks
(tests/bench/bench_host_path.py) it runs back to back, on warm caches. This replays the bench load's dwells
(bench_host_path.dwells) through a Host and times each dwell that has plots (the tracker's update, the news check and
the decision) in three conditions: back to back; after --gap-ms of a busy loop that makes no system call and touches no
memory (time alone passes); after --gap-ms asleep. It does the same with the kernels alone, called one after the other
with nothing of the host's Python between them (update, snapshot, news, fire-control rows, engagement counts, fire
control): the part of the path no Python can take away. It runs pinned to the last CPU, as the bench's loop, and holds
idle CPUs polling (hil.measure.realtime.cpu_latency_held(0), as `hil bench` does) where it may.

On a machine whose cores are its own the three conditions come out close. On this project's VM (2 vCPUs of an EPYC
host, other tenants beside them) 3 ms of waiting, busy or asleep, made the same path 2-3 times slower: see the closing
notes of issue 13. Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from hil.ext.track_view import confirmed_news, engagement_counts, fire_control_rows
from hil.measure.bench import Load
from hil.measure.realtime import cpu_latency_held
from tests.bench.bench_host_path import LOAD, STEP_S, WARMUP_S, HostPath, dwells

NO_TRACKS = np.empty(0, np.int64)


def busy_for(ns: int) -> None:
    """A busy loop of ns: no system call, no memory touched (time passes, nothing else of ours runs)."""
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


def asleep_for(ns: int) -> None:
    time.sleep(ns / 1e9)


def replay(load: Load, path: str, gap: Callable[[int], None] | None, gap_ns: int) -> np.ndarray:
    """Per-dwell times (µs) of the host path ("host": through the Host, as the loop drives it) or of its kernels alone
    ("kernels"), every dwell with plots after the warm-up, each after gap(gap_ns) (None: none)."""
    sc, ds = dwells(load)
    hp = HostPath(sc)
    host, tracker = hp.host, hp.tracker
    kernel = hp.fc.kernel
    lau = hp.launchers
    rounds = host._rounds_as_columns()  # (none: nothing answers in the bench)
    first = round(WARMUP_S / STEP_S)
    tick = time.perf_counter_ns
    out = []
    for k, d in enumerate(ds):
        timed = k >= first and len(d.plots) > 0
        if timed and gap is not None:
            gap(gap_ns)
        t0 = tick()
        if len(d.plots):
            hp.update(d)
        hp.sweep(d)
        if path == "host":
            host.fresh_plot_times = d.plots.t_s
            host.has_news(d.t_s)
            host.decide(d.t_s, lau)
        else:
            snapshot = tracker.tracks(d.t_s)
            confirmed_news(snapshot, d.t_s - STEP_S)
            tracks, pos_var, friendly, neutral, vel_var, _, _ = fire_control_rows(
                snapshot, host.friendly_codes, host.neutral_codes, host.unidentified_near_m)
            in_flight, shots, assessing, channels = engagement_counts(
                tracks.track_id, tracks.last_update_s, d.t_s, NO_TRACKS, *rounds, len(sc.launchers))
            kernel.evaluate(d.t_s, tracks.track_id, tracks.state, pos_var, None, friendly, in_flight, shots,
                            lau.armed, lau.ready, lau.rounds, lau.reload_left_s, channels_in_use=channels,
                            neutral=neutral, assessing=assessing, vel_var_m2s2=vel_var, status=tracks.status)
        t1 = tick()
        host.pending.clear()
        if timed:
            out.append(t1 - t0)
    return np.array(out) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=LOAD.targets)
    parser.add_argument("--gap-ms", type=float, default=3.0, help="the gap before each timed dwell (default 3 ms)")
    args = parser.parse_args()
    load = Load(targets=args.targets, clutter=LOAD.clutter, radars=LOAD.radars, launchers=LOAD.launchers,
                duration_s=LOAD.duration_s, seed=LOAD.seed)
    gap_ns = round(args.gap_ms * 1e6)
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    conditions: list[tuple[str, Callable[[int], None] | None]] = [
        ("back to back", None), (f"after {args.gap_ms:g} ms busy", busy_for), (f"after {args.gap_ms:g} ms asleep",
                                                                              asleep_for)]
    with cpu_latency_held(0) as applied:
        print(f"{load.label()}; pinned to CPU {cpus[-1]}; "
              f"{applied.message if applied is not None else ''}")
        print("| path | condition | dwells | p50 µs | p90 µs | p99 µs | p50 / back to back |")
        print("|---|---|---|---|---|---|---|")
        for path in ("host", "kernels"):
            warm = 0.0
            for name, gap in conditions:
                v = replay(load, path, gap, gap_ns)
                p50 = float(np.median(v))
                warm = warm or p50
                print(f"| {'the host' if path == 'host' else 'its kernels alone'} | {name} | {len(v)} | {p50:.0f} | "
                      f"{np.percentile(v, 90):.0f} | {np.percentile(v, 99):.0f} | {p50 / warm:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
