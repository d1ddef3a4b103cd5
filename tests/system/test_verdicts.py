"""A run's verdict through the command line: a scenario built to leak fails its criterion with exit 1 and says
what was measured against what limit; the shipped raid passes; a bad criterion is a usage error (exit 2)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import REPO

LEAK = REPO / "tests" / "data" / "scenarios" / "leak-by-design.toml"


def hil_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", "run", "--time", "virtual", "--quiet", "--no-record",
                           "--out", str(tmp_path / "run"), *args], capture_output=True, text=True, timeout=300)


def test_a_hostile_that_leaks_by_design_fails_its_criterion(tmp_path: Path) -> None:
    junit = tmp_path / "verdict.xml"
    r = hil_run(tmp_path, "--scenario", str(LEAK), "--junit", str(junit))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "VERDICT: FAIL (leaks)" in r.stdout
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failure = cases["leaks"].find("failure")
    assert failure is not None and failure.get("message", "").startswith("measured 2, limit <= 0")
    assert cases["friendly_engagements"].find("failure") is None


def test_the_shipped_raid_passes_its_criteria(tmp_path: Path) -> None:
    r = hil_run(tmp_path, "--scenario", "raid", "--seed", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VERDICT: PASS" in r.stdout
    assert (tmp_path / "run" / "report.html").read_text().count("Verdict: PASS") == 1


@pytest.mark.parametrize(("criteria", "says"), [
    ("friendly_engagements=1", "cannot be changed"),
    ("leaks=some", "needs a number"),
    ("no_such=1", "no criterion"),
])
def test_a_bad_criterion_is_a_usage_error_in_one_line(tmp_path: Path, criteria: str, says: str) -> None:
    r = hil_run(tmp_path, "--duration", "2", "--criteria", criteria)
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()


def test_command_line_criteria_override_the_scenarios(tmp_path: Path) -> None:
    """The leak scenario passes when the command line allows its two leaks (later overrides earlier)."""
    r = hil_run(tmp_path, "--scenario", str(LEAK), "--criteria", "leaks=2")
    assert r.returncode == 0, r.stdout
    assert "VERDICT: PASS" in r.stdout
