"""The HTML report: rendered from synthetic and real run folders, read back the way an engineer reads it."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from hil.records import report
from hil.records.report import STAGES, ReportError, load_run_folder, render_report
from hil.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "raid.toml"
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


def _section(page: str, ident: str) -> str:
    """The HTML of one section of the page, by its id."""
    found = re.search(rf'<section id="{ident}"[^>]*>(.*?)</section>', page, re.S)
    assert found, f"no section {ident!r}"
    return found.group(1)


def _rows(html_table: str) -> list[list[str]]:
    """Body rows of the first table in the text, each cell as its text without tags."""
    body = re.search(r"<tbody>(.*?)</tbody>", html_table, re.S)
    assert body
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


KEY_IDS = ("status", "headline", "map", "targets", "outcome-words", "refusals", "latency", "launchers", "faults",
           "links", "realtime", "gospa", "timeline", "run")


def test_report_is_one_file_with_every_section(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    path = render_report(run)
    assert path == run / "report.html"
    page = path.read_text()
    assert not re.search(r'(src|href)="(?!data:)', page), "the report must not reference other files"
    for ident in KEY_IDS:
        assert f'id="{ident}"' in page, ident
    images = _images(page)
    assert len(images) == 4  # map, latency tails, GOSPA, timeline
    for png in images:
        pixels = imread(io.BytesIO(png))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    assert "could not be drawn" not in page and "Notes" not in page  # nothing was missing or unreadable


def test_latency_shows_no_percentile_its_sample_count_cannot_carry(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")  # 2000 samples a stage: enough for a p99, not for a p99.9
    summary = json.loads((run / "summary.json").read_text())
    summary["time_mode"] = "real"
    summary["latency_us"]["command"] = {"count": 12, "p50": 640.0, "p90": 1340.0, "p99": 10527.0,
                                        "p99_9": 10527.0, "max": 10527.0}
    (run / "summary.json").write_text(json.dumps(summary))
    rows = {r[0]: r for r in _rows(_section(render_report(run).read_text(), "latency"))}
    track = rows["track update"]
    assert track[1] == "2,000" and track[5] == "n < 10,000"  # p99.9 needs 10,000 samples
    assert track[4] == report.duration_text(summary["latency_us"]["track"]["p99"])
    command = rows["launcher command round trip"]
    assert command[2:6] == ["n < 20", "n < 100", "n < 1,000", "n < 10,000"]  # 12 samples: not even a median
    assert command[6] == "10.5 ms"  # the max is a fact whatever n is; ms where ms read better
    assert rows["machine floor (scheduling)"][4] != "n < 1,000"  # 5000 floor samples carry a p99


def test_numbers_read_with_units() -> None:
    assert [report.samples_needed(p) for p in (50, 90, 99, 99.9)] == [20, 100, 1000, 10000]
    assert [report.duration_text(us) for us in (0.53, 107.5, 860.159, 10527.0, 874512.4, 1.5e6)] == [
        "0.5 µs", "108 µs", "860 µs", "10.5 ms", "875 ms", "1.50 s"]
    assert report.percentile_text({"count": 999, "p99": 5.0}, "p99") == "n < 1,000"
    assert report.percentile_text({"count": 1000, "p99": 5.0}, "p99") == "5.0 µs"


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
    assert "machine floor (scheduling)" not in _section(page, "latency")  # no floor row when none was measured
    assert "No fire-control refusals." in page
    assert "No data for this plot" in _section(page, "gospa")


def test_a_damaged_summary_costs_only_what_is_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary.update(engagements="garbage", plant=3, links={"radar-west": 5, "x": {"rejected": []}}, latency_us=[],
                   refusals=[1, {"track": "x"}], launcher_health={"launcher-north": {"safe_s": "long"}},
                   faults_injected={"launcher-north": {"up": 7}}, realtime=[["cpus"]], verdict=None)
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run).read_text()
    assert "could not be drawn" not in page and "Verdict" not in page
    for ident in set(KEY_IDS) - {"outcome-words"}:  # no targets: nothing to define outcome words for
        assert f'id="{ident}"' in page, ident
    assert "No engagements in summary.json." in page

    def broken(*_: Any) -> str:
        raise KeyError("surprise")

    monkeypatch.setattr(report, "_links_section", broken)
    page = render_report(run).read_text()
    assert "This section could not be drawn (KeyError" in _section(page, "links")
    assert page.count("could not be drawn") == 1 and len(_images(page)) == 4


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no summary\.json"):
        render_report(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ReportError, match="not JSON"):
        load_run_folder(tmp_path)


def test_status_without_a_verdict_is_rig_health_and_safety(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary.update(rig_ok=True, rig_problems=[], plant={"acquired": {"hostile": 5, "friendly": 0, "neutral": 0},
                                                         "killed": {"hostile": 4, "friendly": 0, "neutral": 0}})
    (run / "summary.json").write_text(json.dumps(summary))
    status = re.search(r'<div id="status" class="status (\w+)">(.*?)</div>', render_report(run).read_text(), re.S)
    assert status and status.group(1) == "good" and "Safe:" in status.group(2) and "Rig healthy" in status.group(2)
    summary.update(rig_ok=False, rig_problems=["launcher-north never armed"],
                   plant={"acquired": {"hostile": 5, "friendly": 1, "neutral": 0},
                          "killed": {"hostile": 4, "friendly": 1, "neutral": 0}, "nfz_detonations": 1})
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run).read_text()
    status = re.search(r'<div id="status" class="status (\w+)">(.*?)</div>', page, re.S)
    assert status and status.group(1) == "bad"
    for said in ("UNSAFE", "1 round(s) took a friendly or neutral", "1 friendly or neutral killed",
                 "1 detonation(s) inside a no-fire zone", "launcher-north never armed"):
        assert said in status.group(2), said


def test_a_verdict_leads_the_page(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary["verdict"] = {"result": "fail", "criteria": [
        {"name": "leaks", "measured": 1, "limit": 0, "result": "fail"},
        {"name": "host_total p99", "measured": None, "limit": 5000, "unit": "µs", "result": "not judged",
         "note": "n = 12: a p99 needs 1,000"}]}
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run).read_text()
    assert page.index('id="status"') < page.index('id="headline"') < page.index('id="map"')
    assert "Verdict: FAIL" in page and "Safe:" not in page
    rows = _rows(page[page.index('class="verdict"'):])
    assert rows[0][:4] == ["leaks", "1", "0", "fail"] and rows[1][3] == "not judged"


@pytest.mark.parametrize(("how", "said"), [({"interrupted": True, "signal": "SIGTERM"}, "interrupted by SIGTERM"),
                                           ({"complete": False}, "did not finish")])
def test_a_run_that_ended_early_says_so_at_the_top(tmp_path: Path, how: dict[str, Any], said: str) -> None:
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary.update(how)
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run).read_text()
    assert said in page and page.index(said) < page.index('id="map"')
    assert "The records reach 59.0 s of the 60 s planned." in page


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


def test_labels_on_the_map_do_not_overlap(tmp_path: Path) -> None:
    folder = load_run_folder(make_run_folder(tmp_path / "run"))
    fig = report.plot_map(folder)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    names = {t.get_text() for t in ax.texts}
    # every site and target is named once, every track numbered once
    assert names >= {"launcher-north", "launcher-south", "radar-west", "radar-east", "airbase", "port", "bomber-1",
                     "blue-1", "airliner", "#100"}
    assert len(ax.texts) == len(names)
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert report._overlap(a, frame) == pytest.approx(a.width * a.height)  # inside the map
        for b in boxes[i + 1:]:
            assert report._overlap(a, b) == 0.0, (ax.texts[i].get_text(), b)


# ---- real run folders --------------------------------------------------------------------------------------


def hil_run(out: Path, *args: str) -> Path:
    """A virtual-time run of the real chain on the mock rig, its run folder."""
    cmd = [sys.executable, "-m", "hil", "run", "--time", "virtual", "--quiet", "--no-record", "--out", str(out),
           *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def faulted_raid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raid through its first kills, misses and self-destructs, with a lossy launcher link from 8 s."""
    return hil_run(tmp_path_factory.mktemp("faulted") / "run", "--duration", "42",
                   "--fault", "launcher-north:drop=0.01@8")


