"""Interceptor fly-out: a good aim point kills, a false track always misses, a kill ends truth."""

from __future__ import annotations

import numpy as np

from hil.engagement import EngagementModel
from hil.scenario import LauncherSite, RadarSpec, Scenario, TargetSpec


def scene(pk: float = 1.0) -> Scenario:
    return Scenario(
        name="e", duration_s=120, seed=1,
        targets=(TargetSpec("a", "hostile", "aircraft", (30_000.0, 5_000.0, 5_000.0), (-250.0, 0.0, 0.0)),),
        radars=(RadarSpec("r", (0.0, 0.0, 0.0)),),
        launchers=(LauncherSite("l", (0.0, 0.0, 0.0), interceptor_speed_mps=1000.0, launch_delay_s=1.0, pk=pk),),
    )


def intercept(p: np.ndarray, v: np.ndarray, speed: float, delay: float) -> np.ndarray:
    t = np.linspace(delay, 80.0, 200_000)
    gap = np.abs(np.linalg.norm(p + v * t[:, None], axis=1) - speed * (t - delay))
    return np.asarray(p + v * t[int(np.argmin(gap))])


def fly(model: EngagementModel, until: float) -> list:
    events = []
    t = 0.0
    while t < until and model.flying:
        t += 0.1
        events += model.step(t)
    return events


def test_interceptor_aimed_at_the_intercept_point_kills_and_truth_ends() -> None:
    sc = scene()
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    aim = intercept(np.array([30_000.0, 5_000.0, 5_000.0]), np.array([-250.0, 0.0, 0.0]), 1000.0, 1.0)
    model.launch(0.0, 0, track_id=7, aim=aim)
    (event,) = fly(model, 80.0)
    assert event.kind == "kill" and event.interceptor.miss_distance_m <= 20.0
    assert truth.ended_by[0] == "killed" and 0 not in truth.at(event.t_s + 0.1).index


def test_a_false_track_far_from_any_target_is_a_miss() -> None:
    sc = scene()
    model = EngagementModel(sc.truth(), sc.launchers, seed=1)
    m = model.launch(0.0, 0, track_id=9, aim=np.array([-20_000.0, -20_000.0, 3_000.0]))
    assert m.target == -1
    (event,) = fly(model, 80.0)
    assert event.kind == "miss"


def test_pk_zero_never_kills() -> None:
    sc = scene(pk=0.0)
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    model.launch(0.0, 0, 1, intercept(np.array([30_000.0, 5_000.0, 5_000.0]), np.array([-250.0, 0, 0]), 1000.0, 1.0))
    (event,) = fly(model, 80.0)
    assert event.kind == "miss" and truth.ended_by[0] == "end"
