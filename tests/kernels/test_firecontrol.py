"""Fire-control kernel: intercept geometry in closed form, envelope edges, refusals, ranking, assignment optimality."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.errors import ConfigError
from hil.ext.firecontrol import FireControl, refusals_of, solve_assignment
from hil.ext.firecontrol_types import (
    AssetSpec,
    Doctrine,
    FireControlConfig,
    LauncherSpec,
    NoFireZone,
    RefusalReason,
    protect_radius,
)
from hil.ext.firecontrol_types import refusals_of as refusals_of_reference
from hil.ext.reference import firecontrol as ref
from hil.host.fire_control import friendly_code_array, protection_inputs, specs_from_scenario

R = RefusalReason
H = 1000.0  # launcher and target height in the geometry cases, so range is horizontal


def launcher(**kw: Any) -> LauncherSpec:
    base: dict[str, object] = dict(name="L", position=(0.0, 0.0, H), interceptor_speed_mps=1000.0, launch_delay_s=2.0,
                                   slew_rate_dps=0.0, min_range_m=0.0, max_range_m=100_000.0, min_alt_m=0.0,
                                   max_alt_m=30_000.0, max_tof_s=200.0,
                                   seeker_range_m=8000.0, seeker_half_angle_deg=10.0)  # the seeker drawn below
    base.update(kw)
    return LauncherSpec(**base)  # type: ignore[arg-type]


def evaluate(states: Any, launchers: list[LauncherSpec] | None = None,
             assets: list[AssetSpec] | None = None, zones: list[NoFireZone] | None = None,
             cfg: FireControlConfig | None = None, **over: Any) -> Any:
    """One evaluation with every flag good unless overridden."""
    ls = launchers if launchers is not None else [launcher()]
    st = np.array(states, dtype=float).reshape(-1, 6)
    n, n_l = len(st), len(ls)
    args: dict[str, Any] = dict(
        pos_var_m2=np.full(n, 100.0), confirmed=np.ones(n, bool), friendly=np.zeros(n, bool),
        in_flight=np.zeros(n, np.int32), shots_fired=np.zeros(n, np.int32), launcher_armed=np.ones(n_l, bool),
        launcher_ready=np.ones(n_l, bool), launcher_rounds=np.full(n_l, 4, np.int32),
        launcher_reload_left_s=np.zeros(n_l))
    args.update(over)
    fc = FireControl(cfg or FireControlConfig(), assets or [], ls, zones or [])
    return fc.evaluate(0.0, np.arange(n, dtype=np.int64) + 100, st, **args)


# --- intercept geometry against closed forms -----------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.0, 2.5])
def test_head_on_intercept_time_and_point(delay: float) -> None:
    r0, v, u = 30_000.0, 300.0, 1000.0
    res = evaluate([[r0, 0, H, -v, 0, 0]], [launcher(launch_delay_s=delay)])
    t = (r0 + u * delay) / (u + v)
    assert res.pair_t_s[0, 0] == pytest.approx(t, rel=1e-12)
    assert res.assignments.time_of_flight_s[0] == pytest.approx(t - delay, rel=1e-12)
    np.testing.assert_allclose(res.assignments.intercept_enu[0], [r0 - v * t, 0, H], rtol=1e-12)


def test_crossing_intercept_time() -> None:
    y0, v, u = 20_000.0, 400.0, 1000.0
    res = evaluate([[0, y0, H, v, 0, 0]], [launcher(launch_delay_s=0.0)])
    t = y0 / math.sqrt(u * u - v * v)
    assert res.pair_t_s[0, 0] == pytest.approx(t, rel=1e-12)
    np.testing.assert_allclose(res.assignments.intercept_enu[0], [v * t, y0, H], rtol=1e-12)


def test_receding_intercept_time() -> None:
    r0, v, u, d = 10_000.0, 300.0, 1000.0, 1.5
    res = evaluate([[r0, 0, H, v, 0, 0]], [launcher(launch_delay_s=d)])
    t = (r0 + u * d) / (u - v)
    assert res.pair_t_s[0, 0] == pytest.approx(t, rel=1e-12)
    assert res.pair_reason[0, 0] == R.NONE


@pytest.mark.parametrize("v", [1200.0, 1000.0])
def test_receding_faster_or_as_fast_is_unreachable(v: float) -> None:
    res = evaluate([[10_000.0, 0, H, v, 0, 0]])
    assert res.pair_reason[0, 0] == R.UNREACHABLE
    assert len(res.assignments.track_index) == 0
    assert list(res.refusals.reason) == [R.UNREACHABLE]


def test_equal_speed_head_on_is_the_linear_case() -> None:
    r0, u, d = 20_000.0, 1000.0, 2.0
    res = evaluate([[r0, 0, H, -u, 0, 0]], [launcher(launch_delay_s=d)])
    assert res.pair_t_s[0, 0] == pytest.approx((r0 + u * d) / (2 * u), rel=1e-12)


def test_slew_time_adds_to_the_delay() -> None:
    # radial approach on bearing 90 deg: the intercept bearing is fixed, so the slew angle is exactly 90 deg
    r0, v, u, d, rate = 30_000.0, 300.0, 1000.0, 1.0, 45.0
    res = evaluate([[r0, 0, H, -v, 0, 0]], [launcher(launch_delay_s=d, slew_rate_dps=rate, sector_centre_deg=0.0)])
    delay = d + 90.0 / rate
    t = (r0 + u * delay) / (u + v)
    assert res.pair_t_s[0, 0] == pytest.approx(t, rel=1e-12)
    assert res.pair_tof_s[0, 0] == pytest.approx(t - delay, rel=1e-12)


def test_reference_intercept_time_agrees_on_closed_forms() -> None:
    r = np.array([[30_000.0, 0, 0], [0, 20_000, 0], [10_000, 0, 0], [10_000, 0, 0]])
    v = np.array([[-300.0, 0, 0], [400, 0, 0], [300, 0, 0], [1200, 0, 0]])
    t = ref.intercept_time(r, v, 1000.0, 0.0)
    np.testing.assert_allclose(t[:3], [30_000 / 1300, 20_000 / math.sqrt(1000**2 - 400**2), 10_000 / 700], rtol=1e-12)
    assert math.isinf(t[3])


# --- envelope edges --------------------------------------------------------------------------------------------

R0, V, U, D = 30_000.0, 300.0, 1000.0, 2.0
T_HEAD = (R0 + U * D) / (U + V)
RHO = R0 - V * T_HEAD  # intercept range of the head-on case
HEAD_ON = [R0, 0.0, H, -V, 0.0, 0.0]


@pytest.mark.parametrize(("kw", "reason"), [
    (dict(max_range_m=RHO + 1.0), R.NONE), (dict(max_range_m=RHO - 1.0), R.OUT_OF_RANGE),
    (dict(min_range_m=RHO - 1.0), R.NONE), (dict(min_range_m=RHO + 1.0), R.OUT_OF_RANGE),
    (dict(max_tof_s=T_HEAD - D + 0.01), R.NONE), (dict(max_tof_s=T_HEAD - D - 0.01), R.TOF),
    (dict(min_alt_m=H - 1.0), R.NONE), (dict(min_alt_m=H + 1.0, max_alt_m=H + 2), R.ALTITUDE),
    (dict(max_alt_m=H - 1.0, min_alt_m=0.0), R.ALTITUDE),
    # intercept bearing is 90 deg: a 20 deg sector centred at 100 deg has its edge at 90 deg
    (dict(sector_centre_deg=99.9, sector_width_deg=20.0), R.NONE),
    (dict(sector_centre_deg=100.1, sector_width_deg=20.0), R.SECTOR),
    (dict(sector_centre_deg=80.1, sector_width_deg=20.0), R.NONE),
    (dict(sector_centre_deg=79.9, sector_width_deg=20.0), R.SECTOR),
])
def test_envelope_edges(kw: dict[str, Any], reason: RefusalReason) -> None:
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D, **kw)])
    assert res.pair_reason[0, 0] == reason
    assert (len(res.assignments.track_index) == 1) == (reason == R.NONE)


@pytest.mark.parametrize(("margin", "reason"), [(0.01, R.NONE), (-0.01, R.TOO_LATE)])
def test_too_late_when_the_threat_reaches_its_asset_first(margin: float, reason: RefusalReason) -> None:
    # asset centred on the launcher: the threat enters its radius at (R0 - radius) / V
    radius = R0 - V * (T_HEAD + margin)
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D)], assets=[AssetSpec("base", (0, 0, H), radius_m=radius)])
    assert res.time_to_asset_s[0] == pytest.approx(T_HEAD + margin, rel=1e-9)
    assert res.pair_reason[0, 0] == reason


def test_intercept_point_inside_a_no_fire_zone_is_refused() -> None:
    x = R0 - V * T_HEAD
    zone = NoFireZone("town", (x, 200.0), 500.0, 0.0, 5000.0)
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D)], zones=[zone])
    assert res.track_reason[0] == R.NONE
    assert res.pair_reason[0, 0] == R.INTERCEPT_IN_NO_FIRE_ZONE
    assert len(res.assignments.track_index) == 0
    # above the zone's ceiling by more than the widening (3 sigma of the track, 30 m, + lethal radius 15 m)
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D)], zones=[NoFireZone("town", (x, 200.0), 500.0, 0.0, H - 46)])
    assert len(res.assignments.track_index) == 1
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D)], zones=[NoFireZone("town", (x, 200.0), 500.0, 0.0, H - 44)])
    assert res.pair_reason[0, 0] == R.INTERCEPT_IN_NO_FIRE_ZONE


# --- the terminal path: no-fire zones and protected tracks -----------------------------------------------------
# HEAD_ON with the tests' seeker (S = 8 km, 10 degrees, lethal radius 15 m): the aim is at x = AIM_X on the x axis,
# the seeker searches from x = AIM_X - 8 km to AIM_X + 8 km, from T_HEAD - 8 s to T_HEAD + 8 s
AIM_X = R0 - V * T_HEAD
BASKET = 8000.0 * math.tan(math.radians(10.0)) + 15.0


@pytest.mark.parametrize(("centre", "radius", "refused"), [
    ((AIM_X - 6500.0, 0.0), 1000.0, True),  # the aim outside, the acquisition side of the path through it
    ((AIM_X + 5000.0, 0.0), 1000.0, True),  # the self-destruct side (the track itself is 2.4 km clear of it)
    ((AIM_X - 12_000.0, 0.0), 1000.0, False),  # before the seeker searches: the round cannot kill there
    ((AIM_X + 8000.0 + 1046.0, 0.0), 1000.0, False),  # past the self-destruct point by more than the widening
    ((AIM_X, 1000.0 + 46.0), 1000.0, False),  # beside the path, just clear of the widening (3 sigma + lethal)
    ((AIM_X, 1000.0 + 44.0), 1000.0, True),
])
def test_no_fire_zone_anywhere_on_the_terminal_path(centre: tuple[float, float], radius: float,
                                                    refused: bool) -> None:
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D)], zones=[NoFireZone("town", centre, radius)])
    assert math.hypot(AIM_X - centre[0], centre[1]) > radius  # never the aim point itself
    assert (res.pair_reason[0, 0] == R.INTERCEPT_IN_NO_FIRE_ZONE) == refused
    assert (len(res.assignments.track_index) == 0) == refused


@pytest.mark.parametrize(("radius", "refused"), [(450.0, False), (500.0, True)])
def test_kill_point_is_widened_by_the_tracks_uncertainty(radius: float, refused: bool) -> None:
    # sigma 1000 m: the zone edge must stay 3 km + 15 m from the path
    res = evaluate([HEAD_ON], [launcher(launch_delay_s=D)], zones=[NoFireZone("z", (AIM_X, 3500.0), radius)],
                   pos_var_m2=np.array([1e6]))
    assert (res.pair_reason[0, 0] == R.INTERCEPT_IN_NO_FIRE_ZONE) == refused


def escorted(offset: tuple[float, float, float], vel: tuple[float, float, float] = (-V, 0.0, 0.0),
             **over: Any) -> Any:
    """HEAD_ON and a second track (row 1, id 101) at HEAD_ON's position + offset, friendly unless overridden."""
    second = [R0 + offset[0], offset[1], H + offset[2], *vel]
    over.setdefault("friendly", np.array([False, True]))
    return evaluate([HEAD_ON, second], [launcher(launch_delay_s=D)], **over)


