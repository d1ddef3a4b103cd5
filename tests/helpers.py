"""What tests and benchmarks share: the checkout's files, Debian tools, child processes, made-up and real run
folders, tracking scenes, and the fault matrix's cells. Every test imports its shared helpers from here, never from
another test; conftest.py holds only pytest's hooks and fixtures.

Importing this module needs no kernel built and loads neither matplotlib nor scipy: a helper that needs them
imports them when called, so a test that wants only REPO stays light and a kernel being rebuilt breaks only the
tests that use it. The wheel ships this file beside the benchmarks (setup.py's SHIPPED); there REPO is hil/data/,
which holds the same rigs/, scenarios/ and firmware_stubs/ as the checkout.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram

    from hil.emulators.radar_model import PlotSet
    from hil.ext.reference.tracker import ReferenceTracker
    from hil.ext.tracker import Tracker
    from hil.ext.tracker_types import TrackerConfig, TrackSnapshot
    from hil.scenario import Scenario

# --- the checkout's files (an installed package's hil/data/) ----------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
RAID = REPO / "scenarios" / "raid.toml"
MOCK_RIG = REPO / "rigs" / "mock.toml"
RPI_FIRMWARE = REPO / "firmware_stubs" / "rpi"  # the Raspberry Pi boards' software
CV_TRACKER_EXAMPLE = REPO / "examples" / "cv_tracker"  # the documented plug-in (a checkout only)
# the safety scenes by name, and the default raid among them
SAFETY_SCENES = {name: REPO / "scenarios" / "safety" / f"{name}.toml" for name in
                 ("escorts", "crossing", "no-fire-zones", "saturation")} | {"raid": RAID}
# fire control as it was before it protected the terminal path: no radius around it, no uncertainty, no margin
PROTECTION_OFF = {"protect_radius_m": 0.0, "safety_sigmas": 0.0, "launch_timing_margin_s": 0.0}


# --- Debian tools and the checkout's commit ---------------------------------------------------------------------


def require_tool(tool: str, package: str) -> str:
    """Path of a Debian tool; in CI (CI=true) a missing tool fails the test, elsewhere it skips."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: apt-get install {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def head_commit() -> str:
    """HEAD's short hash: the build id firmware built from this checkout reports (with "+" after local edits)."""
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=7", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def tshark_fields(path: Path, fields: list[str], *extra: str) -> list[list[str]]:
    """One row per packet of a capture with the requested fields (each possibly comma-joined over repeats), as
    tshark prints them with whatever extra options are given."""
    exe = require_tool("tshark", "tshark")
    cmd = [exe, "-r", str(path), "-T", "fields", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


# --- child processes ---------------------------------------------------------------------------------------------

NOBODY = 65534


def in_child(body: Callable[[], Any], drop_to_nobody: bool = False) -> Any:
    """Run `body` in a forked child (so nothing it changes can leak into the test process); its JSON result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(r)
            if drop_to_nobody and os.geteuid() == 0:
                # a normal user's limits, then a normal user: no capabilities survive setuid
                resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, 64 * 1024))
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            out = json.dumps(body()).encode()
            os.write(w, out)
            code = 0
        except BaseException as e:
            os.write(w, json.dumps({"child_error": repr(e)}).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks))
    assert not (isinstance(result, dict) and "child_error" in result), result
    return result


# --- run folders -------------------------------------------------------------------------------------------------


def hil_run(out: Path, *args: str) -> Path:
    """A virtual-time run of the real chain on the mock rig, its run folder."""
    cmd = [sys.executable, "-m", "hil", "run", "--time", "virtual", "--quiet", "--no-record", "--out", str(out),
           *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


STAGE_MEDIAN_US = {"decode": 15, "track": 120, "fire_control": 60, "command": 350, "host_total": 600,
                   "sensor_to_shooter": 4000, "floor": 60}


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _histogram(rng: np.random.Generator, median_us: float, n: int) -> HdrHistogram:
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, 60_000_000_000, 3)
    for v in rng.lognormal(np.log(median_us * 1e3), 0.6, n):
        h.record_value(int(v))
    return h


def _summary_us(h: HdrHistogram) -> dict[str, float]:
    return {"count": h.get_total_count(), **{k: h.get_value_at_percentile(p) / 1e3
            for k, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9))}, "max": h.get_max_value() / 1e3}


def make_run_folder(out: Path, seed: int = 1, floor: bool = True) -> Path:
    """A plausible run folder: the raid scenario's truth, noisy tracks, and made-up but consistent events."""
    from hil.records.report import STAGES
    from hil.scenario import Scenario

    rng = np.random.default_rng(seed)
    sc = Scenario.load(RAID)
    truth = sc.truth()
    out.mkdir(parents=True, exist_ok=True)
    truth_rows: list[list[Any]] = []
    track_rows: list[list[Any]] = []
    gospa_rows: list[list[Any]] = []
    events: list[list[Any]] = []
    first_seen: dict[int, float] = {}
    for t in np.arange(0.0, sc.duration_s, 1.0):
        snap = truth.at(float(t))
        n_tracks = 0
        for row, state in zip(snap.index.tolist(), snap.state, strict=True):
            truth_rows.append([f"{t:.3f}", sc.targets[row].name, *(f"{v:.2f}" for v in state)])
            first_seen.setdefault(row, float(t))
            if t - first_seen[row] >= 3.0:  # confirmed three scans after first detection
                noisy = state + rng.normal(0, 1, 6) * [80, 80, 40, 10, 10, 5]
                track_rows.append([f"{t:.3f}", 100 + row, *(f"{v:.2f}" for v in noisy), "confirmed"])
                n_tracks += 1
        missed = 1000.0 * (len(snap.index) - n_tracks) / 2
        loc = 90.0 * n_tracks + rng.uniform(0, 50)
        gospa_rows.append([f"{t:.3f}", f"{loc + missed:.2f}", f"{loc:.2f}", f"{missed:.2f}", "0.00",
                           len(snap.index), n_tracks])
    engagements, refusals = [], []
    for row, t0 in first_seen.items():
        spec = sc.targets[row]
        tid = 100 + row
        events.append([t0, "detection", tid, spec.name, "", ""])
        events.append([t0 + 3, "confirmation", tid, "", "", ""])
        if spec.allegiance != "hostile":
            refusals.append({"time_s": t0 + 3.1, "track": tid, "launcher": None, "reason": "FRIENDLY", "count": 12})
            events.append([t0 + 3.1, "refusal", tid, spec.name, "", "FRIENDLY"])
            continue
        launcher = sc.launchers[row % len(sc.launchers)].name
        events.append([t0 + 3.2, "assignment", tid, "", launcher, ""])
        events.append([t0 + 4.2, "launch", tid, spec.name, launcher, "seq 1"])
        killed = row % 4 != 3
        events.append([t0 + 24, "kill" if killed else "miss", tid, spec.name, launcher, "miss distance 8.0 m"])
        if not killed:
            events.append([t0 + 40, "leak", -1, spec.name, "", ""])
        engagements.append({"target": spec.name, "allegiance": spec.allegiance, "engaged": True,
                            "first_launch_s": t0 + 4.2, "launcher": launcher, "result": "killed" if killed else
                            "leaked", "shots": 1})
    refusals.append({"time_s": 12.5, "track": 107, "launcher": "launcher-south", "reason": "OUT_OF_RANGE", "count": 3})
    events.sort(key=lambda e: e[0])
    _write_csv(out / "truth.csv", ["time_s", "target", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps"], truth_rows)
    _write_csv(out / "tracks.csv", ["time_s", "track", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps", "status"],
               track_rows)
    _write_csv(out / "gospa.csv", ["time_s", "gospa_m", "localisation_m", "missed_m", "false_m", "n_truth",
                                   "n_tracks"], gospa_rows)
    _write_csv(out / "events.csv", ["time_s", "event", "track", "target", "launcher", "detail"], events)
    hists = {stage: _histogram(rng, STAGE_MEDIAN_US[stage], 2000) for stage in STAGES}
    if floor:
        hists["floor"] = _histogram(rng, STAGE_MEDIAN_US["floor"], 5000)
    (out / "latency.json").write_text(json.dumps({k: h.encode().decode("ascii") for k, h in hists.items()}))
    latency_us = {stage: _summary_us(hists[stage]) for stage in STAGES}
    latency_us["sensor_to_shooter"]["uncertainty_us"] = 250.0
    (out / "sensors.toml").write_text("".join(
        f'[[sensor]]\nname = "{r.name}"\nsite_enu_m = [{r.site[0]}, {r.site[1]}, {r.site[2]}]\n'
        f"sigma_range_m = {r.sigma_range_m}\n\n" for r in sc.radars))
    summary = {
        "scenario": sc.name, "scenario_file": str(RAID), "seed": seed, "time_mode": "virtual", "rig": "mock",
        "duration_s": sc.duration_s, "latency_us": latency_us,
        "deadline_misses": {"total": 3, "compute": 1, "os": 2}, "plots": 5321, "tracks": 14,
        "confirmed_tracks": len(first_seen), "gospa_mean_m": float(np.mean([float(str(r[1])) for r in gospa_rows])),
        "gospa": {"c_m": 1000.0, "p": 1, "alpha": 2}, "engagements": engagements, "refusals": refusals,
        "friendly_engagements": 0, "machine": {"host": "bench", "cpus": 2},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out


# --- tracking scenes (the tracker's tests and benchmarks) --------------------------------------------------------

TWO_PI = 2.0 * math.pi


def feed(trk: Tracker | ReferenceTracker, plots: PlotSet, sensor: np.ndarray | int) -> None:
    sen = np.broadcast_to(np.asarray(sensor), (len(plots),))
    trk.update(plots.t_s, sen, plots.range_m, plots.azimuth_rad, plots.elevation_rad, plots.range_rate_mps,
               plots.mode3a)


def clutter_for(n_targets: int) -> float:
    """Clutter plots per scan of the speed benchmarks: 20, or a fifth of the targets (1000 -> 200)."""
    return max(20.0, n_targets / 5.0)


@functools.cache
def scene(n_targets: int, n_scans: int, n_radars: int = 1, seed: int = 1,
          max_range_m: float = 120_000.0) -> tuple[Scenario, list[Any]]:
    """The scenario and its plots, one entry per scan: (t_end, sensor per plot, plots merged in time order)."""
    from hil.emulators.radar_model import PlotSet
    from hil.plant.radars import scan_plots
    from hil.scenario import tracking_scenario

    sc = tracking_scenario(n_targets, seed=seed, duration_s=float(n_scans), n_radars=n_radars,
                           clutter_per_scan=clutter_for(n_targets) if n_radars == 1 else 20.0,
                           max_range_m=max_range_m)
    scans, step = [], []
    for t_end, i, p, _ in scan_plots(sc):
        step.append((i, p))
        if i < n_radars - 1:
            continue
        order = np.argsort(np.concatenate([q.t_s for _, q in step]), kind="stable")
        sensors = np.concatenate([np.full(len(q), k, np.int32) for k, q in step])[order]
        scans.append((t_end, sensors, PlotSet.concat([q for _, q in step])))
        step = []
    return sc, scans


def new_tracker(sc: Scenario, config: TrackerConfig) -> Tracker:
    from hil.ext.tracker import Tracker
    from hil.host.kernels import sensor_defs
    from hil.host.tracking import sensor_arrays

    sites, sigmas, max_range = sensor_arrays(sensor_defs(sc))
    return Tracker(config, sites, capacity=max(4096, 4 * len(sc.targets)), sigmas=sigmas, max_range_m=max_range)


def track_scan(trk: Tracker, n_radars: int, scan: tuple[float, np.ndarray, PlotSet]) -> None:
    t_end, sensors, p = scan
    trk.update(p.t_s, sensors, p.range_m, p.azimuth_rad, p.elevation_rad, p.range_rate_mps, p.mode3a)
    for k in range(n_radars):
        trk.sector_swept(k, t_end, 0.0, TWO_PI)


class TurnWatch:
    """Which track numbers hold each manoeuvring target from 2 s before its turn to 10 s after it ends:
    the nearest confirmed track within 1 km each scan (-1: none that close)."""

    def __init__(self, sc: Scenario) -> None:
        self.windows = {k: (t.manoeuvres[0].start_s - 2.0, t.manoeuvres[0].start_s + t.manoeuvres[0].duration_s + 10.0)
                        for k, t in enumerate(sc.targets) if t.manoeuvres}
        self.held: dict[int, list[int]] = {k: [] for k in self.windows}

    def step(self, t_s: float, truth_index: np.ndarray, truth_pos: np.ndarray, track_ids: np.ndarray,
             track_pos: np.ndarray) -> None:
        for k, (t0, t1) in self.windows.items():
            here = truth_index == k
            if not t0 <= t_s <= t1 or not here.any():
                continue
            miss = np.linalg.norm(track_pos - truth_pos[here][0], axis=1) if len(track_ids) else np.full(1, np.inf)
            self.held[k].append(int(track_ids[miss.argmin()]) if miss.min() < 1_000.0 else -1)

    def lost(self) -> list[int]:
        """Targets whose turn was not held by one track number (or that went more than 2 scans untracked)."""
        return [k for k, ids in self.held.items() if len(set(ids) - {-1}) != 1 or ids.count(-1) > 2]


def accuracy(n_targets: int = 40, n_scans: int = 300, n_radars: int = 1, model: str = "imm",
             seed: int = 1) -> dict[str, float | int]:
    """GOSPA (c=1000 m, p=1, alpha=2, 3-D position) per live target, identity scores over a whole run, and
    the turning targets whose track did not hold through the turn."""
    from hil.ext.tracker_types import TrackerConfig
    from hil.measure.metrics import TrackingScore

    sc, scans = scene(n_targets, n_scans, n_radars, seed)
    truth = sc.truth()
    trk = new_tracker(sc, TrackerConfig(model=model))
    score = TrackingScore()
    turns = TurnWatch(sc)
    for scan in scans:
        track_scan(trk, n_radars, scan)
        snap, tracks = truth.at(scan[0]), trk.tracks(scan[0], confirmed_only=True)
        score.step(snap.index, snap.state[:, :3], tracks.track_id, tracks.state[:, :3])
        turns.step(scan[0], snap.index, snap.state[:, :3], tracks.track_id, tracks.state[:, :3])
    return {**score.summary(), "turners": len(turns.windows), "turners_lost": len(turns.lost())}


# --- two aircraft 300 m apart, one squawking (IFF in the tracker) ------------------------------------------------

ESCORT_CODE = 0o4021
GEOMETRIES = ("in trail", "abreast")
SETTLE_S = 10.0  # scans before this are not scored: confirmation and the first identities


def pair_scene(geometry: str, seed: int, separation_m: float = 300.0, duration_s: float = 60.0) -> Scenario:
    """An escort squawking ESCORT_CODE and a silent bomber, same heading and speed at 6 km altitude, apart
    across the line of sight (0.2° of azimuth noise is 330 m there): "in trail" crosses the line of sight
    at 95 km range, one behind the other; "abreast" flies inbound side by side from 102 to 87 km.
    One radar at the origin with its defaults (Pd 0.9, 20 clutter plots a scan, IFF reply 0.98)."""
    from hil.scenario import RadarSpec, Scenario, TargetSpec

    if geometry == "in trail":
        escort, bomber, velocity = (0.0, 95_000.0, 6_000.0), (-separation_m, 95_000.0, 6_000.0), (250.0, 0.0, 0.0)
    elif geometry == "abreast":
        escort, bomber, velocity = (0.0, 102_000.0, 6_000.0), (separation_m, 102_000.0, 6_000.0), (0.0, -250.0, 0.0)
    else:
        raise ValueError(f"geometry must be one of {GEOMETRIES}")
    targets = (TargetSpec(name="escort", allegiance="friendly", kind="aircraft", position=escort, velocity=velocity,
                          mode3a=ESCORT_CODE),
               TargetSpec(name="bomber", allegiance="hostile", kind="aircraft", position=bomber, velocity=velocity))
    return Scenario(name=f"pair {geometry}", duration_s=duration_s, seed=seed, targets=targets,
                    radars=(RadarSpec(name="r", site=(0.0, 0.0, 10.0)),))


def identity_score(sc: Scenario, config: TrackerConfig) -> float:
    """Fraction of the scans from SETTLE_S on that are right: near the pair (5 km) there are exactly two
    confirmed tracks, one showing the escort's code and one -1, and each of the pair's plots of the scan
    updated the confirmed track showing its own aircraft's identity (a track's last_update_s is the time of
    the plot that updated it)."""
    from hil.ext.tracker import Tracker
    from hil.plant.radars import scan_plots

    truth = sc.truth()
    trk = Tracker(config, np.array([r.site for r in sc.radars]))
    right = scored = 0
    for t_end, _, p, _ in scan_plots(sc, truth):
        trk.update(p.t_s, np.zeros(len(p), np.int32), p.range_m, p.azimuth_rad, p.elevation_rad, p.range_rate_mps,
                   p.mode3a)
        trk.sector_swept(0, t_end, 0.0, TWO_PI)
        snap = truth.at(t_end)
        if t_end < SETTLE_S or len(snap.index) < 2:
            continue
        tracks = trk.tracks(confirmed_only=True)
        near = np.linalg.norm(tracks.state[:, :3] - snap.state[0, :3], axis=1) < 5_000.0
        ok = sorted(tracks.mode3a[near].tolist()) == [-1, ESCORT_CODE]
        for k in np.flatnonzero(p.target >= 0):
            fed = np.flatnonzero(near & (tracks.last_update_s == p.t_s[k]))
            own = ESCORT_CODE if sc.targets[int(p.target[k])].mode3a >= 0 else -1
            ok = ok and len(fed) == 1 and tracks.mode3a[fed[0]] == own
        right += ok
        scored += 1
    return right / scored


# --- the fault matrix (tests/system/test_fault_matrix.py and the table docs/RELIABILITY.md shows) --------------

# virtual-time cells: (fault, the far end's counters that must show it)
VIRTUAL = [
    ("radar-west:drop=0.01@10+10", "radar"),
    ("radar-west:corrupt=0.01@10+10", "radar"),
    ("radar-west:delay=2@10+10", "radar_delay"),
    ("radar-west:stall@10+3", "radar_delay"),
    ("radar-west:duplicate=0.2@10+10", "radar_dup"),
    ("radar-west:cut@10+3", "radar"),
    ("launcher-north:drop=0.01@10+10", "launcher"),
    ("launcher-north:corrupt=0.01@10+10", "launcher"),
    ("launcher-north:delay=0.3@10+10", "launcher_late"),
    ("launcher-north:stall@10+3", "launcher"),
    ("launcher-north:duplicate=0.2@10+10", "launcher_late"),
    ("launcher-north:cut@10+3", "launcher"),
    ("launcher-north:silent@10+3", "launcher_silent"),
    ("launcher-north:drop=0.02/down@10+10", "launcher"),
    ("launcher-north:corrupt=0.02/up@10+10", "launcher"),
]
# real-time cells CI runs: (fault, the mock rig's launcher transport)
REAL = [
    ("radar-west:delay=2@6+6", "rtu"),  # the run that once never ended
    ("launcher-north:drop=0.01@6+8", "rtu"),
    ("launcher-south:corrupt=0.01@6+8", "tcp"),
    ("radar-east:stall@6+3", "rtu"),
    ("launcher-north:duplicate=0.3@6+8", "rtu"),
    ("launcher-south:cut@6+3", "tcp"),
    ("launcher-north:silent@6+2", "rtu"),
]


def launcher_anomalies(link: dict[str, Any]) -> int:
    return int(link["timeouts"] + link["late_replies"] + link["bad_responses"] + link["exceptions"]
               + link["discarded_bytes"] + link.get("read_retries", 0))


async def abandon_fires(link: Any, n: int) -> list[bool]:
    """n fires on an armed LauncherLink, each abandoned before its answer came (the task cancelled: half before
    it ran, as fire_now's when the run ends; half while it waited, as fire()'s), each followed at once by a status
    read and a reconciliation. Whether the board launched each one, from its own record."""
    import asyncio

    launched = []
    for i in range(n):
        if i % 2:
            task: Any = asyncio.ensure_future(link.fire(200 + i, 0.0, 0.2, 9000.0, 12.5))
            await asyncio.sleep(0)  # written; its answer not yet come
        else:
            task = link.fire_now(200 + i, 0.0, 0.2, 9000.0, 12.5)
            assert task is not None, "the link was busy"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert link.unconfirmed_track == 200 + i
        await link.read_status()  # the next request, written right behind the abandoned one
        launched.append((await link.reconcile()).launched)
    return launched


def all_stages(stages: Any, between: Callable[[], Any] | None = None) -> tuple[Any, int]:
    """Drive work done in stages (a generator that yields between stages and returns its value) to its end, with
    `between` called after each stage (the run going on meanwhile): its value, and how many stages it yielded."""
    count = 0
    while True:
        try:
            next(stages)
        except StopIteration as done:
            return done.value, count
        count += 1
        if between is not None:
            between()


def radar_anomalies(link: dict[str, Any]) -> int:
    return int(sum(link["rejected"].values()) + link["frames_lost"] + link["bytes_discarded"] + link["seq_gaps"])


def injected_chunks(counts: dict[str, Any], kind: str) -> int:
    """Chunks the fault hit in both directions; a cut TCP link counts its closed and refused connections too."""
    hit = sum(int(counts[d][kind]["chunks"]) for d in ("up", "down") if d in counts)
    if kind == "cut" and "tcp" in counts:
        hit += int(counts["tcp"]["closed_by_cut"]) + int(counts["tcp"]["refused_in_cut"])
    return hit


def rig_tcp(folder: Path) -> Path:
    """The mock rig with its launchers on Modbus TCP, written into the folder."""
    path = folder / "mock-tcp.toml"
    path.write_text(MOCK_RIG.read_text().replace('launcher_transport = "rtu"', 'launcher_transport = "tcp"'))
    return path


# --- a real Dask cluster on loopback -------------------------------------------------------------------------------


class LoopbackDask:
    """A `dask scheduler` and `workers` `dask worker` processes (single-threaded, no nanny: killing one kills the
    worker) on 127.0.0.1, started on entering and stopped on leaving. `cwd`: the workers' working directory.
    After entering: `address` (tcp://127.0.0.1:PORT) and `workers` (their processes)."""

    def __init__(self, folder: Path, workers: int = 1, cwd: Path | None = None, timeout_s: float = 30.0) -> None:
        self.folder, self.n, self.cwd, self.timeout_s = folder, workers, cwd, timeout_s
        self.address = ""
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def workers(self) -> list[subprocess.Popen[bytes]]:
        return self.procs[1:]

    def __enter__(self) -> LoopbackDask:
        import time

        self.folder.mkdir(parents=True, exist_ok=True)
        sched_file = self.folder / "scheduler.json"
        self.log = (self.folder / "dask.log").open("wb")
        try:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--no-dashboard", "--scheduler-file", str(sched_file)], stdout=self.log, stderr=self.log))
            end = time.monotonic() + self.timeout_s
            while not sched_file.exists():
                assert self.procs[0].poll() is None, f"the scheduler exited {self.procs[0].returncode}"
                assert time.monotonic() < end, f"no {sched_file} after {self.timeout_s} s"
                time.sleep(0.05)
            self.address = json.loads(sched_file.read_text())["address"]
            for i in range(self.n):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
                     "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
                    stdout=self.log, stderr=self.log, cwd=self.cwd))
            from distributed import Client

            with Client(self.address, timeout=f"{self.timeout_s}s") as c:
                c.wait_for_workers(self.n, timeout=self.timeout_s)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.log.close()


# --- safety as the plant counts it (tests/system/test_safety_scenarios.py, test_formations.py) --------------------


def assert_safe(summary: dict[str, Any]) -> None:
    """A run's summary shows no round that took a friendly or neutral, none inside a no-fire zone, no target given
    more rounds than fire control allows, and every launch the boards made counted by the host."""
    from hil.ext.firecontrol_types import FireControlConfig

    plant = summary["plant"]
    where = f"{summary['scenario']} seed {summary['seed']}"
    assert plant["friendly_acquired"] == 0, f"{where}: a round's seeker took a friendly: {plant}"
    assert plant["neutral_acquired"] == 0, f"{where}: a round's seeker took a neutral: {plant}"
    assert plant["friendly_killed"] == 0 and plant["neutral_killed"] == 0, f"{where}: {plant}"
    assert plant["nfz_detonations"] == 0, f"{where}: a round detonated inside a no-fire zone: {plant}"
    assert plant["max_rounds_per_target"] <= FireControlConfig().max_shots_per_track, f"{where}: {plant}"
    # every launch accounted for: what the boards launched is what the host counted
    assert plant["rounds_launched"] == summary["launches"], f"{where}: board {plant['rounds_launched']} " \
                                                           f"vs host {summary['launches']}"


class ShownTracks:
    """A tracker that shows what a test says: `rows` turned into a TrackSnapshot by the test's `snapshot` function
    (the host under test asks tracks(); plots and sweeps go nowhere)."""

    def __init__(self, snapshot: Callable[[list[Any]], TrackSnapshot]) -> None:
        self.rows: list[Any] = []
        self.snapshot = snapshot

    def update(self, *columns: object) -> None:
        pass

    def sector_swept(self, sensor: int, t_s: float, az_from_rad: float, az_to_rad: float) -> None:
        pass

    def tracks(self, t_s: float | None = None) -> TrackSnapshot:
        return self.snapshot(self.rows)


def campaign_outcome_stats(summary: dict[str, Any]) -> Any:
    """campaign.json's statistics without latency (wall-clock measurements differ from run to run)."""
    def strip(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k not in ("latency_us", "floor_us")}

    return [strip(p) for p in summary["points"]], strip(summary["all"])
