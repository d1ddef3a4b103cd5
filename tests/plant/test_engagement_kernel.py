"""The compiled fly-out (hil.ext.engagement) against the plain Python reference (EngagementModel(compiled=False)):
the same rounds, launched and stepped alike, end the same way at the same times with the same numbers, to the last
bit, and fly the same way at every step in between; the kill draws and the truth they end agree too."""

from __future__ import annotations

import ast
import copy
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hil.ext.engagement
from hil.ext.firecontrol_types import LauncherSpec, NoFireZone
from hil.plant.engagement import EngagementModel, Interceptor
from hil.scenario import AssetSpec, Manoeuvre, RadarSpec, Scenario, TargetSpec, Truth
from tests.helpers import REPO

T = TypeVar("T")


class Source(Protocol):
    """Where an engagement's random numbers come from: hypothesis (it shrinks) or a seeded numpy generator."""

    def uniform(self, lo: float, hi: float) -> float: ...
    def integer(self, lo: int, hi: int) -> int: ...  # lo <= n <= hi
    def choice(self, options: Sequence[T]) -> T: ...


@dataclass
class Drawn:
    data: st.DataObject

    def uniform(self, lo: float, hi: float) -> float:
        return self.data.draw(st.floats(lo, hi))

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(options))


@dataclass
class Seeded:
    rng: np.random.Generator

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]


@dataclass
class Engagement:
    scenario: Scenario
    truth: Truth  # as it starts: each model flies against its own copy (a kill ends an object's truth)
    launches: list[tuple[float, int, tuple[float, float, float]]]  # (t_s, launcher, aim): in launch order
    cadence: tuple[float, ...]  # the step() calls' strides, cycled
    until_s: float


DURATION_S = 40.0


def engagement(r: Source) -> Engagement:
    """A small random scene: a few objects of any allegiance 6-25 km out (some turning, some homing on an asset,
    some entering truth late, between samples), one or two launchers with random envelopes and seekers, a
    no-fire zone now and then, and rounds aimed near where an object will be (or at nothing), stepped at an
    uneven cadence."""
    asset = AssetSpec("asset", (0.0, 0.0, 0.0), radius_m=2_000.0)
    targets = []
    for i in range(r.integer(1, 4)):
        rng_m, bearing, heading = r.uniform(6_000.0, 25_000.0), r.uniform(0.0, 2 * math.pi), r.uniform(0.0, 2 * math.pi)
        speed = r.uniform(40.0, 320.0)
        homing = r.integer(0, 3) == 0
        turn = r.choice([0.0, 0.0, -4.0, 3.0, 7.0])
        targets.append(TargetSpec(
            f"o{i}", r.choice(["hostile", "hostile", "friendly", "neutral"]), "aircraft",
            (rng_m * math.sin(bearing), rng_m * math.cos(bearing), r.uniform(300.0, 9_000.0)),
            (speed * math.sin(heading), speed * math.cos(heading), r.choice([0.0, 0.0, -20.0, 15.0])),
            start_s=r.choice([0.0, 0.0, round(r.uniform(0.0, 15.0), 3)]),
            manoeuvres=(Manoeuvre(r.uniform(0.0, 20.0), r.uniform(2.0, 15.0), turn),) if turn else (),
            home_on="asset" if homing else None))
    launchers = tuple(LauncherSpec(
        f"l{j}", (r.uniform(-3_000.0, 3_000.0), r.uniform(-3_000.0, 3_000.0), r.uniform(0.0, 200.0)),
        interceptor_speed_mps=r.uniform(500.0, 1_500.0), interceptor_max_g=r.uniform(2.0, 40.0),
        launch_delay_s=r.choice([0.0, 0.5, 1.0, 1.37]), max_tof_s=r.choice([r.uniform(6.0, 45.0)] * 7 + [0.4]),
        lethal_radius_m=r.uniform(2.0, 40.0), pk=r.choice([0.0, 0.4, 0.85, 1.0]),
        seeker_range_m=r.uniform(800.0, 9_000.0), seeker_half_angle_deg=r.uniform(3.0, 45.0),
    ) for j in range(r.integer(1, 2)))
    zones = tuple(NoFireZone(f"z{k}", (r.uniform(-20_000.0, 20_000.0), r.uniform(-20_000.0, 20_000.0)),
                             r.uniform(500.0, 8_000.0), z_max_m=r.choice([1e9, 4_000.0]))
                  for k in range(r.integer(0, 2)))
    scenario = Scenario(name="k", duration_s=DURATION_S, seed=r.integer(1, 9), targets=tuple(targets),
                        radars=(RadarSpec("r", (0.0, 0.0, 0.0)),), launchers=launchers, assets=(asset,),
                        no_fire_zones=zones)
    truth = scenario.truth()
    launches = []
    for _ in range(r.integer(1, 6)):
        t_launch = round(r.uniform(0.0, 25.0), r.choice([1, 3, 6]))
        row, lead = r.integer(0, len(targets) - 1), r.uniform(0.0, 25.0)
        point = truth.state_of(row, t_launch + lead)[:3]
        if r.integer(0, 4) == 0 or not np.isfinite(point).all():  # a false track: aimed where nothing is
            point = np.array([r.uniform(-25_000.0, 25_000.0), r.uniform(-25_000.0, 25_000.0), 3_000.0])
        spread = r.choice([0.0, 50.0, 600.0, 2_500.0])
        aim = (float(point[0]) + r.uniform(-spread, spread), float(point[1]) + r.uniform(-spread, spread),
               float(point[2]) + r.uniform(-spread, spread) / 4)
        launches.append((t_launch, r.integer(0, len(launchers) - 1), aim))
    launches.sort(key=lambda x: x[0])
    cadence = r.choice([(0.005,), (0.01,), (0.1,), (0.0137, 0.005, 0.25), (0.004, 0.021)])
    return Engagement(scenario, truth, launches, cadence, DURATION_S)


