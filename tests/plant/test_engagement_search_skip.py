"""A round's seeker skips the steps where nothing can be in its reach; it must acquire, kill and miss exactly as a
seeker searching at every step does, also when targets enter truth between the precomputed samples."""

from __future__ import annotations

import dataclasses

import numpy as np

from hil.plant.engagement import EngagementModel, Interceptor
from hil.scenario import Scenario


class EveryStepSearch(EngagementModel):
    """The model without the skip: a round that is searching looks at every step."""

    def _nothing_in_reach_until(self, m: Interceptor, t_s: float, dist: np.ndarray) -> float:
        return t_s


def fly(model_class: type[EngagementModel], scenario: Scenario, seed: int) -> list[dict[str, object]]:
    """Ten rounds at random times toward where a random live target will be 8 s later, up to 900 m off."""
    truth = scenario.truth()
    model = model_class(truth, scenario.launchers, seed, scenario.no_fire_zones)
    rng = np.random.default_rng(seed)
    launches = sorted(rng.uniform(0.0, scenario.duration_s * 0.7, 10).tolist())
    t = 0.0
    while t < scenario.duration_s:
        t = round(t + 0.005, 6)
        while launches and launches[0] <= t:
            t_launch = launches.pop(0)
            live = truth.alive(t_launch)
            if len(live):
                aim = truth.state_of(int(rng.choice(live)), t_launch + 8.0)[:3] + rng.normal(0.0, 300.0, 3)
                if np.isfinite(aim).all():
                    model.launch(t_launch, int(rng.integers(len(scenario.launchers))), 0, aim)
        model.step(t)
    return [m.record() for m in model.finished + model.flying] + [{"end_s": truth.end_s.tolist()}]


def test_rounds_end_as_with_a_search_at_every_step() -> None:
    raid = Scenario.load("raid")
    rng = np.random.default_rng(3)
    late = dataclasses.replace(raid, targets=tuple(
        dataclasses.replace(t, start_s=float(rng.uniform(0.0, 30.0))) if i % 2 else t
        for i, t in enumerate(raid.targets)))
    acquired = 0
    for scenario, seed in ((raid, 1), (raid, 2), (late, 3), (late, 4)):
        skipping, every = fly(EngagementModel, scenario, seed), fly(EveryStepSearch, scenario, seed)
        assert skipping == every
        acquired += sum(1 for r in skipping if r.get("acquired", -1) != -1)
    assert acquired >= 5  # the seekers had something to find


def test_a_target_appearing_in_front_of_a_searching_round_is_taken_when_it_appears() -> None:
    """The only other object is far away, so the round may skip long searches, but not past the pop-up's start
    (between two truth samples: it has no position until the next one)."""
    raid = Scenario.load("raid")
    popup = dataclasses.replace(raid.targets[0], name="pop-up", position=(0.0, 20_000.0, 3_000.0),
                                velocity=(0.0, -250.0, 0.0), start_s=20.013)
    scenario = dataclasses.replace(raid, targets=(raid.targets[1], popup))
    records = []
    for model_class in (EngagementModel, EveryStepSearch):
        model = model_class(scenario.truth(), scenario.launchers, 1, scenario.no_fire_zones)
        m = model.launch(12.9, 0, 0, (0.0, 20_000.0 - 250.0 * (21.0 - 20.013), 3_000.0))
        for k in range(1, 6_001):
            model.step(k * 0.005)
        records.append(m.record())
    assert records[0] == records[1]
    assert records[0]["acquired"] == 1 and 20.013 <= records[0]["acquire_s"] <= 20.06
