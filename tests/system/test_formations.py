"""Safety over the whole class "hostiles flying in formation with friendlies or neutrals", not only the shipped
escorts: scenes generated from a seed on the escorts scene's ground (its radars, launchers, assets, no-fire zone and
codes), each run in virtual time on the mock rig. No round may take a friendly or neutral; the lone hostiles fire
control could reach must still be engaged, so safety is not bought by holding fire; and the same scenes with
fire control's protection off must show fratricide, proof that the first test can fail.

CI runs CI_SCENES; `pytest --sweep` runs SWEEP_SCENES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hil.ext.firecontrol_types import FireControlConfig
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario, TargetSpec
from tests.helpers import PROTECTION_OFF, assert_safe

# the first four seeds, not picked: with protection off they show 3 neutrals taken (seeds 2, 3, 4), and the first
# 100 seeds 43 friendlies and 50 neutrals in 603 launches
CI_SCENES = (1, 2, 3, 4)
SWEEP_SCENES = tuple(range(1, 31))

GEOMETRIES = ("beside", "ahead", "behind", "above", "below", "random")
LOWEST_M = 50.0  # no companion flies lower (one that would end lower is mirrored upward)
# the lone hostiles that must be engaged: those fire control could reach, judged on truth, for REACH_S scans in a
# row from when the first tracks are confirmed (SETTLE_S) to LAST_S before the end, with every friendly and neutral
# protected and each position as uncertain as REACH_SIGMA_M an axis (a confirmed track's is nearer 50 m)
SETTLE_S = 3.0
LAST_S = 3.0
REACH_S = 5
REACH_SIGMA_M = 250.0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scene_seed" in metafunc.fixturenames:
        metafunc.parametrize("scene_seed", SWEEP_SCENES if metafunc.config.getoption("--sweep") else CI_SCENES)


# --- the scenes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Formations:
    """A generated scene, and which of its hostiles fly alone and which with a companion (hostile -> companion)."""

    scenario: Scenario
    lone: tuple[str, ...]
    companions: dict[str, str]


@cache
def formation_scene(seed: int) -> Formations:
    """The escorts scene's ground with new traffic, drawn from `seed` alone: 3-6 hostile aircraft or missiles
    inbound on an asset from 20-45 km (random bearing, 150-300 m/s, starting 150-9000 m high), each on a straight
    line through a point over the asset's inner quarter at 100 m to a quarter of its radius high, so that fire
    control's threat evaluation (distances in 3-D) rates it a threat whatever its height; 1-4 of them (never all)
    with a companion on the same velocity 250-1500 m away (beside, ahead or behind at the same height, above,
    below, or in a random direction; never lower than LOWEST_M), friendly (a distinct friendly code of the scene)
    or neutral (its neutral code); 0-2 lone friendlies or neutrals crossing the area, level. Every friendly and
    neutral squawks its code: one that does not is a hostile to this model. 40-60 s long: no hostile reaches its
    asset in that time."""
    base = Scenario.load("safety/escorts")
    rng = np.random.default_rng(seed)
    friendly_codes = [int(c) for c in rng.permutation(sorted(base.friendly_codes))]
    neutral_code = min(base.neutral_codes)
    duration_s = float(rng.integers(40, 61))

    def protected(name: str, position: np.ndarray, velocity: np.ndarray) -> TargetSpec:
        # friendly while a friendly code is left, neutral otherwise (and half the time anyway)
        friendly = bool(friendly_codes) and rng.random() < 0.5
        code = friendly_codes.pop() if friendly else neutral_code
        allegiance = "friendly" if friendly else "neutral"
        return TargetSpec(name=f"{name}-{allegiance}", allegiance=allegiance, kind="aircraft",
                          position=_rounded(position), velocity=_rounded(velocity), mode3a=code)

    n_hostiles = int(rng.integers(3, 7))
    n_escorted = int(rng.integers(1, min(4, n_hostiles - 1) + 1))
    escorted = set(rng.choice(n_hostiles, size=n_escorted, replace=False).tolist())
    targets: list[TargetSpec] = []
    lone: list[str] = []
    companions: dict[str, str] = {}
    for i in range(n_hostiles):
        asset = base.assets[int(rng.integers(len(base.assets)))]
        bearing = rng.uniform(0.0, 2 * math.pi)
        distance = rng.uniform(20_000.0, 45_000.0)
        centre = np.array(asset.position[:2])
        start = np.array([*(centre + distance * _unit(bearing)), rng.uniform(150.0, 9_000.0)])
        aim = np.array([*(centre + rng.uniform(0.0, asset.radius_m / 4) * _unit(rng.uniform(0.0, 2 * math.pi))),
                        rng.uniform(100.0, asset.radius_m / 4)])
        velocity = (aim - start) / np.linalg.norm(aim - start) * rng.uniform(150.0, 300.0)
        kind = "missile" if rng.random() < 0.3 else "aircraft"
        hostile = TargetSpec(name=f"{kind}-{i}", allegiance="hostile", kind=kind, position=_rounded(start),
                             velocity=_rounded(velocity))
        targets.append(hostile)
        if i not in escorted:
            lone.append(hostile.name)
            continue
        geometry = str(rng.choice(GEOMETRIES))
        offset = _offset(rng, geometry, velocity, rng.uniform(250.0, 1_500.0))
        if start[2] + offset[2] + velocity[2] * duration_s < LOWEST_M:  # it would end too low: mirror it upward
            offset[2] = -offset[2]
        companion = protected(f"{hostile.name}-{geometry}", start + offset, velocity)
        targets.append(companion)
        companions[hostile.name] = companion.name
    for j in range(int(rng.integers(0, 3))):
        # across the defended area: through a point within 15 km of the airbase, somewhere mid-scene
        meet = 15_000.0 * math.sqrt(rng.random()) * _unit(rng.uniform(0.0, 2 * math.pi))
        velocity = np.array([*(rng.uniform(150.0, 300.0) * _unit(rng.uniform(0.0, 2 * math.pi))), 0.0])
        start = np.array([*meet, rng.uniform(500.0, 11_000.0)]) - velocity * rng.uniform(0.3, 0.8) * duration_s
        targets.append(protected(f"crossing-{j}", start, velocity))
    scenario = replace(base, name=f"formations-{seed}", seed=seed, duration_s=duration_s, targets=tuple(targets),
                       description=f"{n_hostiles} hostiles, {n_escorted} in formation with a friendly or neutral",
                       source=f"<formation_scene({seed})>")
    return Formations(scenario, tuple(lone), companions)


def _unit(angle: float) -> np.ndarray:
    """The horizontal unit vector at `angle` clockwise from north."""
    return np.array([math.sin(angle), math.cos(angle)])


def _rounded(v: np.ndarray) -> tuple[float, float, float]:
    return (round(float(v[0]), 1), round(float(v[1]), 1), round(float(v[2]), 1))


def _offset(rng: np.random.Generator, geometry: str, velocity: np.ndarray, distance: float) -> np.ndarray:
    """A companion's place relative to its hostile: beside, ahead and behind are level."""
    ahead = np.array([velocity[0], velocity[1], 0.0]) / math.hypot(velocity[0], velocity[1])
    if geometry == "random":
        d = rng.normal(size=3)
    else:
        d = {"beside": np.array([-ahead[1], ahead[0], 0.0]) * rng.choice([-1.0, 1.0]), "ahead": ahead,
             "behind": -ahead, "above": np.array([0.0, 0.0, 1.0]), "below": np.array([0.0, 0.0, -1.0])}[geometry]
    return np.asarray(distance * d / np.linalg.norm(d))


