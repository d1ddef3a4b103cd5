"""The HTML report: rendered from synthetic and real run folders, read back the way an engineer reads it."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from hil.records import report
from hil.records.report import ReportError, load_run_folder, render_report
from tests.helpers import RAID, hil_run, make_run_folder


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
    assert page.index('id="verdict"') < page.index('id="status"') < page.index('id="headline"') < page.index('id="map"')
    assert "Verdict: FAIL" in page and "Safe:" in page  # the safety headline stays under the verdict
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
    shutil.copy(RAID, run / "scenario.toml")
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


def test_a_crowded_map_names_what_it_can_and_says_what_it_left_off() -> None:
    """A long run flies hundreds of targets: the map names MAP_NAMES of them at most, says how many more it left
    off, and never leaves off a site's name (placing every name had taken minutes at 800 targets)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.0, 8.6))
    ax = fig.add_subplot()
    ax.set_xlim(-50, 50)
    ax.set_ylim(-50, 50)
    rng = np.random.default_rng(1)
    names = [report._Label(float(x), float(y), f"t{k}", "#d62728", 8.5, name_only=True)
             for k, (x, y) in enumerate(rng.uniform(-45, 45, size=(400, 2)))]
    sites = [report._Label(0.0, 0.0, "launcher-north", "#b35900", 9, "bold"),
             report._Label(20.0, 0.0, "radar-west", "#6a3d9a", 9, "bold")]
    left_off = report._place_labels(ax, names[:200] + sites + names[200:], [])
    shown = [t.get_text() for t in ax.texts]
    assert left_off == 400 - report.MAP_NAMES
    assert {"launcher-north", "radar-west"} <= set(shown) and len(shown) == report.MAP_NAMES + 2


# ---- real run folders --------------------------------------------------------------------------------------


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


def test_the_report_lets_no_verdict_stand_over_a_failed_rig_nor_judge_for_a_plant_elsewhere(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary.update(verdict={"result": "pass", "failed": [], "not_judged": [], "criteria": [
        {"name": "leaks", "measured": 0, "limit": 0, "result": "pass"}]},
        rig_ok=False, rig_problems=["launcher launcher-south link lost at the end of the run"])
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run).read_text()
    assert "Verdict: NONE: the rig failed" in page and "as measured: pass" in page and "Verdict: PASS" not in page
    summary.update(rig_ok=True, rig_problems=[], scored="plant elsewhere",
                   verdict={"result": "pass", "failed": [], "not_judged": ["leaks"], "criteria": [
                       {"name": "leaks", "measured": None, "limit": 0, "result": "not judged"}]})
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run).read_text()
    assert "Verdict: NOTHING JUDGED HERE: the plant (hil plant) scores this run" in page and "Verdict: PASS" not in page
