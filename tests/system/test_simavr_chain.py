"""The whole chain with the real AVR firmware under simavr: rig check, then a short real-time run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, require_tool

SIMAVR_RIG = str(REPO / "rigs" / "simavr.toml")


@pytest.fixture(autouse=True)
def _avr_tools() -> None:
    require_tool("avr-gcc", "gcc-avr")
    require_tool("simavr", "simavr")


def test_rig_check_passes_on_the_simavr_rig() -> None:
    r = subprocess.run([sys.executable, "-m", "hil", "rig", "check", "--rig", SIMAVR_RIG], cwd=REPO,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("hil-radar-avr") == 2 and r.stdout.count("hil-launcher-avr") == 2


@pytest.mark.slow
def test_raid_runs_on_the_avr_firmware(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hil", "run", "--rig", SIMAVR_RIG, "--time", "real", "--duration",
                        "20", "--quiet", "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["rig"] == "simavr" and s["friendly_engagements"] == 0
    assert {b["board"] for b in s["boards"]} == {"simavr"}
    assert s["plots"] > 100 and s["confirmed_tracks"] >= 5
    assert s["launches"] >= 1 and s["latency_us"]["command"]["count"] >= 1
    assert all(link.get("rejected", {}).get("crc", 0) == 0 for name, link in s["links"].items() if "radar" in name)
