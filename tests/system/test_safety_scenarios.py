"""Safety in hard geometry, counted by the plant from what each round acquired: escorts, crossing friendlies and a
neutral airliner, no-fire zones, a saturation raid and the default raid, on several seeds in virtual time.

CI runs two seeds of each; `pytest --sweep` runs five or more. The same scenes with fire control's protection
switched off must show fratricide: that proves these tests can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import PROTECTION_OFF, SAFETY_SCENES, assert_safe

CI_SEEDS = (1, 2)
SWEEP_SEEDS = (1, 2, 3, 4, 5, 6)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        seeds = SWEEP_SEEDS if metafunc.config.getoption("--sweep") else CI_SEEDS
        metafunc.parametrize("seed", seeds)


def run_scene(name: str, seed: int, protect: bool = True) -> dict[str, Any]:
    """One scene in virtual time on the mock rig, no run folder."""
    return run_chain(RunOptions(scenario=Scenario.load(SAFETY_SCENES[name]), rig=Rig.load(), seed=seed,
                                time_mode="virtual", out_dir=None, report=False, record=False,
                                fire_control_overrides={} if protect else PROTECTION_OFF))


@pytest.mark.parametrize("scene", sorted(SAFETY_SCENES))
def test_no_fratricide_no_zone_kill_no_extra_round(scene: str, seed: int) -> None:
    summary = run_scene(scene, seed)
    assert_safe(summary)
    assert summary["launches"] > 0 or scene == "escorts", f"{scene} seed {seed}: safety bought by not firing"


def test_escorted_bombers_are_refused_naming_their_escort() -> None:
    summary = run_scene("escorts", 1)
    reasons = {r["reason"] for r in summary["refusals"]}
    assert "PROTECTED_NEAR_INTERCEPT" in reasons
    protected = [r for r in summary["refusals"] if r["reason"] == "PROTECTED_NEAR_INTERCEPT"]
    assert all(r.get("protected_track") is not None for r in protected)


def test_without_protection_the_plant_shows_fratricide() -> None:
    """The same escorts with fire control's protection off: the plant's seeker takes friendlies. If this ever
    stops happening, the safety tests above prove nothing."""
    hits = 0
    for seed in CI_SEEDS:
        plant = run_scene("escorts", seed, protect=False)["plant"]
        hits += plant["friendly_acquired"]
    assert hits > 0


@pytest.mark.slow
def test_escorts_in_real_time_take_no_friendly(tmp_path: Path) -> None:
    """The escorts in real time, boards as processes on ptys: the same safety as in lockstep."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "hil", "run", "--time", "real", "--scenario", "safety/escorts",
                        "--duration", "30", "--quiet", "--no-record", "--out", str(out)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert_safe(summary)
    assert any(x["reason"] == "PROTECTED_NEAR_INTERCEPT" for x in summary["refusals"])