# --- which lone hostiles fire control could reach -------------------------------------------------------------


@cache
def reachable(seed: int) -> dict[str, float]:
    """Each lone hostile fire control could engage, and when its first stretch of REACH_S seconds began: on truth,
    once a second, by the doctrine's own model (the reference fire control, protection on), with every friendly
    and neutral protected and every position uncertain by REACH_SIGMA_M."""
    from hil.ext.reference.firecontrol import evaluate

    scene = formation_scene(seed)
    sc = scene.scenario
    truth = sc.truth()
    allegiance = np.array([t.allegiance for t in sc.targets])
    rows = {i: t.name for i, t in enumerate(sc.targets) if t.name in scene.lone}
    n_l = len(sc.launchers)
    streak = dict.fromkeys(rows, 0)
    found: dict[str, float] = {}
    for t_s in np.arange(SETTLE_S, sc.duration_s - LAST_S + 1e-9, 1.0):
        snap = truth.at(float(t_s))
        n = len(snap.index)
        side = allegiance[snap.index]
        e = evaluate(FireControlConfig(), sc.assets, sc.launchers, sc.no_fire_zones, snap.state,
                     np.full(n, 3 * REACH_SIGMA_M**2), np.ones(n, bool), side == "friendly", np.zeros(n, int),
                     np.zeros(n, int), np.ones(n_l, bool), np.ones(n_l, bool),
                     np.array([la.rounds for la in sc.launchers]), np.zeros(n_l), neutral=side == "neutral")
        feasible = dict(zip(snap.index.tolist(), (e.pair_code == 0).any(axis=1).tolist(), strict=True))
        for row, name in rows.items():
            streak[row] = streak[row] + 1 if feasible.get(row, False) else 0
            if streak[row] == REACH_S and name not in found:
                found[name] = float(t_s) - REACH_S + 1
    return found


