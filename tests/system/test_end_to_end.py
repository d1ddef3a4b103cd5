"""The whole chain on the mock rig: the raid in virtual time, and a short run in real time over ptys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import MOCK_RIG, RAID, REPO

STAGES = ("decode", "track", "fire_control", "command", "host_total", "sensor_to_shooter")


@pytest.fixture(scope="module")
def raid_virtual(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("raid")
    summary = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1,
                                   time_mode="virtual", out_dir=out))
    return summary, out


def test_every_hostile_is_engaged_or_has_a_stated_reason(raid_virtual: tuple[dict, Path]) -> None:
    summary, _ = raid_virtual
    hostiles = [e for e in summary["engagements"] if e["allegiance"] == "hostile"]
    assert len(hostiles) == 8
    for e in hostiles:
        assert e["engaged"] or e["refusal_reasons"] or e["result"] == "not_launched", e
    assert sum(e["engaged"] for e in hostiles) >= 6
    assert sum(e["result"] == "killed" for e in hostiles) >= 4


def test_no_friendly_is_ever_engaged(raid_virtual: tuple[dict, Path]) -> None:
    summary, _ = raid_virtual
    assert summary["friendly_engagements"] == 0
    assert any(r["reason"] == "FRIENDLY" for r in summary["refusals"])


def test_tracking_quality_is_bounded(raid_virtual: tuple[dict, Path]) -> None:
    summary, _ = raid_virtual
    assert summary["plots"] > 500
    assert 10 <= summary["confirmed_tracks"] <= 40  # ten real aircraft; clutter rarely confirms
    assert summary["gospa_mean_m"] is not None and summary["gospa_mean_m"] < 2_500.0


def test_summary_has_every_stage_and_the_run_folder_is_complete(raid_virtual: tuple[dict, Path]) -> None:
    summary, out = raid_virtual
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["scenario"] == "raid" and on_disk["seed"] == 1 and on_disk["time_mode"] == "virtual"
    for stage in STAGES:
        s = on_disk["latency_us"][stage]
        assert s["count"] > 0, stage
        assert s["p50"] <= s["p90"] <= s["p99"] <= s["p99_9"] <= s["max"], stage
    for name in ("plots.csv", "truth.csv", "tracks.csv", "gospa.csv", "events.csv", "decisions.jsonl",
                 "latency.json", "recording.pcapng", "sensors.toml", "scenario.toml", "report.html"):
        assert (out / name).stat().st_size > 0, name
    launches = [line for line in (out / "events.csv").read_text().splitlines() if ",launch," in line]
    assert len(launches) == summary["launches"] > 0


def test_virtual_time_is_repeatable_for_a_seed(raid_virtual: tuple[dict, Path], tmp_path: Path) -> None:
    summary, out = raid_virtual
    again = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1,
                                 time_mode="virtual", out_dir=tmp_path, report=False))
    assert again["engagements"] == summary["engagements"]
    assert (tmp_path / "events.csv").read_text() == (out / "events.csv").read_text()


@pytest.mark.slow
def test_real_time_over_ptys(tmp_path: Path) -> None:
    """Boards as processes on ptys, the same drivers as on hardware, through the `hil run` command."""
    r = subprocess.run(
        [sys.executable, "-m", "hil", "run", "--time", "real", "--duration", "25", "--quiet",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["time_mode"] == "real" and summary["friendly_engagements"] == 0
    assert summary["plots"] > 100 and summary["confirmed_tracks"] >= 5
    assert summary["latency_us"]["decode"]["count"] > 0 and summary["latency_us"]["track"]["count"] > 0
    assert summary["launches"] >= 1 and summary["latency_us"]["sensor_to_shooter"]["count"] >= 1
    assert "sensor_to_shooter" in r.stdout and "run folder" in r.stdout


def test_a_launcher_that_stops_answering_is_never_commanded_and_the_run_goes_on(tmp_path: Path) -> None:
    from hil.drivers.faults import LinkFault

    summary = run_chain(RunOptions(
        scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1, time_mode="virtual",
        out_dir=tmp_path, duration_s=40.0, record=False, report=False,
        faults=(LinkFault.parse("launcher-north:silent@5+20"),)))
    events = (tmp_path / "events.csv").read_text().splitlines()
    rows = [line.split(",") for line in events[1:]]
    north = [r for r in rows if r[1] == "launch" and r[4] == "launcher-north"]
    assert all(not 5.0 <= float(r[0]) < 25.0 for r in north), north
    assert any(r[1] == "link_lost" and r[4] == "launcher-north" for r in rows)
    assert any(r[1] == "launch" and r[4] == "launcher-south" and 5.0 <= float(r[0]) < 25.0 for r in rows)
    assert summary["links"]["launcher-north"]["lost_events"] >= 1
    assert summary["friendly_engagements"] == 0


def test_a_target_starting_as_the_run_ends_never_flew() -> None:
    """cruise-3 starts at 10 s: a run of 10 s ends as it would start, so it is not_launched, never survived; one of
    11 s flies it."""
    def result(duration_s: float) -> str:
        summary = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1,
                                       time_mode="virtual", out_dir=None, duration_s=duration_s, record=False,
                                       report=False))
        return next(e["result"] for e in summary["engagements"] if e["target"] == "cruise-3")

    assert result(10.0) == "not_launched"
    assert result(11.0) != "not_launched"
