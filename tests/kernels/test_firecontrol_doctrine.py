"""Doctrine at kernel level: a small raid flown against the kernel, shoot-look-shoot against salvo.

The plant here is deliberately tiny (straight-line threats, perfect tracks, an interceptor that arrives at
the predicted point at the predicted time and kills with the kernel's own pk); the full engagement model
lives in hil/plant/engagement.py. What it shows is the doctrine's effect: looking before shooting again spends
fewer interceptors for the same defence, because a second round only goes where the first one missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from hil.ext.firecontrol import FireControl
from hil.ext.firecontrol_types import AssetSpec, Doctrine, FireControlConfig, LauncherSpec

STEP_S = 0.5
RELOAD_S = 2.0


@dataclass
class Outcome:
    interceptors: int = 0
    kills: int = 0
    leaks: int = 0
    friendly_shots: int = 0
    shots_per_threat: list[int] = field(default_factory=list)


def fly_raid(doctrine: Doctrine, seed: int, n_threats: int = 8) -> Outcome:
    rng = np.random.default_rng(seed)
    asset = AssetSpec("base", (0.0, 0.0, 0.0), radius_m=2000.0)
    launchers = [LauncherSpec(f"L{k}", (x, 0.0, 0.0), interceptor_speed_mps=1200.0, launch_delay_s=1.0,
                              slew_rate_dps=60.0, max_range_m=40_000.0, max_tof_s=60.0, channels=4, pk=0.8)
                 for k, x in enumerate((-3000.0, 3000.0))]
    fc = FireControl(FireControlConfig(doctrine=doctrine, salvo_size=2), [asset], launchers, [])
    # threats from all round, 70-90 km out, heading for the asset, one friendly among them
    n = n_threats + 1
    bearing = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(70_000, 90_000, n)
    pos = np.stack([dist * np.sin(bearing), dist * np.cos(bearing), rng.uniform(300, 1500, n)], axis=1)
    speed = rng.uniform(200, 300, n)
    vel = -pos / np.linalg.norm(pos, axis=1, keepdims=True) * speed[:, None]
    vel[:, 2] = 0.0
    friendly = np.zeros(n, bool)
    friendly[-1] = True
    alive = np.ones(n, bool)
    shots = np.zeros(n, np.int32)
    flying: list[tuple[float, int, float]] = []  # (arrival time, target, pk)
    rounds = np.full(2, 40, np.int32)
    ready_at = np.zeros(2)
    out = Outcome()
    t = 0.0
    while alive[:n_threats].any() and t < 600.0:
        for arrival, target, pk in [f for f in flying if f[0] <= t]:  # look: kill assessment at arrival
            flying.remove((arrival, target, pk))
            if alive[target] and rng.random() < pk:
                alive[target] = False
                out.kills += 1
        now = pos + vel * t
        for i in np.nonzero(alive)[0]:
            if np.linalg.norm(now[i]) <= asset.radius_m:  # reached its asset
                alive[i] = False
                out.leaks += int(not friendly[i])
        idx = np.nonzero(alive)[0]
        in_flight = np.array([sum(1 for f in flying if f[1] == i) for i in idx], np.int32)
        state = np.concatenate([now[idx], vel[idx]], axis=1)
        res = fc.evaluate(t, idx.astype(np.int64), state, np.full(len(idx), 900.0), np.ones(len(idx), bool),
                          friendly[idx], in_flight, shots[idx], np.ones(2, bool), ready_at <= t, rounds,
                          np.maximum(ready_at - t, 0.0))
        a = res.assignments
        for k in range(len(a.track_index)):
            target, li = int(idx[a.track_index[k]]), int(a.launcher_index[k])
            out.friendly_shots += int(friendly[target])
            flying.append((t + float(res.pair_t_s[a.track_index[k], li]), target, float(a.pk[k])))
            shots[target] += 1
            rounds[li] -= 1
            ready_at[li] = t + RELOAD_S
            out.interceptors += 1
        t += STEP_S
    out.shots_per_threat = shots[:n_threats].tolist()
    return out


@pytest.mark.parametrize("seed", range(3))
def test_shoot_look_shoot_saves_interceptors_against_salvo(seed: int) -> None:
    sls = fly_raid(Doctrine.SHOOT_LOOK_SHOOT, seed)
    salvo = fly_raid(Doctrine.SALVO, seed)
    assert sls.friendly_shots == salvo.friendly_shots == 0
    # both doctrines defend: every threat was engaged and the raid was stopped
    assert sls.leaks == 0 and salvo.leaks == 0
    assert min(sls.shots_per_threat) >= 1 and min(salvo.shots_per_threat) >= 2
    # ...but looking first spends fewer interceptors, and re-engages where the first one missed
    assert sls.interceptors < salvo.interceptors
    assert sls.interceptors >= sls.kills
    assert sls.interceptors < 2 * len(sls.shots_per_threat)
