"""`hil replay` given something that is not a run: one line that says what is wrong, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.commands.cli import main as hil_main


def _refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert hil_main(["replay", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("hil: "), err
    return err


def test_a_missing_folder_is_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nonexistent"
    assert _refusal(capsys, str(missing)) == f"hil: {missing}: no such run folder or recording\n"
    assert f"{missing}: no such run folder" in _refusal(capsys, str(tmp_path), "--run", str(missing))


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a run\n")
    assert _refusal(capsys, str(tmp_path)).startswith(f"hil: {tmp_path}: not a run folder (none of summary.json")


def test_a_run_folder_without_its_recording_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "summary.json").write_text("{}")
    assert _refusal(capsys, str(tmp_path)).startswith(f"hil: {tmp_path / 'recording.pcapng'}: no such recording")


@pytest.fixture(scope="module")
def a_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short recorded run in virtual time."""
    from hil.rig import Rig
    from hil.runtime import RunOptions, run_chain
    from hil.scenario import Scenario

    out = tmp_path_factory.mktemp("run")
    run_chain(RunOptions(scenario=Scenario.load("raid"), rig=Rig.load("mock"), seed=1, time_mode="virtual",
                         out_dir=out, duration_s=4.0, report=False))
    return out


def _copy_with(run: Path, to: Path, **changes: object) -> Path:
    import json
    import shutil

    shutil.copytree(run, to)
    summary = json.loads((to / "summary.json").read_text())
    (to / "summary.json").write_text(json.dumps({**summary, **changes}))
    return to


def test_a_plant_folder_is_refused_with_where_to_look(a_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    plant = _copy_with(a_run, tmp_path / "plant", scored="plant")
    assert "the run folder of a hil plant, whose host ran elsewhere: replay the host's run folder" in \
        _refusal(capsys, str(plant))


def test_the_recording_of_another_run_is_refused(a_run: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import json

    start = json.loads((a_run / "summary.json").read_text())["start_host_ns"]
    other = _copy_with(a_run, tmp_path / "other", start_host_ns=start + 3_600_000_000_000)  # an hour later
    err = _refusal(capsys, str(a_run / "recording.pcapng"), "--run", str(other))
    assert f"is not the recording of the run in {other}: its frames are -3600 s from that run's start" in err
    assert hil_main(["replay", str(a_run)]) == 0  # its own run folder replays
