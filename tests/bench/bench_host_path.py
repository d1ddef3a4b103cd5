"""Host-path benchmark: the kernels' cost per call in the runtime's pattern, one 5 ms radar dwell at a time.

The runtime's Host (hil.host.host), per dwell: tracker.update with the dwell's 0-3 plots, sector_swept for each
CAT034 sector crossing, then Host.decide: tracker.tracks(t), fire control's inputs, fire control on the confirmed
(and friendly or neutral) tracks x the launchers, the fire orders. This replays that
pattern on the bench load (40 targets, clutter 20/scan, 1 radar, 2 launchers; hil.measure.bench.load_scenario) with
plots from RadarModel sweeps in 5 ms steps, after a warm-up that confirms the targets' tracks.

Goal (issue 6; medians, never asserted): each of update, tracks() and evaluate well under 50 µs.
With --benchmark-disable every benchmark runs once and checks what it got, as a quick correctness pass.
`python -m tests.bench.bench_host_path` replays 30 s and prints the median and p99 of every call.

`python -m tests.bench.bench_host_path --cold [--gap-ms 3]`: what a machine's caches cost the host path. In a run the
path starts when a radar's bytes arrive, a few milliseconds after it last ran; here it runs back to back, on warm
caches. --cold times each dwell with plots (the tracker's update, the news check, the decision, through the Host) in
three conditions: back to back; after --gap-ms of a busy loop that makes no system call and touches no memory (time
alone passes); after --gap-ms asleep. Then the same with the kernels alone, called one after the other with nothing of
the host's Python between them (update, snapshot, news, fire-control rows, engagement counts, fire control): the part
of the path no Python can take away. It runs pinned to the last CPU, as the bench's loop, and holds idle CPUs polling
(hil.measure.realtime.cpu_latency_held(0), as `hil bench` does) where it may. On a core of its own the three come out
close; on this project's VM (2 vCPUs of an EPYC host, other tenants beside them) 3 ms of waiting, busy or asleep, made
the same path 2-3 times slower: see the closing notes of issue 13. Figures only: nothing there is asserted.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from hil.clock import LOOP_PERIOD_NS
from hil.emulators.radar_model import PlotSet
from hil.ext.track_view import confirmed_news, engagement_counts, fire_control_rows
from hil.host.fire_control import protection_inputs
from hil.host.host import FireOrder, build_host
from hil.host.seams import FireControlInputs, LauncherInputs
from hil.measure.bench import Load, load_scenario
from hil.measure.realtime import cpu_latency_held
from hil.plant.radars import scan_plots
from hil.scenario import Scenario

STEP_S = LOOP_PERIOD_NS / 1e9  # one loop period of the runtime: a dwell's worth of beam
WARMUP_S = 8.0  # tracks confirmed and settled before timing starts
MEASURE_S = 6.0  # dwells replayed by the per-call benchmarks
LOAD = Load(targets=40, clutter=20, radars=1, launchers=2, duration_s=30, seed=1)


@dataclass
class Dwell:
    t_s: float  # end of the step: when the runtime would call tracks() and fire control
    sensor: np.ndarray  # int32 per plot
    plots: PlotSet
    sweeps: list[tuple[int, float, float, float]]  # (sensor, t, azimuth from, azimuth to) per sector crossing


@functools.cache
def dwells(load: Load = LOAD, until_s: float | None = None) -> tuple[Scenario, list[Dwell]]:
    """The scenario of a load and its plots, 5 ms at a time, with the sweeps the runtime reports."""
    sc = load_scenario(load)
    prev = [float("nan")] * len(sc.radars)
    out: list[Dwell] = []
    pending: list[tuple[int, PlotSet, list[tuple[int, float, float, float]]]] = []
    for t_end, i, plots, crossings in scan_plots(sc, step_s=STEP_S):
        if until_s is not None and t_end > until_s + 1e-9:
            break
        sweeps = []
        for c in crossings:
            if prev[i] == prev[i]:  # not NaN: the runtime needs a previous crossing to know where the beam was
                sweeps.append((i, c.t_s, prev[i], c.azimuth_rad))
            prev[i] = c.azimuth_rad
        pending.append((i, plots, sweeps))
        if i < len(sc.radars) - 1:
            continue
        order = np.argsort(np.concatenate([p.t_s for _, p, _ in pending]), kind="stable")
        sensor = np.concatenate([np.full(len(p), k, np.int32) for k, p, _ in pending])[order]
        out.append(Dwell(t_end, sensor, PlotSet.concat([p for _, p, _ in pending]),
                         sorted(s for _, _, ss in pending for s in ss)))
        pending = []
    return sc, out


class HostPath:
    """A Host (hil.host.host) fed one dwell at a time, each call timed when asked."""

    def __init__(self, sc: Scenario) -> None:
        self.host = build_host(sc)
        self.tracker: Any = self.host.tracker
        self.fc: Any = self.host.fire_control
        n_l = len(sc.launchers)
        # every launcher armed, ready, with rounds and free channels: fire control has full work to do
        self.launchers = LauncherInputs(np.ones(n_l, bool), np.ones(n_l, bool), np.full(n_l, 1000, np.int32),
                                        np.zeros(n_l), np.zeros(n_l, np.int32))
        self.times: dict[str, list[int]] = {"update": [], "tracks": [], "evaluate": [], "decide": []}

    def take(self, d: Dwell) -> None:
        """update() with the dwell's plots (only if it has any, as the runtime), then its sweeps."""
        if len(d.plots):
            self.update(d)
        self.sweep(d)

    def update(self, d: Dwell) -> None:
        p = d.plots
        self.tracker.update(p.t_s, d.sensor, p.range_m, p.azimuth_rad, p.elevation_rad, p.range_rate_mps, p.mode3a)

    def sweep(self, d: Dwell) -> None:
        for sensor, t, a0, a1 in d.sweeps:
            self.tracker.sector_swept(sensor, t, a0, a1)

    def inputs(self, t_s: float, every_track: bool = False) -> FireControlInputs:
        """Fire control's inputs as the host builds them (every live track instead, when asked), no round flying."""
        view = self.host.fire_control_view(t_s)
        assert view is not None
        tracks, ident = view
        if every_track:
            tracks = self.tracker.tracks(t_s)
            ident = protection_inputs(tracks, self.host.friendly_codes, self.host.neutral_codes)
        engagements, _ = self.host.engagement_inputs(t_s, tracks)
        return FireControlInputs(t_s, tracks, ident, engagements, self.launchers)

    def dwell(self, d: Dwell, timed: bool = False) -> list[FireOrder]:
        """One dwell as the runtime takes it: plots, sweeps, then the host's decision; tracks() and the kernel's
        evaluation are timed apart on the same state (the decision repeats them: the host's own cost is the rest)."""
        tick = time.perf_counter_ns
        if len(d.plots):
            t0 = tick()
            self.update(d)
            if timed:
                self.times["update"].append(tick() - t0)
        self.sweep(d)
        if timed:
            t0 = tick()
            self.tracker.tracks(d.t_s)
            self.times["tracks"].append(tick() - t0)
            view = self.host.fire_control_view(d.t_s)
            if view is not None:
                inputs = self.inputs(d.t_s)
                t0 = tick()
                self.fc.decide(inputs)
                self.times["evaluate"].append(tick() - t0)
        t0 = tick()
        orders = self.host.decide(d.t_s, self.launchers)
        if timed:
            self.times["decide"].append(tick() - t0)
        self.host.pending.clear()  # nothing answers in the bench: no order stays on its way
        return orders


