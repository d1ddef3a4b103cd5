"""The hil command as a user meets it: rig check on the mock rig, and one clear line for a bad file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def hil(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_rig_check_passes_on_the_mock_rig_with_a_table() -> None:
    r = hil("rig", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    for board in ("radar-west", "radar-east", "launcher-north", "launcher-south"):
        assert board in r.stdout
    assert "hil-radar-py" in r.stdout and "hil-launcher-py" in r.stdout
    assert "FAIL" not in r.stdout and "SAFE" in r.stdout


def test_rig_check_fails_with_a_nonzero_exit_when_a_board_is_missing(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('[defaults]\nradar_board = "mock"\n[[launcher]]\nname = "launcher-north"\nboard = "serial"\n'
                   'port = "/dev/serial/by-id/usb-no-such-board"\n[[launcher]]\nname = "launcher-south"\n'
                   'board = "mock"\n')
    r = hil("rig", "check", "--rig", str(rig), "--timeout", "0.5")
    assert r.returncode == 1
    assert "FAIL" in r.stdout and "launcher-north" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_a_typo_in_a_rig_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('[[radar]]\nname = "radar-west"\nbord = "mock"\n')
    r = hil("run", "--rig", str(rig), "--time", "virtual")
    assert r.returncode == 2
    assert "bord" in r.stderr and str(rig) in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_impossible_scenario_values_are_one_line(tmp_path: Path) -> None:
    text = (REPO / "scenarios" / "raid.toml").read_text().replace("pd = 0.9", "pd = 1.9", 1)
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text)
    r = hil("run", "--scenario", str(scenario), "--time", "virtual")
    assert r.returncode == 2 and "pd" in r.stderr and "Traceback" not in r.stderr