@pytest.mark.parametrize("offset", [(0.0, 500.0, 0.0), (0.0, -300.0, 0.0), (-800.0, 0.0, 0.0), (800.0, 0.0, 0.0),
                                    (0.0, 0.0, 600.0), (0.0, 0.0, -400.0)],
                         ids=["beside", "other-side", "ahead", "behind", "above", "below"])
def test_escorted_hostile_is_refused_and_the_refusal_names_the_escort(offset: tuple[float, float, float]) -> None:
    res = escorted(offset)
    assert len(res.assignments.track_index) == 0
    assert res.track_reason.tolist() == [R.NONE, R.FRIENDLY]
    assert res.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT and res.pair_protected[0, 0] == 1
    rows = list(zip(res.refusals.track_index.tolist(), res.refusals.launcher_index.tolist(),
                    res.refusals.reason.tolist(), res.refusals.protected_index.tolist(), strict=True))
    assert rows == [(1, -1, R.FRIENDLY, -1), (0, 0, R.PROTECTED_NEAR_INTERCEPT, 1)]
    why = json.loads(json.dumps(res.explain(0)))
    assert why["decision"] == "no launcher: PROTECTED_NEAR_INTERCEPT"
    assert why["alternatives"][0]["reason"] == "PROTECTED_NEAR_INTERCEPT"
    assert why["alternatives"][0]["protected_track"] == 101


