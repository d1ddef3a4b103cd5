"""Property tests: whatever the input, the fire-control kernel never fires where it must not."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hil.ext.firecontrol import FireControl
from hil.ext.reference import firecontrol as ref
from hil.fire_control import AssetSpec, Doctrine, FireControlConfig, LauncherSpec, NoFireZone, RefusalReason

coord = st.floats(-60_000, 60_000, allow_nan=False)
height = st.floats(-500, 25_000, allow_nan=False)
speed = st.floats(-1500, 1500, allow_nan=False)


def often(usual: Any, other: Any) -> Any:
    """The usual value most of the time, so that most examples have something to fire at."""
    return st.one_of(st.just(usual), st.just(usual), other)


mostly = often(True, st.booleans())


@st.composite
def launchers(draw: Any) -> LauncherSpec:
    lo = draw(often(0.0, st.floats(0, 20_000)))
    alt_lo = draw(often(0.0, st.floats(-100, 5000)))
    return LauncherSpec(
        name=f"L{draw(st.integers(0, 10**6))}", position=(draw(coord), draw(coord), draw(st.floats(0, 500))),
        interceptor_speed_mps=draw(st.floats(100, 2000)), launch_delay_s=draw(st.floats(0, 5)),
        slew_rate_dps=draw(st.floats(0, 120)), min_range_m=lo,
        max_range_m=lo + draw(often(100_000.0, st.floats(1, 80_000))),
        min_alt_m=alt_lo, max_alt_m=alt_lo + draw(often(30_000.0, st.floats(0, 25_000))),
        max_tof_s=draw(often(120.0, st.floats(0.1, 120))),
        sector_centre_deg=draw(st.floats(0, 360)), sector_width_deg=draw(often(360.0, st.floats(0, 360))),
        channels=draw(often(2, st.integers(0, 4))), pk=draw(often(0.9, st.floats(0, 1))))


@st.composite
def zones(draw: Any) -> NoFireZone:
    z0 = draw(st.floats(-1000, 10_000))
    return NoFireZone("z", (draw(coord), draw(coord)), draw(st.floats(10, 15_000)), z0, z0 + draw(st.floats(0, 20_000)))


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(0, 12))
    ls = draw(st.lists(launchers(), min_size=0, max_size=5))
    n_l = len(ls)
    assets = draw(st.lists(st.builds(AssetSpec, st.just("a"), st.tuples(coord, coord, st.just(0.0)),
                                     st.floats(100, 20_000), st.floats(0, 5)), max_size=3))
    rows = []
    for _ in range(n):
        pos = np.array([draw(coord), draw(coord), draw(height)])
        vel = np.array([draw(speed), draw(speed), draw(st.floats(-300, 300))])
        if assets and draw(mostly):  # most tracks head for an asset
            aim = np.array(assets[0].position) - pos
            vel = aim / max(float(np.linalg.norm(aim)), 1.0) * draw(st.floats(50, 1500))
        rows.append([*pos, *vel])
    state = np.array(rows, dtype=float).reshape(n, 6)
    # Safety flags and broken numbers, set with one drawn rate per example (0 in a good share of them, so that
    # most examples have something to fire at and the checks below have assignments to look at)
    hazard = draw(st.sampled_from([0.0, 0.0, 0.05, 0.2, 0.6]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def flag(k: int) -> np.ndarray:
        return rng.random(k) < hazard

    def count(k: int, hi: int) -> np.ndarray:
        return np.where(flag(k), rng.integers(1, hi + 1, k), 0).astype(np.int32)

    broken = np.array([math.nan, math.inf, -math.inf, 1e300])
    state = np.where(rng.random(state.shape) < hazard / 10, rng.choice(broken, state.shape), state)
    pos_var = np.where(flag(n), rng.choice([0.0, 1e7, math.nan, -1.0, math.inf], n), rng.uniform(10, 1e5, n))
    cfg = FireControlConfig(doctrine=draw(st.sampled_from(Doctrine)), salvo_size=draw(st.integers(1, 3)),
                            max_shots_per_track=draw(st.integers(1, 4)), launches_per_launcher=draw(st.integers(1, 3)),
                            min_pk=draw(often(0.05, st.floats(0, 1))),
                            solver=draw(st.sampled_from(["auto", "greedy", "exact"])))
    if cfg.doctrine == Doctrine.SHOOT_LOOK_SHOOT and draw(st.booleans()):
        cfg = FireControlConfig(doctrine=cfg.doctrine, min_pk=cfg.min_pk, solver="lap")
    return dict(
        cfg=cfg, launchers=ls, assets=assets, zones=draw(st.lists(zones(), max_size=3)), state=state,
        pos_var=pos_var, confirmed=~flag(n), friendly=flag(n), in_flight=count(n, 2), shots=count(n, 5),
        armed=~flag(n_l), ready=~flag(n_l), rounds=np.where(flag(n_l), rng.integers(-1, 1, n_l), 4).astype(np.int32),
        reload=np.where(flag(n_l), rng.choice([1.0, math.nan], n_l), 0.0), busy=count(n_l, 3),
    )


def inside(p: np.ndarray, z: NoFireZone) -> bool:
    """Inside by more than rounding."""
    d = math.hypot(p[0] - z.centre[0], p[1] - z.centre[1])
    return d < z.radius_m * (1 - 1e-9) and z.z_min_m + 1e-6 < p[2] < z.z_max_m - 1e-6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_never_fires_where_it_must_not(c: dict[str, Any]) -> None:
    fc = FireControl(c["cfg"], c["assets"], c["launchers"], c["zones"])
    n = len(c["state"])
    res = fc.evaluate(3.0, np.arange(n), c["state"], c["pos_var"], c["confirmed"], c["friendly"], c["in_flight"],
                      c["shots"], c["armed"], c["ready"], c["rounds"], c["reload"], channels_in_use=c["busy"])
    event(f"fired: {len(res.assignments.track_index) > 0}")
    check_safe(c, res)


@pytest.mark.parametrize("seed", range(20))
def test_never_fires_where_it_must_not_in_busy_scenes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sc = ref.random_scene(rng, 80, 8, n_zones=4, p_flags=0.2)
    cfg = FireControlConfig(doctrine=Doctrine(seed % 2), launches_per_launcher=2)
    names = ("track_id", "state", "pos_var", "confirmed", "friendly", "in_flight", "shots", "armed", "ready",
             "rounds", "reload")
    c: dict[str, Any] = dict(zip(names, sc.args, strict=True))
    c.update(cfg=cfg, launchers=sc.launchers, zones=sc.zones, busy=np.zeros(8, np.int32))
    res = FireControl(cfg, sc.assets, sc.launchers, sc.zones).evaluate(0.0, *sc.args)
    assert len(res.assignments.track_index) > 0
    check_safe(c, res)


def check_safe(c: dict[str, Any], res: Any) -> None:
    cfg: FireControlConfig = c["cfg"]
    n = len(c["state"])
    a = res.assignments
    per_launcher = np.bincount(a.launcher_index, minlength=len(c["launchers"]))
    per_track = np.bincount(a.track_index, minlength=n)
    for k in range(len(a.track_index)):
        i, li = int(a.track_index[k]), int(a.launcher_index[k])
        la: LauncherSpec = c["launchers"][li]
        x = c["state"][i]
        # the track
        assert not c["friendly"][i] and c["confirmed"][i]
        assert c["in_flight"][i] + per_track[i] <= cfg.shots_per_engagement
        assert c["shots"][i] + per_track[i] <= cfg.max_shots_per_track
        assert np.all(np.isfinite(x)) and math.isfinite(c["pos_var"][i])
        assert not any(inside(x[:3], z) for z in c["zones"])
        # the launcher
        assert c["armed"][li] and c["ready"][li] and c["reload"][li] <= 0.0 and c["rounds"][li] > 0
        assert per_launcher[li] <= min(c["rounds"][li], la.channels - c["busy"][li], cfg.launches_per_launcher)
        # the solution, checked from what the kernel reports
        p = a.intercept_enu[k]
        tof = float(a.time_of_flight_s[k])
        d = p - np.array(la.position)
        rng = float(np.linalg.norm(d))
        assert rng == np.float64(rng) and abs(rng - la.interceptor_speed_mps * tof) <= 1e-6 * max(rng, 1.0)
        assert la.min_range_m * (1 - 1e-9) <= rng <= la.max_range_m * (1 + 1e-9)
        assert la.min_alt_m - 1e-6 <= p[2] <= la.max_alt_m + 1e-6
        assert 0.0 <= tof <= la.max_tof_s * (1 + 1e-9)
        if la.sector_width_deg < 360.0:
            off = abs((math.degrees(math.atan2(d[0], d[1])) - la.sector_centre_deg + 180.0) % 360.0 - 180.0)
            assert off <= la.sector_width_deg / 2 + 1e-6
        assert not any(inside(p, z) for z in c["zones"])
        assert a.pk[k] >= cfg.min_pk and a.pk[k] > 0.0
        assert res.track_reason[i] == RefusalReason.NONE
    assert np.all(per_track <= cfg.shots_per_engagement)
    if cfg.doctrine == Doctrine.SHOOT_LOOK_SHOOT:
        assert all(c["in_flight"][i] == 0 for i in a.track_index)
    # every track is either fired at or has a stated reason
    refused = set(res.refusals.track_index.tolist())
    assert all(per_track[i] > 0 or i in refused for i in range(n))
    assert set(res.refusals.reason.tolist()) <= {int(r) for r in RefusalReason} - {0}