@functools.cache
def warm() -> tuple[Scenario, list[Dwell], int]:
    """The scene up to the end of the measured stretch and the index of the first measured dwell."""
    sc, ds = dwells(LOAD, WARMUP_S + MEASURE_S)
    return sc, ds, round(WARMUP_S / STEP_S)


def warmed_host() -> tuple[HostPath, list[Dwell]]:
    """A host path run through the warm-up, and the dwells left to measure."""
    sc, ds, first = warm()
    host = HostPath(sc)
    for d in ds[:first]:
        host.take(d)
    return host, ds[first:]


def check_tracks(host: HostPath, t: float) -> Any:
    """After the warm-up every target of the bench load holds a confirmed track (and little clutter does)."""
    tracks = host.tracker.tracks(t)
    confirmed = int(tracks.confirmed.sum())
    assert 0.9 * LOAD.targets <= confirmed <= 1.1 * LOAD.targets + 3
    return tracks


def _next_update(host: HostPath, rest: list[Dwell]) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    """pedantic setup: the untimed parts (sweeps, dwells without plots) up to the next update's arguments."""
    it = iter(rest)
    last: list[Dwell] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if last:
            host.sweep(last.pop())
        for d in it:
            if len(d.plots):
                last.append(d)
                return (d,), {}
            host.sweep(d)
        raise RuntimeError("ran out of dwells")

    return setup


def test_update_per_dwell(benchmark: Any) -> None:
    """tracker.update with one dwell's plots (0-3 plots, mostly 1) on ~40 confirmed and the tentative tracks."""
    host, rest = warmed_host()
    rounds = sum(1 for d in rest if len(d.plots)) - 1
    sizes = [len(d.plots) for d in rest if len(d.plots)]
    benchmark.extra_info.update(plots_per_update_mean=float(np.mean(sizes)), max_plots=max(sizes))
    benchmark.pedantic(host.update, setup=_next_update(host, rest), rounds=rounds if benchmark.enabled else 1)
    assert host.tracker.plots_used > 0 and host.tracker.bad_plots == 0 and host.tracker.late_plots == 0
    if benchmark.enabled:  # the whole stretch went through: tracks still held
        check_tracks(host, rest[-1].t_s)


def test_tracks_snapshot(benchmark: Any) -> None:
    """tracker.tracks(t): every live track (confirmed and tentative) predicted to now."""
    host, rest = warmed_host()
    t = rest[0].t_s
    tracks = benchmark(host.tracker.tracks, t)
    benchmark.extra_info.update(tracks=len(tracks.track_id), confirmed=int(tracks.confirmed.sum()))
    check_tracks(host, t)
    assert np.all(np.diff(tracks.track_id) > 0)


