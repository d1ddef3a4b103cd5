"""Replay: a run's recording fed back through the kernels reproduces its decisions; tampering is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hil.commands.cli import main as hil_main
from hil.records.recording import Recorder, read_recording
from hil.records.replay import ReplayError, radar_polls, replay
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import RAID


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A real run folder: the raid through the whole chain for 30 s of virtual time."""
    out = tmp_path_factory.mktemp("run")
    summary = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(), seed=1, time_mode="virtual",
                                   out_dir=out, duration_s=30, report=False))
    assert summary["decisions"] >= 3, "the run should have fired a few times"
    return out, summary


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def decisions_of(run: Path) -> list[dict[str, Any]]:
    """The fire decisions of decisions.jsonl (its other records, refusals and kill assessments, have a "kind")."""
    records = [json.loads(line) for line in (run / "decisions.jsonl").read_text().splitlines()]
    return [d for d in records if d.get("kind", "fire") == "fire"]


def rewrite_recording(run: Path, change: Any) -> None:
    """Write the run's recording again, each frame through change(frame) -> (payload, annotation) or None."""
    frames = list(read_recording(run / "recording.pcapng"))
    with Recorder(run / "recording.pcapng", tsoffset_s=0) as rec:
        for f in frames:
            kept = change(f)
            if kept is not None:
                rec.record(f.link_name, f.direction, kept[0], f.host_ns, f.kind, kept[1])


def test_replay_reproduces_every_decision_of_a_live_run(live_run: tuple[Path, dict[str, Any]]) -> None:
    run, summary = live_run
    result = replay(run)
    assert result.exact and result.notes == []
    assert result.plots == summary["plots"]  # every plot the live tracker took, none more
    assert result.decisions == summary["decisions"]
    assert 0 < result.evaluations <= result.decisions + result.refusals_checked
    assert result.findings == []
    # a decision the launcher link refused to send is listed, never hidden: each other one has its fire write
    decided = {(round(d["t_s"], 6), d["track"], d["launchers"][0]) for d in decisions_of(run)}
    assert {(round(f.t_s, 6), f.track, f.launcher) for f in result.uncommanded} <= decided
    assert result.fire_commands == result.decisions - len(result.uncommanded)


def test_replay_is_deterministic(live_run: tuple[Path, dict[str, Any]]) -> None:
    run, _ = live_run
    assert replay(run) == replay(run)