@pytest.mark.timeout(300)
def test_real_run_report_tells_the_engagement(faulted_raid: Path) -> None:
    summary = json.loads((faulted_raid / "summary.json").read_text())
    page = render_report(faulted_raid).read_text()
    assert "could not be drawn" not in page and len(_images(page)) == 4
    h = report.headline(summary)
    tile = {k: v for v, k in re.findall(r'<div class="v[^"]*">(.*?)</div><div class="k">(.*?)</div>', page)}
    assert tile["hostiles killed"] == f"{h.killed} / {h.hostiles}" and h.hostiles == 8
    assert tile["rounds launched"] == str(summary["plant"]["rounds_launched"])
    assert tile["host latency p99"] == "n/a"  # virtual time has no wall-clock host latency
    # every target has its row, friendlies and neutrals included, with the summary's result
    rows = {r[0]: r for r in _rows(_section(page, "targets"))}
    assert set(rows) == {e["target"] for e in summary["engagements"]} >= {"blue-1", "airliner"}
    for e in summary["engagements"]:
        assert rows[e["target"]][7] == e["result"]
        assert rows[e["target"]][3] == (" ".join(f"#{t}" for t in e["tracks"]) or "–")
    killed = [r for r in summary["plant"]["rounds"] if r["result"] == "killed"]
    assert killed and all(f"{r['miss_distance_m']:,.1f} m" in rows[r["acquired"]][8] for r in killed)
    assert "FRIENDLY" in rows["blue-1"][9]
    for word in ("killed", "leaked", "survived", "not_launched", "self-destruct"):
        assert f"<dt>{word}</dt>" in _section(page, "targets")
    # refusals: one row per target, fewer than the refusal records keyed by track, with the protected track named
    refusals = _rows(_section(page, "refusals"))
    assert len(refusals) == len({r[0] for r in refusals}) < len(summary["refusals"])
    protected = [r for r in summary["refusals"] if r["protected_track"] is not None]
    if protected:
        assert f"protecting #{protected[0]['protected_track']}" in _section(page, "refusals")
    # the fault, what it hit, and what the link counted
    faults = _section(page, "faults")
    assert "launcher-north:drop=0.01@8" in faults and "drop" in faults
    links = {r[0]: r for r in _rows(_section(page, "links"))}
    assert links["launcher-north"][1] == "faults seen" and links["radar-west"][1] == "clean"
    assert links["launcher-north"][4] == f"{summary['links']['launcher-north']['timeouts']:,}"
    health = {r[0]: r for r in _rows(_section(page, "launchers"))}
    assert health["launcher-north"][3] == str(summary["launcher_health"]["launcher-north"]["watchdog_trips"])
    assert "Virtual time: real-time options do not apply." in _section(page, "realtime")