def test_tracks_snapshot_confirmed_only(benchmark: Any) -> None:
    """tracker.tracks(t, confirmed_only=True): fire control's tracks without a numpy filter in the host."""
    host, rest = warmed_host()
    t = rest[0].t_s
    mine = benchmark(host.tracker.tracks, t, confirmed_only=True)
    every = host.tracker.tracks(t)
    for column, full in zip(mine, every, strict=True):
        np.testing.assert_array_equal(column, full[every.confirmed])
    assert len(mine.track_id) >= 0.9 * LOAD.targets


@pytest.mark.parametrize("which", ["confirmed", "all"])
def test_evaluate(benchmark: Any, which: str) -> None:
    """fire control on the tracks the host gives it (confirmed ones) or on every live track, x 2 launchers."""
    host, rest = warmed_host()
    t = rest[0].t_s
    inputs = host.inputs(t, every_track=which == "all")
    result = benchmark(host.fc.decide, inputs)
    n = len(inputs.tracks.track_id)
    benchmark.extra_info.update(tracks=n, assigned=len(result.assignments.track_index), solver=result.solver)
    assert len(result.track_reason) == n and result.pair_reason.shape == (n, len(host.launchers.armed))
    # inbound threats, two armed launchers with rounds: something is fired at, and a refusal has a reason
    assert 1 <= len(result.assignments.track_index) <= 2
    assert len(result.threats.track_index) > 0 and len(result.refusals.reason) > 0
    if which == "all":
        assert np.any(result.track_reason == 3)  # tentative tracks are NOT_CONFIRMED


def test_host_path_per_dwell(benchmark: Any) -> None:
    """A whole dwell through the Host: update, sweeps, and its decision (tracks, inputs, fire control, orders)."""
    host, rest = warmed_host()
    it = iter(rest)
    rounds = len(rest) if benchmark.enabled else 1
    benchmark.pedantic(lambda: host.dwell(next(it)), rounds=rounds, iterations=1)
    check_tracks(host, rest[rounds - 1].t_s)


def replay(load: Load = LOAD) -> dict[str, np.ndarray]:
    """Per-call times (µs) of every call after the warm-up over the whole load."""
    sc, ds = dwells(load)
    host = HostPath(sc)
    first = round(WARMUP_S / STEP_S)
    for k, d in enumerate(ds):
        host.dwell(d, timed=k >= first)
    return {k: np.array(v) / 1e3 for k, v in host.times.items()}


NO_TRACKS = np.empty(0, np.int64)


def busy_for(ns: int) -> None:
    """A busy loop of ns: no system call, no memory touched (time passes, nothing else of ours runs)."""
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


def asleep_for(ns: int) -> None:
    time.sleep(ns / 1e9)


def cold_replay(load: Load, path: str, gap: Callable[[int], None] | None, gap_ns: int) -> np.ndarray:
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
    parser.add_argument("--cold", action="store_true",
                        help="the host path back to back and after a gap, with its kernels alone beside it")
    parser.add_argument("--gap-ms", type=float, default=3.0, help="with --cold: the gap before each timed dwell")
    args = parser.parse_args()
    load = Load(targets=args.targets, clutter=LOAD.clutter, radars=LOAD.radars, launchers=LOAD.launchers,
                duration_s=LOAD.duration_s, seed=LOAD.seed)
    if args.cold:
        cold(load, args.gap_ms)
        return
    times = replay(load)
    print(f"{load.label()}, calls after {WARMUP_S:g} s of warm-up")
    print("| call | calls | median µs | p90 µs | p99 µs |")
    print("|---|---|---|---|---|")
    for name, v in times.items():
        print(f"| {name} | {len(v)} | {np.median(v):.1f} | {np.percentile(v, 90):.1f} | {np.percentile(v, 99):.1f} |")


def cold(load: Load, gap_ms: float) -> None:
    """--cold's table: the host path and its kernels alone, back to back and after gap_ms busy or asleep."""
    gap_ns = round(gap_ms * 1e6)
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    conditions: list[tuple[str, Callable[[int], None] | None]] = [
        ("back to back", None), (f"after {gap_ms:g} ms busy", busy_for), (f"after {gap_ms:g} ms asleep", asleep_for)]
    with cpu_latency_held(0) as applied:
        print(f"{load.label()}; pinned to CPU {cpus[-1]}; "
              f"{applied.message if applied is not None else ''}")
        print("| path | condition | dwells | p50 µs | p90 µs | p99 µs | p50 / back to back |")
        print("|---|---|---|---|---|---|---|")
        for path in ("host", "kernels"):
            warm = 0.0
            for name, gap in conditions:
                v = cold_replay(load, path, gap, gap_ns)
                p50 = float(np.median(v))
                warm = warm or p50
                print(f"| {'the host' if path == 'host' else 'its kernels alone'} | {name} | {len(v)} | {p50:.0f} | "
                      f"{np.percentile(v, 90):.0f} | {np.percentile(v, 99):.0f} | {p50 / warm:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