def exact(x: Any) -> str:
    """Numbers compared to the bit (repr of a float round-trips; -0.0, inf and nan are kept apart)."""
    return repr(x)


def flight(m: Interceptor) -> str:
    return exact((m.ident, m.pos, m.vel, m.miss_distance_m, m.passed_aim, m.past_aim_m, m.closing, m.acquired))


def ending(m: Interceptor) -> str:
    return exact((m.ident, m.result, m.end_s, m.miss_distance_m, m.detonation_enu, m.acquired,
                  m.acquired_allegiance, m.acquire_s, m.acquire_enu, m.acquire_boresight, m.basket_at_acquisition,
                  m.no_fire_zone, m.pos, m.vel))


def fly_both(e: Engagement) -> list[Interceptor]:
    """The engagement flown by the kernel and by the reference side by side, compared after every step() call
    (what a caller reads off a round in flight included); the kernel's rounds at the end."""
    models = [EngagementModel(copy.deepcopy(e.truth), e.scenario.launchers, e.scenario.seed, e.scenario.no_fire_zones,
                              compiled=compiled) for compiled in (True, False)]
    launches = list(e.launches)
    t, k = 0.0, 0
    while t < e.until_s:
        t = round(t + e.cadence[k % len(e.cadence)], 9)
        k += 1
        while launches and launches[0][0] <= t:
            t_launch, launcher, aim = launches.pop(0)
            for model in models:
                model.launch(t_launch, launcher, 0, aim, seq=k)
        events = [[exact((ev.t_s, ev.kind, ev.interceptor.ident)) for ev in model.step(t)] for model in models]
        assert events[0] == events[1], f"events at {t}"
        assert [flight(m) for m in models[0].flying] == [flight(m) for m in models[1].flying], f"in flight at {t}"
        assert exact(models[0].t_s) == exact(models[1].t_s)
    compiled, reference = models
    assert [ending(m) for m in compiled.finished] == [ending(m) for m in reference.finished]
    assert [flight(m) for m in compiled.flying] == [flight(m) for m in reference.flying]
    assert compiled.counts() == reference.counts()
    assert exact(compiled.truth.end_s.tolist()) == exact(reference.truth.end_s.tolist())
    assert compiled.truth.ended_by == reference.truth.ended_by
    return compiled.finished + compiled.flying


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_kernel_flies_every_round_as_the_reference_does(data: st.DataObject) -> None:
    fly_both(engagement(Drawn(data)))