def test_tentative_friendlies_and_neutrals_protect_too() -> None:
    tentative = escorted((0.0, 500.0, 0.0), confirmed=np.array([True, False]))
    assert tentative.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT
    neutral = escorted((0.0, 500.0, 0.0), friendly=np.array([False, False]), neutral=np.array([False, True]))
    assert neutral.track_reason.tolist() == [R.NONE, R.NEUTRAL]
    assert neutral.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT and neutral.pair_protected[0, 0] == 1
    assert neutral.threats.track_index.tolist() == [0]  # a neutral is never ranked as a threat
    assert neutral.explain(1)["inputs"]["neutral"] is True
    # the same second track, neither friendly nor neutral: nothing to protect, the hostile is fired at
    assert len(escorted((0.0, 500.0, 0.0), friendly=np.array([False, False])).assignments.track_index) == 1


def test_the_tracks_status_column_decides_as_the_confirmed_flags_do() -> None:
    """The host hands fire control its snapshot's status column (status=, confirmed=None): a tentative track is
    refused as NOT_CONFIRMED and protects as a tentative friendly does, the same decision as from confirmed flags;
    neither given is one clear error."""
    for confirmed in ([True, True], [True, False], [False, True], [False, False]):
        status = np.where(confirmed, 2, 1).astype(np.int8)
        by_flags = escorted((0.0, 500.0, 0.0), confirmed=np.array(confirmed))
        by_status = escorted((0.0, 500.0, 0.0), confirmed=None, status=status)
        assert by_status.track_reason.tolist() == by_flags.track_reason.tolist()
        assert np.array_equal(by_status.pair_reason, by_flags.pair_reason)
        assert by_status.explain(0) == by_flags.explain(0)
    assert escorted((0.0, 500.0, 0.0), confirmed=None, status=np.array([1, 2], np.int8)).track_reason[0] == (
        R.NOT_CONFIRMED)
    with pytest.raises(ValueError, match=r"confirmed .* or status"):
        escorted((0.0, 500.0, 0.0), confirmed=None)


