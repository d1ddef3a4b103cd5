"""What tests and benchmarks share: the checkout's files, Debian tools, child processes, made-up and real run
folders. Every test imports its shared helpers from here, never from another test; conftest.py holds only
pytest's hooks and fixtures.

Importing this module needs no kernel built and loads neither matplotlib nor scipy: a helper that needs them
imports them when called, so a test that wants only REPO stays light and a kernel being rebuilt breaks only the
tests that use it. The wheel ships this file beside the benchmarks (setup.py's SHIPPED); there REPO is hil/data/,
which holds the same rigs/, scenarios/ and firmware_stubs/ as the checkout.
"""

from __future__ import annotations

import csv
import json
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

# --- the checkout's files (an installed package's hil/data/) ----------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
RAID = REPO / "scenarios" / "raid.toml"


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