def run_formation(seed: int, protect: bool = True, out_dir: Path | None = None) -> dict[str, Any]:
    """One generated scene in virtual time on the mock rig (a run folder only when out_dir is given)."""
    return run_chain(RunOptions(scenario=formation_scene(seed).scenario, rig=Rig.load(), seed=seed,
                                time_mode="virtual", out_dir=out_dir, report=False, record=False,
                                fire_control_overrides={} if protect else PROTECTION_OFF))


# --- the tests ----------------------------------------------------------------------------------------------------


def test_generated_scenes_are_formations_and_fly() -> None:
    """Every scene the sweep runs: the same from the same seed, the counts and codes as promised, each companion
    where it was put for the whole scene, every hostile closing on an asset."""
    base = Scenario.load("safety/escorts")
    for seed in SWEEP_SCENES:
        scene = formation_scene(seed)
        sc = scene.scenario
        assert formation_scene.__wrapped__(seed) == scene
        assert (sc.radars, sc.launchers, sc.assets, sc.no_fire_zones) == (base.radars, base.launchers, base.assets,
                                                                            base.no_fire_zones)
        hostiles = [t for t in sc.targets if t.allegiance == "hostile"]
        assert 3 <= len(hostiles) <= 6 and 1 <= len(scene.companions) <= 4 and scene.lone
        assert 40.0 <= sc.duration_s <= 60.0
        protected = [t for t in sc.targets if t.allegiance != "hostile"]
        assert all(t.mode3a in (sc.friendly_codes if t.allegiance == "friendly" else sc.neutral_codes)
                   for t in protected)
        friendly_codes = [t.mode3a for t in protected if t.allegiance == "friendly"]
        assert len(set(friendly_codes)) == len(friendly_codes)
        assert len(protected) - len(scene.companions) <= 2
        truth = sc.truth()
        row = {t.name: i for i, t in enumerate(sc.targets)}
        for hostile, companion in scene.companions.items():
            gap = np.linalg.norm(truth.states[row[hostile], :, :3] - truth.states[row[companion], :, :3], axis=1)
            assert gap.min() >= 249.0 and gap.max() <= 1501.0 and np.ptp(gap) < 1.0, (seed, hostile, companion)
            assert truth.states[row[companion], :, 2].min() >= LOWEST_M - 1.0
        for t in hostiles:  # closing on an asset, on a line through the inner half of its radius, never there
            v = np.array(t.velocity) / np.linalg.norm(t.velocity)
            r = [np.array(a.position) - t.position for a in sc.assets]
            assert any(r_a @ v > 0 and np.linalg.norm(np.cross(r_a, v)) <= a.radius_m / 2
                       for r_a, a in zip(r, sc.assets, strict=True)), (seed, t.name)
            assert truth.ended_by[row[t.name]] == "end" and truth.states[row[t.name], :, 2].min() >= 100.0


def test_no_round_takes_a_friendly_or_neutral_in_any_formation(scene_seed: int) -> None:
    summary = run_formation(scene_seed)
    assert_safe(summary)
    # not safe by not firing: every lone hostile fire control could reach was engaged
    rows = {e["target"]: e for e in summary["engagements"]}
    spared = {name: (f"reachable from {t_s:.0f} s", rows[name]["refusal_reasons"], rows[name]["result"])
              for name, t_s in reachable(scene_seed).items() if not rows[name]["engaged"]}
    assert not spared, f"formations seed {scene_seed}: lone hostiles in reach left alone: {spared}"


def test_with_protection_off_some_formation_shows_fratricide() -> None:
    """CI's scenes with fire control's protection off: the seekers take friendlies or neutrals flying with the
    hostiles. If this ever stops happening, the test above proves nothing."""
    taken = 0
    for seed in CI_SCENES:
        plant = run_formation(seed, protect=False)["plant"]
        taken += plant["friendly_acquired"] + plant["neutral_acquired"]
    assert taken > 0, f"no friendly or neutral taken in formations seeds {CI_SCENES} with protection off"