def test_far_friendly_does_not_hold_fire() -> None:
    res = escorted((0.0, 20_000.0, 0.0))
    assert res.assignments.track_index.tolist() == [0]
    assert res.pair_protected[0, 0] == -1 and res.explain(0)["alternatives"][0]["protected_track"] is None


def test_protection_counts_only_the_seekers_search_window() -> None:
    # a friendly flying north at 250 m/s across the path at the aim's x: crossing 5 s from now it is long gone
    # when the seeker searches (from T - 8 s); crossing while the basket covers the aim (T - 8 s to T) it would
    # be in it; crossing 7 s after the intercept it passes behind the round
    for t_cross, refused in [(5.0, False), (T_HEAD - 6.0, True), (T_HEAD, True), (T_HEAD + 7.0, False)]:
        res = evaluate([HEAD_ON, [AIM_X, -250.0 * t_cross, H, 0.0, 250.0, 0.0]], [launcher(launch_delay_s=D)],
                       friendly=np.array([False, True]))
        assert (res.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT) == refused, t_cross


def test_protection_reaches_as_far_as_the_basket_looks_ahead() -> None:
    # a hovering friendly 5 km past the self-destruct point, on the line of fire: the basket reaches 8 km ahead
    # of the round, so it is in the basket at the end of the search although 5 km from the path itself
    res = evaluate([HEAD_ON, [AIM_X + 13_000.0, 0.0, H, 0.0, 0.0, 0.0]], [launcher(launch_delay_s=D)],
                   friendly=np.array([False, True]))
    assert res.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT
    # 2 km past the basket's farthest reach (16 km past the aim): clear of the safety radius (1.49 km here)
    res = evaluate([HEAD_ON, [AIM_X + 18_000.0, 0.0, H, 0.0, 0.0, 0.0]], [launcher(launch_delay_s=D)],
                   friendly=np.array([False, True]))
    assert len(res.assignments.track_index) == 1


def test_protect_radius_is_the_doctrines() -> None:
    la = launcher()
    assert protect_radius(FireControlConfig(), la) == pytest.approx(BASKET)
    assert protect_radius(FireControlConfig(), launcher(seeker_range_m=4000.0, lethal_radius_m=30.0)) == (
        pytest.approx(4000.0 * math.tan(math.radians(10.0)) + 30.0))
    assert protect_radius(FireControlConfig(protect_radius_m=5000.0), la) == 5000.0
    # a friendly 3 km beside: clear of the default basket, inside a 5 km doctrine radius
    assert len(escorted((0.0, 3000.0, 0.0)).assignments.track_index) == 1
    wide = escorted((0.0, 3000.0, 0.0), cfg=FireControlConfig(protect_radius_m=5000.0))
    assert wide.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT
    # uncertainty grows the radius: 3 sigma of both tracks (here 500 m each)
    unsure = escorted((0.0, 3000.0, 0.0), pos_var_m2=np.array([250_000.0, 250_000.0]))
    assert unsure.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT
    # and with time, from the velocity variance (sigma 20 m/s: about 650 m each at the end of the search)
    later = escorted((0.0, 3000.0, 0.0), vel_var_m2s2=np.array([400.0, 400.0]))
    assert later.pair_reason[0, 0] == R.PROTECTED_NEAR_INTERCEPT


