"""Property tests: whatever the input, the fire-control kernel never fires where it must not.

"Must not" includes the terminal path: no friendly or neutral track may come within the safety radius of the
seeker's basket axis during its search, nor into the basket itself when the radius is the default one
(checked here against a plain fly-out: the round's straight flight sampled in time and the basket's cone), and
no no-fire zone may come within 3 sigma + lethal radius of the path from acquisition to self-destruct.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hil.ext.firecontrol import FireControl
from hil.ext.firecontrol_types import (
    AssetSpec,
    Doctrine,
    FireControlConfig,
    LauncherSpec,
    NoFireZone,
    RefusalReason,
    protect_radius,
)
from hil.ext.reference import firecontrol as ref

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
        channels=draw(often(2, st.integers(0, 4))), pk=draw(often(0.9, st.floats(0, 1))),
        seeker_range_m=draw(often(8000.0, st.floats(0, 20_000))),
        seeker_half_angle_deg=draw(often(10.0, st.floats(0, 60))),
        lethal_radius_m=draw(often(15.0, st.floats(0, 200))))


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
    protection = dict(protect_radius_m=draw(often(None, st.floats(0, 5000))),
                      safety_sigmas=draw(often(3.0, st.floats(0, 5))),
                      track_velocity_sigma_mps=draw(often(0.0, st.floats(0, 30))),
                      launch_timing_margin_s=draw(often(0.5, st.floats(0, 3))))
    cfg = FireControlConfig(doctrine=draw(st.sampled_from(Doctrine)), salvo_size=draw(st.integers(1, 3)),
                            max_shots_per_track=draw(st.integers(1, 4)), launches_per_launcher=draw(st.integers(1, 3)),
                            min_pk=draw(often(0.05, st.floats(0, 1))),
                            solver=draw(st.sampled_from(["auto", "greedy", "exact"])), **protection)
    if cfg.doctrine == Doctrine.SHOOT_LOOK_SHOOT and draw(st.booleans()):
        cfg = FireControlConfig(doctrine=cfg.doctrine, min_pk=cfg.min_pk, solver="lap", **protection)
    vel_var = None
    if draw(st.booleans()):
        vel_var = np.where(flag(n), rng.choice([math.nan, -1.0, math.inf, 1e4], n), rng.uniform(0, 900, n))
    return dict(
        cfg=cfg, launchers=ls, assets=assets, zones=draw(st.lists(zones(), max_size=3)), state=state,
        pos_var=pos_var, confirmed=~flag(n), friendly=flag(n), in_flight=count(n, 2), shots=count(n, 5),
        armed=~flag(n_l), ready=~flag(n_l), rounds=np.where(flag(n_l), rng.integers(-1, 1, n_l), 4).astype(np.int32),
        reload=np.where(flag(n_l), rng.choice([1.0, math.nan], n_l), 0.0), busy=count(n_l, 3),
        neutral=flag(n), assessing=flag(n), vel_var=vel_var,
    )


def run(c: dict[str, Any]) -> Any:
    """The kernel on a case."""
    fc = FireControl(c["cfg"], c["assets"], c["launchers"], c["zones"])
    n = len(c["state"])
    return fc.evaluate(3.0, np.arange(n), c["state"], c["pos_var"], c["confirmed"], c["friendly"], c["in_flight"],
                       c["shots"], c["armed"], c["ready"], c["rounds"], c["reload"], channels_in_use=c["busy"],
                       neutral=c.get("neutral"), assessing=c.get("assessing"), vel_var_m2s2=c.get("vel_var"))


def inside(p: np.ndarray, z: NoFireZone) -> bool:
    """Inside by more than rounding."""
    d = math.hypot(p[0] - z.centre[0], p[1] - z.centre[1])
    return d < z.radius_m * (1 - 1e-9) and z.z_min_m + 1e-6 < p[2] < z.z_max_m - 1e-6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_never_fires_where_it_must_not(c: dict[str, Any]) -> None:
    res = run(c)
    event(f"fired: {len(res.assignments.track_index) > 0}")
    check_safe(c, res)


def agree(c: dict[str, Any], res: Any) -> None:
    """The kernel's result res on case c is the numpy reference's."""
    e = ref.evaluate(c["cfg"], c["assets"], c["launchers"], c["zones"], c["state"], c["pos_var"], c["confirmed"],
                     c["friendly"], c["in_flight"], c["shots"], c["armed"], c["ready"], c["rounds"], c["reload"],
                     c["busy"], neutral=c["neutral"], assessing=c["assessing"], vel_var_m2s2=c["vel_var"])
    event(f"protected refusals: {bool(np.any(e.pair_code == RefusalReason.PROTECTED_NEAR_INTERCEPT))}")
    assert np.array_equal(res.track_reason, e.track_code)
    assert np.array_equal(np.where(res.pair_reason == RefusalReason.OUTRANKED, 0, res.pair_reason), e.pair_code)
    assert np.array_equal(res.pair_protected, e.protected)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's numpy on 1e300 and nan inputs
def test_kernel_agrees_with_reference_on_any_input(c: dict[str, Any]) -> None:
    agree(c, run(c))


@st.composite
def escorts(draw: Any) -> dict[str, Any]:
    """Hostiles heading for an asset with friendly or neutral traffic around them: escorts 100 m - 15 km off in
    any direction, flying with them or not, and crossers. Every launcher armed and ready: fire control has
    something to fire at, and the question is only where."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_h, n_p = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    asset = AssetSpec("base", (0.0, 0.0, 0.0), radius_m=3000.0)
    ls = [LauncherSpec(f"L{k}", (float(rng.uniform(-5000, 5000)), float(rng.uniform(-5000, 5000)), 0.0),
                       interceptor_speed_mps=float(rng.uniform(600, 1500)), launch_delay_s=float(rng.uniform(0, 3)),
                       slew_rate_dps=float(rng.uniform(0, 90)), min_range_m=0.0, max_range_m=80_000.0,
                       min_alt_m=-1000.0, max_alt_m=30_000.0, max_tof_s=120.0, channels=4,
                       seeker_range_m=draw(often(8000.0, st.floats(1000, 15_000))),
                       seeker_half_angle_deg=draw(often(10.0, st.floats(1, 45))),
                       lethal_radius_m=draw(often(15.0, st.floats(0, 100))))
          for k in range(draw(st.integers(1, 3)))]
    bearing = rng.uniform(0, 2 * np.pi, n_h)
    dist = rng.uniform(15_000, 50_000, n_h)
    hp = np.stack([dist * np.sin(bearing), dist * np.cos(bearing), rng.uniform(100, 10_000, n_h)], axis=1)
    hv = -hp / np.linalg.norm(hp, axis=1, keepdims=True) * rng.uniform(150, 700, n_h)[:, None]
    who = rng.integers(0, n_h, n_p)
    off = rng.normal(size=(n_p, 3))
    off *= (np.exp(rng.uniform(np.log(100), np.log(15_000), n_p)) / np.linalg.norm(off, axis=1))[:, None]
    pp = hp[who] + off
    pv = np.where(rng.random(n_p)[:, None] < 0.6, hv[who] + rng.normal(0, 20, (n_p, 3)),
                  rng.uniform(-300, 300, (n_p, 3)))
    n = n_h + n_p
    state = np.concatenate([np.concatenate([hp, pp]), np.concatenate([hv, pv])], axis=1)
    neutral = np.zeros(n, bool)
    neutral[n_h:] = rng.random(n_p) < 0.5
    friendly = np.zeros(n, bool)
    friendly[n_h:] = ~neutral[n_h:]
    n_l = len(ls)
    cfg = FireControlConfig(launches_per_launcher=4, safety_sigmas=draw(often(3.0, st.floats(0, 4))),
                            launch_timing_margin_s=draw(often(0.5, st.floats(0, 2))))
    return dict(cfg=cfg, launchers=ls, assets=[asset], zones=[], state=state, pos_var=rng.uniform(10, 40_000, n),
                confirmed=np.ones(n, bool), friendly=friendly, in_flight=np.zeros(n, np.int32),
                shots=np.zeros(n, np.int32), armed=np.ones(n_l, bool), ready=np.ones(n_l, bool),
                rounds=np.full(n_l, 8, np.int32), reload=np.zeros(n_l), busy=np.zeros(n_l, np.int32),
                neutral=neutral, assessing=np.zeros(n, bool), vel_var=rng.uniform(0, 100, n) if rng.random() < 0.5
                else None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(escorts())
def test_no_protected_track_in_the_basket_of_a_round_fired(c: dict[str, Any]) -> None:
    res = run(c)
    a = res.assignments
    event(f"fired: {len(a.track_index) > 0}")
    event(f"held for a protected track: {bool(np.any(res.pair_reason == RefusalReason.PROTECTED_NEAR_INTERCEPT))}")
    check_safe(c, res)
    agree(c, res)


def test_the_basket_check_catches_an_escort_when_protection_is_off() -> None:
    """The fly-out check above can fail: with no protection radius and no margins, the round fired at an
    escorted bomber has its escort, 500 m beside it, in the basket at acquisition."""
    la = LauncherSpec("L", (0.0, 0.0, 1000.0), interceptor_speed_mps=1000.0, launch_delay_s=1.0, slew_rate_dps=0.0)
    state = np.array([[30_000.0, 0.0, 1000.0, -250.0, 0.0, 0.0], [30_000.0, 500.0, 1000.0, -250.0, 0.0, 0.0]])
    base = dict(launchers=[la], assets=[], zones=[], state=state, pos_var=np.full(2, 100.0),
                confirmed=np.ones(2, bool), friendly=np.array([False, True]), in_flight=np.zeros(2, np.int32),
                shots=np.zeros(2, np.int32), armed=np.ones(1, bool), ready=np.ones(1, bool),
                rounds=np.full(1, 4, np.int32), reload=np.zeros(1), busy=np.zeros(1, np.int32),
                neutral=np.zeros(2, bool), assessing=np.zeros(2, bool), vel_var=None)
    off = FireControlConfig(protect_radius_m=0.0, safety_sigmas=0.0, launch_timing_margin_s=0.0)
    res = run({**base, "cfg": off})
    assert res.assignments.track_index.tolist() == [0]
    k_aim = res.assignments.intercept_enu[0]
    assert in_basket(la, k_aim, float(res.pair_t_s[0, 0]), state[1:]).any()
    safe = run({**base, "cfg": FireControlConfig()})
    assert len(safe.assignments.track_index) == 0
    assert safe.pair_reason[0, 0] == RefusalReason.PROTECTED_NEAR_INTERCEPT


@pytest.mark.parametrize("seed", range(20))
def test_never_fires_where_it_must_not_in_busy_scenes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sc = ref.random_scene(rng, 80, 8, n_zones=4, p_flags=0.2, p_protect=0.05)
    cfg = FireControlConfig(doctrine=Doctrine(seed % 2), launches_per_launcher=2)
    names = ("track_id", "state", "pos_var", "confirmed", "friendly", "in_flight", "shots", "armed", "ready",
             "rounds", "reload")
    c: dict[str, Any] = dict(zip(names, sc.args, strict=True))
    c.update(cfg=cfg, launchers=sc.launchers, zones=sc.zones, busy=np.zeros(8, np.int32), neutral=sc.kwargs["neutral"],
             assessing=sc.kwargs["assessing"], vel_var=sc.kwargs["vel_var_m2s2"])
    res = FireControl(cfg, sc.assets, sc.launchers, sc.zones).evaluate(0.0, *sc.args, **sc.kwargs)
    assert len(res.assignments.track_index) > 0
    check_safe(c, res)


def fly_out(la: LauncherSpec, aim: np.ndarray, t_int: float, samples: int = 801) -> tuple[np.ndarray, ...]:
    """The round's search, as the plant flies it: times (s from now), its positions and its unit flight
    direction, from S before the aim (or launch, if nearer) to S past it, straight at constant speed."""
    pos = np.array(la.position, dtype=float)
    d = aim - pos
    rng = float(np.linalg.norm(d))
    u = d / rng if rng > 1e-9 else np.zeros(3)
    s, speed = max(la.seeker_range_m, 0.0), la.interceptor_speed_mps
    t = np.linspace(t_int - min(s, rng) / speed, t_int + s / speed, samples)
    return t, aim + (t - t_int)[:, None] * speed * u, u


def in_basket(la: LauncherSpec, aim: np.ndarray, t_int: float, objects: np.ndarray) -> np.ndarray:
    """Per object (CV states, (m, 6)): is it ever in the round's basket (within S, inside the cone) or within
    its lethal radius during the search?"""
    t, rnd, u = fly_out(la, aim, t_int)
    x = objects[None, :, :3] + objects[None, :, 3:] * t[:, None, None]
    rel = x - rnd[:, None, :]
    dist = np.linalg.norm(rel, axis=2)
    along = rel @ u
    cone = (dist <= la.seeker_range_m) & (along >= dist * math.cos(math.radians(la.seeker_half_angle_deg)))
    return np.asarray(np.any(cone | (dist <= la.lethal_radius_m), axis=0))


def axis_distance(la: LauncherSpec, aim: np.ndarray, t_int: float, objects: np.ndarray) -> np.ndarray:
    """Per object: its smallest distance, sampled over the search, to the basket's axis (the segment from the
    round to S ahead of it)."""
    t, rnd, u = fly_out(la, aim, t_int)
    x = objects[None, :, :3] + objects[None, :, 3:] * t[:, None, None]
    rel = x - rnd[:, None, :]
    along = np.clip(rel @ u, 0.0, max(la.seeker_range_m, 0.0))
    return np.asarray(np.min(np.linalg.norm(rel - along[:, :, None] * u, axis=2), axis=0))


def path_near_zone(a: np.ndarray, b: np.ndarray, widen: float, z: NoFireZone) -> bool:
    """Some sampled point of the segment a -> b within widen of the zone (by more than rounding)."""
    p = a + np.linspace(0.0, 1.0, 2001)[:, None] * (b - a)
    d = np.hypot(p[:, 0] - z.centre[0], p[:, 1] - z.centre[1])
    return bool(np.any((d < (z.radius_m + widen) * (1 - 1e-9)) & (p[:, 2] > z.z_min_m - widen + 1e-6)
                       & (p[:, 2] < z.z_max_m + widen - 1e-6)))


def check_path(c: dict[str, Any], res: Any, k: int) -> None:
    """The k-th shot: no zone and no protected track near its terminal path, none in its basket."""
    cfg: FireControlConfig = c["cfg"]
    a = res.assignments
    i, li = int(a.track_index[k]), int(a.launcher_index[k])
    la: LauncherSpec = c["launchers"][li]
    aim, t_int = a.intercept_enu[k], float(res.pair_t_s[i, li])
    n = len(c["state"])
    vel_var = c["vel_var"] if c.get("vel_var") is not None else np.full(n, cfg.track_velocity_sigma_mps ** 2)
    s, speed = max(la.seeker_range_m, 0.0), la.interceptor_speed_mps
    t_end = np.float64(t_int + s / speed)
    with np.errstate(over="ignore", invalid="ignore"):
        sigma = np.sqrt(c["pos_var"] + vel_var * t_end * t_end)
    rng = float(np.linalg.norm(aim - np.array(la.position)))
    extra = 0.0 if rng > 1e-9 else s
    _, rnd, _ = fly_out(la, aim, t_int, 2)
    widen = cfg.safety_sigmas * float(sigma[i]) + la.lethal_radius_m + extra
    assert not any(path_near_zone(rnd[0], rnd[1], widen, z) for z in c["zones"])
    neutral = c.get("neutral")
    protected = np.asarray(c["friendly"]) | (np.asarray(neutral) if neutral is not None else False)
    with np.errstate(invalid="ignore"):
        usable = (np.all(np.isfinite(c["state"]), axis=1) & np.isfinite(sigma) & (c["pos_var"] >= 0)
                  & (vel_var >= 0) & (np.abs(c["state"]) < 1e12).all(axis=1))
    rows = np.nonzero(protected & usable)[0]
    if not len(rows):
        return
    objects = c["state"][rows]
    rho = (protect_radius(cfg, la) + extra + cfg.safety_sigmas * (sigma[i] + sigma[rows])
           + np.linalg.norm(objects[:, 3:], axis=1) * cfg.launch_timing_margin_s)
    assert np.all(axis_distance(la, aim, t_int, objects) >= rho * (1 - 1e-9) - 1e-6)
    if cfg.protect_radius_m is None and la.seeker_half_angle_deg < 90.0:  # the default radius covers the basket
        assert not in_basket(la, aim, t_int, objects).any()


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
        for flag in ("neutral", "assessing"):
            assert c.get(flag) is None or not c[flag][i]
        check_path(c, res, k)
    assert np.all(per_track <= cfg.shots_per_engagement)
    if cfg.doctrine == Doctrine.SHOOT_LOOK_SHOOT:
        assert all(c["in_flight"][i] == 0 for i in a.track_index)
    # every track is either fired at or has a stated reason
    refused = set(res.refusals.track_index.tolist())
    assert all(per_track[i] > 0 or i in refused for i in range(n))
    assert set(res.refusals.reason.tolist()) <= {int(r) for r in RefusalReason} - {0}