def test_a_changed_decision_is_reported(live_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run = copy_run(live_run[0], tmp_path / "run")
    decisions = decisions_of(run)
    first = decisions[0]
    names = [s.name for s in Scenario.load(RAID).launchers]
    fired = first["launchers"][0]
    other = next(n for n in names if n != fired)
    first["launchers"] = [other]  # the "run" claims the other launcher fired
    (run / "decisions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in decisions))
    problems = {(f.track, f.launcher, f.problem.split(" (")[0]) for f in replay(run).findings}
    assert (first["track"], other, "the run fired, replay does not") in problems
    assert (first["track"], fired, "replay fires, the run did not") in problems
    assert any(lch == fired and p.startswith("fire command seq") for _, lch, p in problems)


def test_the_other_tracks_engagements_count(live_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """A run that claims no track had an interceptor in flight would have fired at an engaged one."""
    run = copy_run(live_run[0], tmp_path / "run")
    decisions = decisions_of(run)
    for d in decisions:
        d["call"]["engaged"] = {}  # the run's record of every engaged track, here: none
    (run / "decisions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in decisions))
    problems = [f.problem for f in replay(run).findings]
    assert "replay fires, the run did not" in problems


def test_a_tampered_recording_is_reported(live_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run = copy_run(live_run[0], tmp_path / "run")
    west = Scenario.load(RAID).radars[0].name

    def late_by_a_microsecond(f: Any) -> tuple[bytes, Any]:
        note = f.annotation
        if f.link_name == west and note and note.get("plots_t_s"):
            note = {**note, "plots_t_s": [[t + 1e-6, n] for t, n in note["plots_t_s"]]}
        return f.payload, note

    rewrite_recording(run, late_by_a_microsecond)
    result = replay(run)
    assert result.exact
    # exact replay notices a microsecond: the decided tracks' position variance is no longer the run's
    assert result.findings
    assert all("replayed track differs" in f.problem or "replay" in f.problem for f in result.findings)
    assert any("position variance" in f.problem for f in result.findings)


def test_dropped_radar_traffic_changes_the_decisions(live_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run = copy_run(live_run[0], tmp_path / "run")
    east = Scenario.load(RAID).radars[1].name
    first_t = decisions_of(run)[0]["t_s"]
    start_ns = json.loads((run / "summary.json").read_text())["start_host_ns"]
    cut = (start_ns + int(0.5e9), start_ns + int(first_t * 1e9))

    def drop_east(f: Any) -> tuple[bytes, Any] | None:
        gone = f.link_name == east and f.kind == "asterix" and cut[0] <= f.host_ns < cut[1]
        return None if gone else (f.payload, f.annotation)

    rewrite_recording(run, drop_east)
    result = replay(run)
    assert result.plots < live_run[1]["plots"]
    assert any(f.t_s == pytest.approx(first_t) for f in result.findings)


def test_a_recording_without_plot_times_is_replayed_but_not_exactly(live_run: tuple[Path, dict[str, Any]],
                                                                     tmp_path: Path) -> None:
    run = copy_run(live_run[0], tmp_path / "run")
    rewrite_recording(run, lambda f: (f.payload, None))
    polls = list(radar_polls(run / "recording.pcapng", [r.name for r in Scenario.load(RAID).radars]))
    assert all(p.key[0] == "rx" for p in polls)  # grouped by receive time instead
    result = replay(run)
    assert not result.exact
    assert result.notes and "receive times" in result.notes[0]
    assert result.plots == live_run[1]["plots"]


def test_command_line_exit_codes(live_run: tuple[Path, dict[str, Any]], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = live_run
    assert hil_main(["replay", str(run / "recording.pcapng")]) == 0
    assert "every decision reproduced" in capsys.readouterr().out
    bad = copy_run(run, tmp_path / "bad")
    decisions = decisions_of(bad)
    decisions.append({**decisions[-1], "t_s": decisions[-1]["t_s"] + 0.5, "track": 99_999})
    (bad / "decisions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in decisions))
    assert hil_main(["replay", str(tmp_path / "elsewhere.pcapng"), "--run", str(bad)]) == 2  # no such recording
    assert hil_main(["replay", str(bad / "recording.pcapng")]) == 1
    out = capsys.readouterr().out
    assert "99999" in out and "not held in replay" in out


def test_bad_decisions_file_names_the_line(live_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    bad = copy_run(live_run[0], tmp_path / "bad")
    (bad / "decisions.jsonl").write_text('{"t_s": 1, "track": 2, "launchers": ["x"]}\n{"t_s": 3}\n{}\n')
    with pytest.raises(ReplayError, match=r"decisions\.jsonl:2: a decision needs"):
        replay(bad)
    (bad / "scenario.toml").unlink()
    (bad / "summary.json").unlink()  # and so no scenario_file either
    with pytest.raises(ReplayError, match=r"scenario file was not found \(no summary\.json; "):
        replay(bad)


def test_other_records_in_decisions_jsonl_are_not_fire_decisions(live_run: tuple[Path, dict[str, Any]],
                                                                 tmp_path: Path) -> None:
    run = copy_run(live_run[0], tmp_path / "run")
    lines = (run / "decisions.jsonl").read_text().splitlines()
    assessment = {"kind": "assessment", "t_s": 5.0, "track_id": 3, "result": "killed"}
    (run / "decisions.jsonl").write_text("\n".join([lines[0], json.dumps(assessment), *lines[1:]]) + "\n")
    result = replay(run)
    assert result.decisions == live_run[1]["decisions"] and result.findings == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_real_time_run_replays_too(tmp_path: Path) -> None:
    summary = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(), seed=1, time_mode="real",
                                   out_dir=tmp_path, duration_s=6, report=False, floor=False))
    result = replay(tmp_path)
    assert result.plots == summary["plots"]
    assert result.exact  # the plot times are the live ones; which polls preceded a decision is inferred
    assert result.findings == [], [f.problem for f in result.findings]