def test_kill_assessment_holds_fire_until_the_look_is_over() -> None:
    res = evaluate([HEAD_ON], assessing=np.array([True]))
    assert len(res.assignments.track_index) == 0
    assert list(zip(res.refusals.track_index, res.refusals.launcher_index, res.refusals.reason, strict=True)) == [
        (0, -1, R.KILL_ASSESSMENT)]
    why = res.explain(0)
    assert why["decision"] == "KILL_ASSESSMENT" and why["inputs"]["assessing"] is True
    # a round still in flight keeps its own reason; once the look is over the track is a candidate again
    assert evaluate([HEAD_ON], assessing=np.array([True]), in_flight=np.array([1], np.int32)).track_reason[0] == (
        R.ALREADY_ENGAGED)
    assert len(evaluate([HEAD_ON], assessing=np.array([False]), shots_fired=np.array([1], np.int32))
               .assignments.track_index) == 1


def test_records_without_the_new_inputs_keep_their_shape() -> None:
    res = evaluate([HEAD_ON])
    assert set(res.explain(0)["inputs"]) == {"position_enu_m", "velocity_enu_mps", "pos_var_m2", "confirmed",
                                             "friendly", "in_flight", "shots_fired"}


def test_protection_inputs_from_a_snapshot() -> None:
    from hil.ext.tracker_types import TrackSnapshot

    n = 4
    cov = np.zeros((n, 6, 6))
    cov[:, [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    snap = TrackSnapshot(np.arange(n, dtype=np.int64), np.full(n, 2, np.int8), np.zeros((n, 6)), cov, np.zeros(n),
                         np.array([-1, 0o4001, 0o1200, 0o4001], np.int32), np.ones(n, np.int32))
    got = protection_inputs(snap, friendly_code_array({0o4001}), friendly_code_array({0o1200, 0o4001}))
    assert got.friendly.tolist() == [False, True, False, True]
    assert got.neutral.tolist() == [False, False, True, False]  # a code on both lists counts as friendly
    assert got.pos_var_m2.tolist() == [6.0] * n and got.vel_var_m2s2.tolist() == [15.0] * n
    none = protection_inputs(snap, friendly_code_array(()), friendly_code_array(()))
    assert not none.friendly.any() and not none.neutral.any()


def test_build_fire_control_takes_the_scenarios_protection() -> None:
    import dataclasses

    from hil.host.kernels import build_fire_control
    from hil.scenario import Scenario

    sc = Scenario.load("scenarios/raid.toml")
    assert build_fire_control(sc).config.protect_radius_m is None
    fc = build_fire_control(dataclasses.replace(sc, protect_radius_m=2500.0))
    assert fc.config.protect_radius_m == 2500.0
    assert [la.seeker_range_m for la in fc.launcher_specs] == [la.seeker_range_m for la in sc.launchers]


# --- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("over", "reason"), [
    (dict(friendly=np.array([True]), confirmed=np.array([False])), R.FRIENDLY),
    (dict(confirmed=np.array([False])), R.NOT_CONFIRMED),
    (dict(in_flight=np.array([1], np.int32)), R.ALREADY_ENGAGED),
    (dict(shots_fired=np.array([4], np.int32)), R.SHOTS_EXHAUSTED),
    (dict(pos_var_m2=np.array([math.nan])), R.INVALID_TRACK),
])
def test_track_refusals(over: dict[str, Any], reason: RefusalReason) -> None:
    res = evaluate([HEAD_ON], **over)
    assert len(res.assignments.track_index) == 0
    assert list(zip(res.refusals.track_index, res.refusals.launcher_index, res.refusals.reason, strict=True)) == [
        (0, -1, reason)]


def test_track_inside_a_no_fire_zone_is_refused() -> None:
    res = evaluate([HEAD_ON], zones=[NoFireZone("z", (R0, 0.0), 100.0)])
    assert res.track_reason[0] == R.NO_FIRE_ZONE and len(res.assignments.track_index) == 0


@pytest.mark.parametrize(("over", "reason"), [
    (dict(launcher_armed=np.array([False])), R.LAUNCHER_NOT_ARMED),
    (dict(launcher_ready=np.array([False])), R.LAUNCHER_NOT_READY),
    (dict(launcher_reload_left_s=np.array([0.5])), R.LAUNCHER_NOT_READY),
    (dict(launcher_rounds=np.array([0], np.int32)), R.NO_ROUNDS),
    (dict(channels_in_use=np.array([2], np.int32)), R.NO_CHANNEL),
])
def test_launcher_refusals(over: dict[str, Any], reason: RefusalReason) -> None:
    res = evaluate([HEAD_ON], **over)
    assert len(res.assignments.track_index) == 0
    assert list(zip(res.refusals.launcher_index, res.refusals.reason, strict=True)) == [(0, reason)]


