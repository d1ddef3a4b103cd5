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
