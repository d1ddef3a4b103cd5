"""The example tracker plug-in through `hil run` and `hil replay`, as a user runs it (docs/PLUGINS.md): chosen on
the command line, named in the run's summary, scored on the same plant as hil's own tracker, replayed with every
decision reproduced, and replayed through another tracker to see what changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CV_TRACKER_EXAMPLE

CHOICE = "hil_cv_tracker:make_tracker"


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    """`hil ARGS` with the example importable, as `PYTHONPATH=examples/cv_tracker hil ...` gives it."""
    path = os.pathsep.join(p for p in (str(CV_TRACKER_EXAMPLE), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "hil", *args], env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("cv") / "run"
    r = hil("run", "--time", "virtual", "--duration", "20", "--quiet", "--tracker", CHOICE, "--out", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out, json.loads((out / "summary.json").read_text())


def test_hil_run_takes_the_example_tracker_and_says_so(cv_run: tuple[Path, dict[str, Any]]) -> None:
    _, summary = cv_run
    assert summary["host"] == {"tracker": CHOICE, "fire_control": "hil"}
    assert summary["confirmed_tracks"] >= 9  # every aircraft flying in the first 20 s
    assert summary["gospa_mean_m"] is not None and summary["gospa_mean_m"] < 2_500.0
    assert summary["launches"] >= 3  # fire control engaged on its tracks


def test_fire_control_still_protects_the_friendly_on_the_example_s_tracks(cv_run: tuple[Path, dict[str, Any]]) -> None:
    """The friendly's code reaches fire control through the plug-in's tracks: refused as FRIENDLY, never hit."""
    _, summary = cv_run
    assert summary["friendly_engagements"] == 0
    assert summary["plant"]["friendly_acquired"] == 0 and summary["plant"]["neutral_acquired"] == 0
    blue = next(e for e in summary["engagements"] if e["target"] == "blue-1")
    assert not blue["engaged"] and "FRIENDLY" in blue["refusal_reasons"], blue


def test_hil_replay_reproduces_every_decision_through_the_tracker_the_run_used(
        cv_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = cv_run
    r = hil("replay", str(out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "every decision reproduced" in r.stdout
    assert CHOICE in r.stdout  # it names the tracker it replayed through


def test_hil_replay_through_hil_s_own_tracker_lists_what_changes(cv_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = cv_run
    r = hil("replay", str(out), "--tracker", "hil")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "differences" in r.stdout and "Traceback" not in r.stderr


def test_a_wrong_choice_ends_the_run_in_one_line(tmp_path: Path) -> None:
    """(Every wrong choice's line: tests/host/test_plugins.py.)"""
    r = hil("run", "--time", "virtual", "--duration", "5", "--quiet", "--no-record", "--tracker",
            "hil_cv_tracker:make_tracks", "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert r.stderr.strip() == "hil: tracker 'hil_cv_tracker:make_tracks': hil_cv_tracker has no make_tracks", r.stderr