def test_invalid_state_is_refused_not_crashed() -> None:
    res = evaluate([[math.inf, 0, H, -V, 0, 0], [math.nan] * 6, HEAD_ON])
    assert list(res.track_reason[:2]) == [R.INVALID_TRACK] * 2
    assert list(res.assignments.track_index) == [2]


def test_re_engagement_after_a_miss() -> None:
    # the first interceptor missed: nothing in flight, one shot fired, shots left -> fire again
    res = evaluate([HEAD_ON], shots_fired=np.array([1], np.int32))
    assert len(res.assignments.track_index) == 1


def test_salvo_gives_one_threat_several_launchers_and_shoot_look_shoot_one() -> None:
    two = [launcher(name="A"), launcher(name="B", position=(0.0, 1000.0, H))]
    sls = evaluate([HEAD_ON], two)
    salvo = evaluate([HEAD_ON], two, cfg=FireControlConfig(doctrine=Doctrine.SALVO, salvo_size=2))
    assert len(sls.assignments.track_index) == 1
    assert sorted(salvo.assignments.launcher_index.tolist()) == [0, 1]
    assert salvo.objective > sls.objective  # two shots destroy more expected value than one


def test_unassigned_threat_lists_each_launcher_reason() -> None:
    # two threats, one launcher slot: the lesser threat is OUTRANKED
    near = [15_000.0, 0, H, -V, 0, 0]
    res = evaluate([HEAD_ON, near], assets=[AssetSpec("base", (0, 0, H), radius_m=2000)])
    assert list(res.assignments.track_index) == [1]
    assert list(zip(res.refusals.track_index, res.refusals.reason, strict=True)) == [(0, R.OUTRANKED)]


# --- threat evaluation -------------------------------------------------------------------------------------------


def test_threat_ranking_by_closest_approach_and_urgency() -> None:
    assets = [AssetSpec("base", (0, 0, 0), radius_m=2000.0)]
    states = [
        [40_000, 0, 3000, -250, 0, 0],  # heading in, slower arrival
        [20_000, 0, 3000, -250, 0, 0],  # heading in, sooner
        [20_000, 0, 3000, 250, 0, 0],  # receding: not a threat
        [20_000, 5_000, 3000, -250, 0, 0],  # passes 5 km off: partial
        [20_000, 0, 3000, -250, 0, 0],  # friendly: never ranked
    ]
    res = evaluate(states, assets=assets, friendly=np.array([0, 0, 0, 0, 1], bool))
    assert res.threats.track_index.tolist() == [1, 0, 3]
    assert res.track_reason[2] == R.NOT_A_THREAT
    assert res.threats.t_cpa_s[0] == pytest.approx(80.0)
    assert res.threats.d_cpa_m[0] == pytest.approx(3000.0)
    assert res.threats.heading_deg[0] == pytest.approx(270.0)


def test_asset_value_weights_the_score() -> None:
    assets = [AssetSpec("a", (0, 0, 0), 2000.0, value=1.0), AssetSpec("b", (0, 60_000, 0), 2000.0, value=3.0)]
    res = evaluate([[30_000, 0, 0, -300, 0, 0], [30_000, 60_000, 0, -300, 0, 0]], assets=assets)
    assert res.threats.track_index.tolist() == [1, 0]
    assert res.threats.asset_index.tolist() == [1, 0]
    assert res.threats.score[0] == pytest.approx(3 * res.threats.score[1])


def test_pk_falls_with_track_quality_and_tail_chase() -> None:
    good = evaluate([HEAD_ON], pos_var_m2=np.array([100.0])).pair_pk[0, 0]
    poor = evaluate([HEAD_ON], pos_var_m2=np.array([500_000.0])).pair_pk[0, 0]
    tail = evaluate([[10_000.0, 0, H, 300, 0, 0]]).pair_pk[0, 0]
    assert 0 < poor < good <= 0.85
    assert tail < good