def cause(m: Interceptor) -> str:
    """How a round ended, in the words of the model's rules."""
    if m.result != "self_destruct":
        return m.result
    if m.acquired >= 0:
        return "lost lock"
    return "max_tof" if math.isclose(m.end_s, m.launch_s + m.max_tof_s) else "window closed"


def test_random_engagements_end_every_way_and_agree() -> None:
    """The generator behind the property above reaches every ending (so agreeing means something), here on
    seeded draws."""
    causes: Counter[str] = Counter()
    for seed in range(20):
        causes.update(cause(m) for m in fly_both(engagement(Seeded(np.random.default_rng(seed)))))
    assert {"killed", "missed", "lost lock", "max_tof", "window closed"} <= set(causes), causes


def test_the_raid_flies_alike_with_late_entries_and_salvos() -> None:
    """The shipped raid (ten objects), twelve rounds at random times near random objects, two at a time on one
    object now and then, half the objects entering truth late: kernel and reference agree all through."""
    raid = Scenario.load("raid")
    rng = np.random.default_rng(11)
    late = dataclasses.replace(raid, targets=tuple(
        dataclasses.replace(t, start_s=round(float(rng.uniform(0.0, 30.0)), 3)) if i % 2 else t
        for i, t in enumerate(raid.targets)))
    rounds: list[Interceptor] = []
    for scenario in (raid, late):
        truth = scenario.truth()
        launches = []
        for _ in range(12):
            t_launch = float(rng.uniform(0.0, 35.0))
            live = truth.alive(t_launch)
            aim = truth.state_of(int(rng.choice(live)), t_launch + 8.0)[:3] + rng.normal(0.0, 300.0, 3)
            if np.isfinite(aim).all():
                for _ in range(1 + (rng.random() < 0.3)):
                    launches.append((t_launch, int(rng.integers(len(scenario.launchers))),
                                     (float(aim[0]), float(aim[1]), float(aim[2]))))
        launches.sort(key=lambda x: x[0])
        rounds += fly_both(Engagement(scenario, truth, launches, (0.005,), scenario.duration_s))
    assert sum(1 for m in rounds if m.acquired >= 0) >= 4  # the seekers had something to find


# --- the kernel's face ------------------------------------------------------------------------------------


def test_the_stub_names_what_the_compiled_kernel_has() -> None:
    tree = ast.parse((REPO / "ext" / "engagement.pyi").read_text())
    top = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)} | \
          {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    assert top == {n for n in vars(hil.ext.engagement) if not n.startswith("_")}
    (flyout,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Flyout")
    members = {n.name for n in flyout.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")} | \
              {n.target.id for n in flyout.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    assert members == {n for n in dir(hil.ext.engagement.Flyout) if not n.startswith("_")}


def test_the_kernel_refuses_to_fly_on_with_an_event_unanswered() -> None:
    sc = engagement(Seeded(np.random.default_rng(5))).scenario
    truth = sc.truth()
    fly = hil.ext.engagement.Flyout(truth.states, truth.start_s, truth.end_s, 0.05, 0.01, 4.0)
    fly.add(0.0, 0.0, 0.05, 1_000.0, 300.0, 5_000.0, 0.3, (0.0, 0.0, 0.0), (1_000.0, 0.0, 0.0), (9e4, 0.0, 0.0))
    assert fly.advance(1.0) == hil.ext.engagement.SELF_DESTRUCT and fly.current == 0  # max_tof_s
    with pytest.raises(RuntimeError):
        fly.advance(1.0)
    fly.remove(0)
    assert fly.advance(1.0) == hil.ext.engagement.FLOWN and fly.t_s == 1.0 and len(fly) == 0
    with pytest.raises(RuntimeError):
        fly.searched(0, 0.0)
