"""The HTML report: rendered from a synthetic run folder and checked the way a user sees it, in Chromium."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from matplotlib.image import imread

from hil.report import STAGES, ReportError, load_run_folder, render_report
from hil.scenario import Scenario
from tests.conftest import require_tool

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "raid.toml"
STAGE_MEDIAN_US = {"decode": 15, "track": 120, "fire_control": 60, "command": 350, "host_total": 600,
                   "sensor_to_shooter": 4000, "floor": 60}


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _histogram(rng: np.random.Generator, median_us: float, n: int) -> HdrHistogram:
    h = HdrHistogram(1, 60_000_000_000, 3)
    for v in rng.lognormal(np.log(median_us * 1e3), 0.6, n):
        h.record_value(int(v))
    return h


def _summary_us(h: HdrHistogram) -> dict[str, float]:
    return {"count": h.get_total_count(), **{k: h.get_value_at_percentile(p) / 1e3
            for k, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9))}, "max": h.get_max_value() / 1e3}


def make_run_folder(out: Path, seed: int = 1, floor: bool = True) -> Path:
    """A plausible run folder: the raid scenario's truth, noisy tracks, and made-up but consistent events."""
    rng = np.random.default_rng(seed)
    sc = Scenario.load(SCENARIO)
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
        "scenario": sc.name, "scenario_file": str(SCENARIO), "seed": seed, "time_mode": "virtual", "rig": "mock",
        "duration_s": sc.duration_s, "latency_us": latency_us,
        "deadline_misses": {"total": 3, "compute": 1, "os": 2}, "plots": 5321, "tracks": 14,
        "confirmed_tracks": len(first_seen), "gospa_mean_m": float(np.mean([float(str(r[1])) for r in gospa_rows])),
        "gospa": {"c_m": 1000.0, "p": 1, "alpha": 2}, "engagements": engagements, "refusals": refusals,
        "friendly_engagements": 0, "machine": {"host": "bench", "cpus": 2},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_is_one_file_with_every_plot_and_table(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    path = render_report(run)
    assert path == run / "report.html"
    page = path.read_text()
    assert not re.search(r'(src|href)="(?!data:)', page), "the report must not reference other files"
    images = _images(page)
    assert len(images) == 4  # map, GOSPA, latency CDFs, timeline
    for png in images:
        pixels = imread(io.BytesIO(png))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    for heading in ("Summary", "Tracks vs truth", "GOSPA over time", "Latency CDFs", "Engagement timeline",
                    "Refusals", "Engagements"):
        assert f"<h2>{heading}</h2>" in page
    summary = json.loads((run / "summary.json").read_text())
    assert f"{summary['latency_us']['host_total']['p99']:,.3f}".rstrip("0").rstrip(".") in page
    assert "OUT_OF_RANGE" in page and "FRIENDLY" in page and "launcher-south" in page
    assert "<td>machine floor</td>" in page
    assert "Notes" not in page  # nothing was missing


def test_missing_pieces_are_said_not_crashed_on(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", floor=False)
    for name in ("gospa.csv", "events.csv"):
        (run / name).unlink()
    summary = json.loads((run / "summary.json").read_text())
    summary["scenario_file"] = "/nowhere/raid.toml"
    summary["refusals"] = []
    (run / "summary.json").write_text(json.dumps(summary))
    with open(run / "tracks.csv", "a") as f:
        f.write("61.000,999,1.0\n")  # a run killed mid-line
    page = render_report(run).read_text()
    assert len(_images(page)) == 2  # map and latency remain
    assert "no gospa.csv" in page and "no events.csv" in page and "scenario file not found" in page
    assert "<td>machine floor</td>" not in page  # no floor row in the latency table when none was measured
    assert "No fire-control refusals." in page


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no summary\.json"):
        render_report(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ReportError, match="not JSON"):
        load_run_folder(tmp_path)


def test_friendly_engagement_is_flagged(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary["friendly_engagements"] = 1
    (run / "summary.json").write_text(json.dumps(summary))
    assert "A friendly target was engaged." in render_report(run).read_text()


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    chromium = require_tool("chromium", "chromium")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(180)
def test_chromium_decodes_every_plot(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    page = render_report(run).read_text()
    # the same report plus a probe that writes what the browser made of each image into the DOM
    probe = ("<script>window.addEventListener('load', () => { const r = [...document.images].map("
             "i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight); "
             "document.body.setAttribute('data-images', r.join(' ')); });</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    out = _chromium("--dump-dom", probed.as_uri(), tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r'data-images="([^"]*)"', out.stdout)
    assert found, "Chromium never reached the load event"
    images = found.group(1).split()
    assert len(images) == 4
    for img in images:
        complete, size = img.split(":")
        w, h = (int(v) for v in size.split("x"))
        assert complete == "true" and w > 400 and h > 200, img


@pytest.mark.timeout(180)
def test_chromium_screenshot_shows_the_report(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    report = render_report(run)
    shot = tmp_path / "shot.png"
    out = _chromium(f"--screenshot={shot}", "--window-size=1300,2400", report.as_uri(), tmp=tmp_path)
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1300)
    non_white = (pixels < 0.9).any(axis=2)
    assert non_white.mean() > 0.02, "the page looks blank"
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200, "only text, no plots drawn"


def test_render_report_from_a_copy_of_the_folder(tmp_path: Path) -> None:
    """A run folder moved elsewhere (with its scenario copied in) still gets assets and launchers."""
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary["scenario_file"] = "scenarios/raid.toml"  # relative to wherever the run was started
    (run / "summary.json").write_text(json.dumps(summary))
    shutil.copy(SCENARIO, run / "scenario.toml")
    folder = load_run_folder(run)
    assert folder.scenario is not None and [a.name for a in folder.scenario.assets] == ["airbase", "port"]
    assert not folder.notes