# --- the kernel and its numpy twin -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_kernel_agrees_with_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # half the seeds with neutral, assessing and velocity-variance inputs (and so protected tracks to check)
    sc = ref.random_scene(rng, int(rng.integers(1, 60)), int(rng.integers(1, 8)), p_flags=0.15 * (seed % 3),
                          p_protect=0.1 * (seed % 2))
    cfg = FireControlConfig(doctrine=Doctrine(seed % 2), salvo_size=2, track_velocity_sigma_mps=float(seed % 3))
    res = FireControl(cfg, sc.assets, sc.launchers, sc.zones).evaluate(0.0, *sc.args, **sc.kwargs)
    e = ref.evaluate(cfg, sc.assets, sc.launchers, sc.zones, *sc.args[1:], **sc.kwargs)
    assert np.array_equal(res.track_reason, e.track_code)
    assert np.array_equal(np.where(res.pair_reason == R.OUTRANKED, 0, res.pair_reason), e.pair_code)
    assert res.pair_protected is not None and np.array_equal(res.pair_protected, e.protected)
    for mine, theirs in [(res.score, e.score), (res.t_cpa_s, e.t_cpa), (res.d_cpa_m, e.d_cpa),
                         (res.time_to_asset_s, e.t_asset), (res.pair_pk, e.pk), (res.pair_t_s, e.t_int),
                         (res.pair_tof_s, e.tof)]:
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-9)
    assert np.array_equal(res.asset_index, e.asset)
    problem = ref.Problem.from_evaluation(e)
    best = ref.objective(problem, ref.lap(problem) if cfg.doctrine == Doctrine.SHOOT_LOOK_SHOOT
                         else ref.branch_and_bound(problem))
    if res.optimal:
        assert res.objective == pytest.approx(best, rel=1e-9, abs=1e-12)


# --- assignment --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
def test_assignment_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    salvo = seed % 2 == 1
    p = ref.random_problem(rng, int(rng.integers(1, 6)), int(rng.integers(1, 4)), max_capacity=2,
                           max_shots=2 if salvo else 1)
    best = ref.brute_force(p)
    solvers = ["exact", "greedy"] if salvo else ["exact", "greedy", "lap"]
    for solver in solvers:
        t, lch, optimal, _ = solve_assignment(p.score, p.pk, p.feasible, p.shots_left, p.capacity, solver)
        shots = list(zip(t.tolist(), lch.tolist(), strict=True))
        assert ref.is_valid(p, shots), solver
        value = ref.objective(p, shots)
        if solver == "greedy":
            assert value <= best + 1e-12
        else:
            assert optimal and value == pytest.approx(best, rel=1e-12, abs=1e-12), solver
    assert ref.objective(p, ref.branch_and_bound(p)) == pytest.approx(best, rel=1e-12, abs=1e-12)
    if not salvo:
        assert ref.objective(p, ref.lap(p)) == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_lap_matches_scipy_on_larger_problems() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        p = ref.random_problem(rng, int(rng.integers(5, 80)), int(rng.integers(2, 30)), max_capacity=3)
        t, lch, _, _ = solve_assignment(p.score, p.pk, p.feasible, p.shots_left, p.capacity, "lap")
        assert ref.objective(p, list(zip(t, lch, strict=True))) == pytest.approx(ref.objective(p, ref.lap(p)),
                                                                                  rel=1e-12)


def test_exact_out_of_budget_keeps_the_greedy_answer_and_says_so() -> None:
    p = ref.random_problem(np.random.default_rng(9), 12, 6, max_capacity=2, max_shots=2, density=0.9)
    g = ref.objective(p, list(zip(*solve_assignment(p.score, p.pk, p.feasible, p.shots_left, p.capacity,
                                                   "greedy")[:2], strict=True)))
    t, lch, optimal, nodes = solve_assignment(p.score, p.pk, p.feasible, p.shots_left, p.capacity, "exact",
                                              node_budget=3)
    assert not optimal and nodes == 3
    assert ref.objective(p, list(zip(t, lch, strict=True))) >= g - 1e-12


def test_auto_solver_choice() -> None:
    two = [launcher(name="A"), launcher(name="B", position=(0.0, 1000.0, H))]
    assert evaluate([HEAD_ON], two).solver == "lap"
    salvo = FireControlConfig(doctrine=Doctrine.SALVO)
    assert evaluate([HEAD_ON], two, cfg=salvo).solver == "exact"
    big = FireControlConfig(doctrine=Doctrine.SALVO, exact_max_pairs=1)
    assert evaluate([HEAD_ON], two, cfg=big).solver == "greedy"


# --- explanations, config, edges ----------------------------------------------------------------------------


def test_explanations_are_json_ready_and_name_the_inputs() -> None:
    res = evaluate([HEAD_ON, [-R0, 0.0, H, -V, 0.0, 0.0]], assets=[AssetSpec("base", (0, 0, H), 2000.0)],
                   friendly=np.array([False, True]))
    doc = json.loads(json.dumps(res.decisions()))
    by_track = {d["track"]: d for d in doc}
    fired, friend = by_track[100], by_track[101]
    assert fired["decision"] == "fire" and fired["launchers"] == ["L"]
    assert fired["alternatives"][0]["chosen"] and fired["threat"]["rank"] == 1
    assert friend["decision"] == "FRIENDLY" and friend["inputs"]["friendly"] is True
    one = res.explain_assignment(0)
    assert one["launcher"] == "L" and one["pk"] == pytest.approx(float(res.assignments.pk[0]), abs=1e-6)