@pytest.mark.timeout(300)
def test_escort_scene_names_who_was_protected(tmp_path: Path) -> None:
    run = hil_run(tmp_path / "run", "--scenario", "scenarios/safety/escorts.toml", "--duration", "20")
    summary = json.loads((run / "summary.json").read_text())
    page = render_report(run).read_text()
    assert "could not be drawn" not in page
    refusals = {r[0]: r for r in _rows(_section(page, "refusals"))}
    # one row per target the run tied a refused track to (events.csv), holding each of its tracks' reasons
    owner = report.track_targets(load_run_folder(run))
    assert set(refusals) == {owner[r["track"]] for r in summary["refusals"]}
    for r in summary["refusals"]:
        row = refusals[owner[r["track"]]]
        assert r["reason"] in row[3] and f"#{r['track']}" in row[2].split()
    assert sum("FRIENDLY" in r[3] for r in refusals.values()) >= 4  # the escorts, each refused by name
    guarded = [name for name, r in refusals.items() if "PROTECTED_NEAR_INTERCEPT" in r[3]]
    assert guarded and all("protecting #" in refusals[name][3] for name in guarded)
    status = re.search(r'<div id="status" class="status (\w+)">(.*?)</div>', page, re.S)
    assert status and "Safe: no friendly or neutral taken or killed" in status.group(2)