def test_no_tracks_and_no_launchers() -> None:
    res = evaluate([], [launcher()])
    assert len(res.assignments.track_index) == 0 and len(res.refusals.reason) == 0
    res = evaluate([HEAD_ON], [])
    assert len(res.assignments.track_index) == 0 and res.track_reason[0] == R.NONE
    assert list(res.refusals.reason) == [R.NO_LAUNCHER]


def test_bad_shapes_are_errors() -> None:
    fc = FireControl(FireControlConfig(), [], [launcher()], [])
    flags = (np.ones(2), np.ones(2, bool), np.zeros(2, bool), np.zeros(2, np.int32), np.zeros(2, np.int32),
             np.ones(1, bool), np.ones(1, bool), np.ones(1, np.int32), np.zeros(1))
    with pytest.raises(ValueError, match="state"):
        fc.evaluate(0.0, np.arange(2), np.zeros((2, 3)), *flags)
    with pytest.raises(ValueError, match="launcher_armed"):
        evaluate([HEAD_ON], launcher_armed=np.ones(3, bool))


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="solver"):
        FireControlConfig(solver="magic")
    with pytest.raises(ConfigError, match="protect_radius_m"):
        FireControlConfig(protect_radius_m=math.nan)
    with pytest.raises(ConfigError, match="safety_sigmas"):
        FireControlConfig(safety_sigmas=-1.0)
    with pytest.raises(ConfigError, match="min_range_m"):
        launcher(min_range_m=5.0, max_range_m=1.0)
    with pytest.raises(ConfigError, match="radius_m"):
        NoFireZone("z", (0, 0), -1.0)


def test_reason_names_are_stable() -> None:
    # summary.json carries these names: renumbering or renaming breaks readers of old runs
    assert [r.name for r in RefusalReason] == [
        "NONE", "INVALID_TRACK", "FRIENDLY", "NOT_CONFIRMED", "NO_FIRE_ZONE", "NOT_A_THREAT", "ALREADY_ENGAGED",
        "SHOTS_EXHAUSTED", "LAUNCHER_NOT_ARMED", "LAUNCHER_NOT_READY", "NO_ROUNDS", "NO_CHANNEL", "UNREACHABLE", "TOF",
        "OUT_OF_RANGE", "ALTITUDE", "SECTOR", "TOO_LATE", "INTERCEPT_IN_NO_FIRE_ZONE", "LOW_PK", "OUTRANKED",
        "NO_LAUNCHER", "PROTECTED_NEAR_INTERCEPT", "NEUTRAL", "KILL_ASSESSMENT"]


def test_specs_from_scenario() -> None:
    from hil.scenario import Scenario

    sc = Scenario.load("scenarios/raid.toml")
    assets, launchers, zones = specs_from_scenario(sc)
    assert [la.name for la in launchers] == [s.name for s in sc.launchers]
    assert launchers[0].max_range_m == sc.launchers[0].max_range_m
    assert len(assets) == len(sc.assets) and len(zones) == len(sc.no_fire_zones)


@st.composite
def _refusal_arrays(draw: st.DrawFn) -> tuple[Any, ...]:
    """One evaluation's reasons: per track (0 where the track itself is not refused), per track and launcher, the
    tracks shot at and the protected rows named (or none)."""
    n = draw(st.integers(0, 12))
    n_l = draw(st.integers(0, 3))
    codes = st.integers(0, max(int(r) for r in RefusalReason))
    track_reason = np.array(draw(st.lists(st.one_of(st.just(0), codes), min_size=n, max_size=n)), np.int8)
    pair_reason = np.array(draw(st.lists(codes, min_size=n * n_l, max_size=n * n_l)), np.int8).reshape(n, n_l)
    shots = np.array(draw(st.lists(st.integers(0, n - 1), max_size=4)) if n else [], np.int32)
    protected = (None if draw(st.booleans()) else
                 np.array(draw(st.lists(st.integers(-1, max(n - 1, 0)), min_size=n * n_l, max_size=n * n_l)),
                          np.int32).reshape(n, n_l))
    return track_reason, pair_reason, shots, protected


@settings(max_examples=300, deadline=None)
@given(_refusal_arrays())
def test_the_compiled_refusals_are_the_numpy_twins(arrays: tuple[Any, ...]) -> None:
    """FireControlResult.refusals (compiled) lists the refusals of an evaluation exactly as the numpy twin does:
    the same rows, launchers, reasons and protected tracks, in the same order and dtypes."""
    got, want = refusals_of(*arrays), refusals_of_reference(*arrays)
    for name in ("track_index", "launcher_index", "reason", "protected_index"):
        g, w = getattr(got, name), getattr(want, name)
        assert g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)


def test_refusals_of_a_shot_outside_the_tracks_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="shot_tracks names row 5 of 2 tracks"):
        refusals_of(np.zeros(2, np.int8), np.zeros((2, 1), np.int8), np.array([5], np.int32))
