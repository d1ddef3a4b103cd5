"""The plant's interceptor: a good aim kills, the seeker takes whatever true object its basket holds (friendlies
too), the nearest-to-boresight rule and lock are kept, and every detonation point is checked against the zones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.ext.firecontrol_types import LauncherSpec, NoFireZone
from hil.plant.engagement import EngagementEvent, EngagementModel, Interceptor, seeker_basket
from hil.scenario import RadarSpec, Scenario, TargetSpec
from tests.helpers import all_stages

SPEED = 1000.0
DELAY = 1.0
LAUNCHER = (0.0, 0.0, 0.0)


def target(name: str, pos: tuple[float, float, float], vel: tuple[float, float, float],
           allegiance: str = "hostile") -> TargetSpec:
    return TargetSpec(name, allegiance, "aircraft", pos, vel)


SEEKER = {"seeker_range_m": 8_000.0, "seeker_half_angle_deg": 10.0}  # the seeker these tests' geometry is drawn for


def scene(*targets: TargetSpec, pk: float = 1.0, duration_s: float = 120.0, **site: float) -> Scenario:
    return Scenario(
        name="e", duration_s=duration_s, seed=1, targets=targets, radars=(RadarSpec("r", (0.0, 0.0, 0.0)),),
        launchers=(LauncherSpec("l", LAUNCHER, interceptor_speed_mps=SPEED, launch_delay_s=DELAY, pk=pk,
                                **{**SEEKER, **site}),),  # type: ignore[arg-type]
    )


def intercept(p: tuple[float, ...], v: tuple[float, ...], t_launch: float = 0.0) -> tuple[np.ndarray, float]:
    """Intercept point and time to go of a straight-flying target (position p at t_launch) for a round leaving
    the origin DELAY later at SPEED: the smallest T >= DELAY with |p + v T| = SPEED (T - DELAY)."""
    pa, va = np.asarray(p, dtype=float), np.asarray(v, dtype=float)
    a = va @ va - SPEED**2
    b = 2.0 * (pa @ va + SPEED**2 * DELAY)
    c = pa @ pa - SPEED**2 * DELAY**2
    roots = np.roots([a, b, c])
    t = min(float(r.real) for r in roots if abs(r.imag) < 1e-9 and r.real >= DELAY)
    return pa + va * t, t


def fly(model: EngagementModel, until: float = 120.0) -> list[EngagementEvent]:
    events: list[EngagementEvent] = []
    t = model.t_s
    while t < until and model.flying:
        t += 0.1
        events += model.step(t)
    return events


HOSTILE_P, HOSTILE_V = (30_000.0, 5_000.0, 5_000.0), (-250.0, 0.0, 0.0)


def test_interceptor_aimed_at_the_intercept_point_kills_and_truth_ends() -> None:
    sc = scene(target("a", HOSTILE_P, HOSTILE_V))
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    aim, tgo = intercept(HOSTILE_P, HOSTILE_V)
    m = model.launch(0.0, 0, 7, aim, tgo, seq=3)
    assert m.acquired == -1  # nothing is chosen at launch: the seeker acquires in flight
    (event,) = fly(model)
    assert event.kind == "kill" and m.result == "killed" and m.miss_distance_m <= 15.0
    assert m.acquired == 0 and m.acquired_allegiance == "hostile"
    assert truth.ended_by[0] == "killed" and 0 not in truth.at(event.t_s + 0.1).index
    assert m.detonation_enu is not None
    assert np.linalg.norm(np.array(m.detonation_enu) - truth.state_of(0, event.t_s)[:3]) <= 15.0 + 1.0
    assert abs(event.t_s - tgo) < 0.5  # the kill happens about when the fire command said
    rec = m.record()
    assert (rec["seq"], rec["track_id"], rec["acquired"], rec["result"]) == (3, 7, 0, "killed")
    assert rec["tgo_s"] == round(tgo, 3) and rec["no_fire_zone"] == ""


def test_a_false_track_far_from_any_target_self_destructs_at_the_end_of_its_search_window() -> None:
    sc = scene(target("a", HOSTILE_P, HOSTILE_V))
    model = EngagementModel(sc.truth(), sc.launchers, seed=1)
    aim = np.array([-20_000.0, -20_000.0, 3_000.0])
    m = model.launch(0.0, 0, 9, aim, 30.0)
    (event,) = fly(model)
    assert event.kind == "self_destruct" and m.acquired == -1 and m.acquired_allegiance == ""
    # it flew through its aim point and on for one seeker range, then blew itself up there
    assert m.detonation_enu is not None
    beyond = float(np.linalg.norm(np.array(m.detonation_enu) - aim))
    assert abs(beyond - 8_000.0) < 20.0
    path = float(np.linalg.norm(aim)) + 8_000.0
    assert abs(m.end_s - (DELAY + path / SPEED)) < 0.05
    c = model.counts()
    assert c["nothing_acquired"] == 1 and c["by_result"]["self_destruct"] == 1 and c["rounds_per_target"] == {}


def test_max_time_of_flight_comes_first_when_it_is_shorter() -> None:
    sc = scene(target("a", HOSTILE_P, HOSTILE_V), max_tof_s=10.0)
    model = EngagementModel(sc.truth(), sc.launchers, seed=1)
    m = model.launch(0.0, 0, 9, np.array([-30_000.0, 0.0, 3_000.0]))
    (event,) = fly(model)
    assert event.kind == "self_destruct" and m.end_s == 10.0
    assert m.detonation_enu is not None and abs(np.linalg.norm(m.detonation_enu) - 9 * SPEED) < 20.0


def test_pk_zero_never_kills_and_the_miss_is_at_the_closest_approach() -> None:
    sc = scene(target("a", HOSTILE_P, HOSTILE_V), pk=0.0)
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    m = model.launch(0.0, 0, 1, *intercept(HOSTILE_P, HOSTILE_V))
    (event,) = fly(model)
    assert event.kind == "miss" and truth.ended_by[0] == "end"
    assert m.acquired == 0 and m.miss_distance_m <= 15.0
    assert m.detonation_enu is not None
    gap = np.linalg.norm(np.array(m.detonation_enu) - truth.state_of(0, m.end_s)[:3])
    assert abs(gap - m.miss_distance_m) < 1.0


def test_the_basket_is_a_cone_of_the_seeker_range_and_half_angle() -> None:
    r, half = 8_000.0, math.radians(10.0)

    def at(rng: float, deg: float) -> list[float]:
        a = math.radians(deg)
        return [rng * math.sin(a), rng * math.cos(a), 0.0]

    objects = np.array([at(7_990, 0), at(8_010, 0), at(5_000, 9.9), at(5_000, 10.1), at(100, -9.0), [np.nan] * 3])
    inside, angle = seeker_basket((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), objects, r, half)
    assert inside.tolist() == [True, False, True, False, True, False]
    assert np.allclose(np.degrees(angle[2:5]), [9.9, 10.1, 9.0])


def test_a_friendly_in_the_basket_near_the_aim_is_taken_and_killed() -> None:
    # a false track's aim point, and a friendly flying across it: the plant's seeker does not read IFF
    friendly_p, friendly_v = (-2_000.0, 20_000.0, 5_000.0), (100.0, 0.0, 0.0)
    sc = scene(target("f", friendly_p, friendly_v, "friendly"))
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    aim, tgo = intercept(friendly_p, friendly_v)
    m = model.launch(0.0, 0, 4, aim + np.array([150.0, 0.0, 100.0]), tgo)  # near the aim, not on it
    (event,) = fly(model)
    assert m.acquired == 0 and m.acquired_allegiance == "friendly"
    assert event.kind == "kill" and truth.ended_by[0] == "killed"
    c = model.counts()
    assert (c["friendly_acquired"], c["friendly_killed"], c["neutral_acquired"], c["neutral_killed"]) == (1, 1, 0, 0)
    assert c["acquired"] == {"hostile": 0, "friendly": 1, "neutral": 0} and c["protected_in_basket"] == 1
    assert c["rounds_per_target"] == {"0": 1} and c["max_rounds_per_target"] == 1


def test_a_friendly_outside_the_cone_is_not_taken() -> None:
    # 2 km beside the aim point and moving away: more than 10 degrees off the boresight all through the window
    sc = scene(target("f", (2_000.0, 20_000.0, 5_000.0), (50.0, 0.0, 0.0), "friendly"))
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    m = model.launch(0.0, 0, 4, np.array([0.0, 20_000.0, 5_000.0]), 21.0)
    (event,) = fly(model)
    assert event.kind == "self_destruct" and m.acquired == -1 and truth.ended_by[0] == "end"
    assert model.counts()["friendly_acquired"] == 0


def test_a_friendly_on_the_boresight_but_beyond_seeker_range_is_not_taken() -> None:
    # straight ahead, 20 km past the aim point and running away: never within 8 km before the window closes
    sc = scene(target("f", (0.0, 40_000.0, 5_000.0), (0.0, 300.0, 0.0), "friendly"))
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    m = model.launch(0.0, 0, 4, np.array([0.0, 20_000.0, 5_000.0]), 21.0)
    (event,) = fly(model)
    assert event.kind == "self_destruct" and m.acquired == -1 and truth.ended_by[0] == "end"


@pytest.mark.parametrize(("speed", "aspect_deg", "half_angle_deg", "result"), [
    (250.0, 0.0, 10.0, "killed"), (250.0, 90.0, 10.0, "self_destruct"), (250.0, 90.0, 20.0, "killed"),
    (150.0, 90.0, 10.0, "killed"),
])
def test_a_crossing_target_beyond_the_lead_angle_is_outside_a_velocity_cone(
        speed: float, aspect_deg: float, half_angle_deg: float, result: str) -> None:
    """docs/ENGAGEMENT.md: on a collision course the target sits up to asin(v_target / v_round) off the
    velocity (14.5 degrees at 250 m/s), so a 10 degree basket never holds a fast crossing target."""
    a = math.radians(aspect_deg)
    v = (speed * math.sin(a), -speed * math.cos(a), 0.0)
    p = (-v[0] * 10.0, 20_000.0 - v[1] * 10.0, 5_000.0)
    sc = scene(target("h", p, v), duration_s=80.0, seeker_half_angle_deg=half_angle_deg)
    model = EngagementModel(sc.truth(), sc.launchers, seed=1)
    m = model.launch(0.0, 0, 1, *intercept(p, v))
    fly(model)
    assert m.result == result


def two_in_the_basket(pk: float = 1.0) -> tuple[Scenario, np.ndarray]:
    """A round flying north at 5 km height, aimed at (0, 20 km); when its window opens (13 s, 12 km north) a
    hostile 5 km ahead sits 9 degrees off the boresight, a friendly 7.5 km ahead 2.3 degrees off."""
    v = (0.0, 5.0, 0.0)
    t_open = DELAY + 12.0
    hostile = target("h", (800.0, 17_000.0 - 5.0 * t_open, 5_000.0), v)
    friendly = target("f", (300.0, 19_500.0 - 5.0 * t_open, 5_000.0), v, "friendly")
    return scene(hostile, friendly, pk=pk, duration_s=60.0), np.array([0.0, 20_000.0, 5_000.0])


def test_the_seeker_takes_the_object_nearest_its_boresight_not_the_nearest_in_range() -> None:
    sc, aim = two_in_the_basket()
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    launcher = (0.0, 0.0, 5_000.0)
    model.launchers = (LauncherSpec("l", launcher, interceptor_speed_mps=SPEED, launch_delay_s=DELAY,
                                    **SEEKER),)  # type: ignore[arg-type]
    m = model.launch(0.0, 0, 4, aim, 21.0)
    fly(model)
    assert m.acquired == 1 and m.acquired_allegiance == "friendly"  # the hostile was closer, the friendly nearer
    assert set(m.basket_at_acquisition) == {0, 1} and abs(m.acquire_s - (DELAY + 12.0)) < 0.02
    assert m.result == "killed" and truth.ended_by == ["end", "killed"]


def test_no_reselection_after_lock_a_lost_lock_self_destructs() -> None:
    sc, aim = two_in_the_basket()
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    model.launchers = (LauncherSpec("l", (0.0, 0.0, 5_000.0), interceptor_speed_mps=SPEED, launch_delay_s=DELAY,
                                    **SEEKER),)  # type: ignore[arg-type]
    m = model.launch(0.0, 0, 4, aim, 21.0)
    model.step(13.1)
    assert m.acquired == 1
    truth.end(1, 13.1, "killed")  # another round got it first
    speed = float(np.linalg.norm(m.vel))
    inside, _ = seeker_basket(m.pos, (m.vel[0] / speed, m.vel[1] / speed, m.vel[2] / speed),
                              truth.states_at(np.array([0]), np.array([13.1]))[:, :3], 8_000.0, math.radians(10.0))
    assert inside[0]  # the hostile is still in the basket, yet the round does not take it
    (event,) = fly(model)
    assert event.kind == "self_destruct" and m.acquired == 1 and 13.1 <= m.end_s <= 13.1 + 0.01
    assert truth.ended_by == ["end", "killed"] and model.counts()["rounds_per_target"] == {"1": 1}


def test_self_destruct_point_inside_a_no_fire_zone_is_flagged() -> None:
    sc = scene(target("a", HOSTILE_P, HOSTILE_V))
    aim = np.array([0.0, 20_000.0, 3_000.0])
    # the round passes over the aim on a slightly climbing path: it blows up about 8 km further north
    zones = (NoFireZone("town", (0.0, 28_000.0), 1_000.0), NoFireZone("port", (0.0, 20_000.0), 500.0))
    model = EngagementModel(sc.truth(), sc.launchers, seed=1, no_fire_zones=zones)
    m = model.launch(0.0, 0, 9, aim, 21.0)
    (event,) = fly(model)
    assert event.kind == "self_destruct" and m.no_fire_zone == "town"
    c = model.counts()
    assert (c["nfz_detonations"], c["nfz_kills"]) == (1, 0)
    high = (NoFireZone("town-low", (0.0, 28_000.0), 1_000.0, z_min_m=0.0, z_max_m=1_000.0),)
    model = EngagementModel(sc.truth(), sc.launchers, seed=1, no_fire_zones=high)
    m = model.launch(0.0, 0, 9, aim, 21.0)
    fly(model)
    assert m.result == "self_destruct" and m.no_fire_zone == ""  # above the zone's ceiling


def test_a_kill_inside_a_no_fire_zone_is_flagged() -> None:
    aim, tgo = intercept(HOSTILE_P, HOSTILE_V)
    sc = scene(target("a", HOSTILE_P, HOSTILE_V))
    zones = (NoFireZone("hospital", (float(aim[0]), float(aim[1])), 2_000.0),)
    model = EngagementModel(sc.truth(), sc.launchers, seed=1, no_fire_zones=zones)
    m = model.launch(0.0, 0, 1, aim, tgo)
    fly(model)
    assert m.result == "killed" and m.no_fire_zone == "hospital"
    c = model.counts()
    assert (c["nfz_detonations"], c["nfz_kills"], c["killed"]["hostile"]) == (1, 1, 1)


def raid_outcomes(seed: int) -> list[tuple[str, int, float]]:
    lanes = [(30_000.0 + 2_000.0 * k, -12_000.0 + 4_000.0 * k, 5_000.0) for k in range(6)]
    sc = scene(*(target(f"h{k}", p, HOSTILE_V) for k, p in enumerate(lanes)), pk=0.5)
    model = EngagementModel(sc.truth(), sc.launchers, seed=seed)
    for k, p in enumerate(lanes):
        model.launch(0.0, 0, k, *intercept(p, HOSTILE_V))
    fly(model)
    return [(m.result, m.acquired, round(m.end_s, 6)) for m in sorted(model.finished, key=lambda m: m.ident)]


def test_a_seed_repeats_its_outcomes_and_seeds_differ() -> None:
    first = raid_outcomes(5)
    assert raid_outcomes(5) == first
    assert [a for _, a, _ in first] == list(range(6))  # each round took the target it was aimed at
    assert len({tuple(r for r, _, _ in raid_outcomes(s)) for s in range(1, 9)}) > 1  # pk 0.5 is drawn


def test_counts_of_a_fresh_model_name_every_field() -> None:
    sc = scene(target("a", HOSTILE_P, HOSTILE_V))
    c = EngagementModel(sc.truth(), sc.launchers, seed=1).counts()
    assert c["rounds_launched"] == 0 and c["by_result"] == {"flying": 0, "killed": 0, "missed": 0, "self_destruct": 0}
    assert set(c) == {"rounds_launched", "by_result", "acquired", "killed", "friendly_acquired", "neutral_acquired",
                      "friendly_killed", "neutral_killed", "protected_in_basket", "nfz_detonations", "nfz_kills",
                      "nothing_acquired", "rounds_per_target", "max_rounds_per_target"}


def check_acquisition(model: EngagementModel, m: Interceptor) -> None:
    """The acquired object was in the basket when the round locked, and nothing in it was nearer the boresight."""
    assert m.acquire_enu is not None and m.acquire_boresight is not None
    live = model.truth.alive(m.acquire_s)
    live = live[live != m.acquired] if m.result == "killed" else live
    rows = np.union1d(live, [m.acquired]).astype(np.int64)
    pos = model.truth.states_at(rows, np.full(len(rows), m.acquire_s))[:, :3]
    rel = pos - np.array(m.acquire_enu)
    dist = np.linalg.norm(rel, axis=1)
    off = np.degrees(np.arccos(np.clip(rel @ np.array(m.acquire_boresight) / dist, -1.0, 1.0)))
    k = int(np.nonzero(rows == m.acquired)[0][0])
    assert dist[k] <= 8_000.0 + 1e-6 and off[k] <= 10.0 + 1e-6
    in_basket = (dist <= 8_000.0) & (off <= 10.0)
    assert off[k] <= off[in_basket].min() + 1e-9
    assert set(rows[in_basket].tolist()) == set(m.basket_at_acquisition)


objects = st.lists(
    st.tuples(st.floats(-3_000.0, 3_000.0), st.floats(-3_000.0, 3_000.0), st.floats(-1_500.0, 1_500.0),
              st.floats(0.0, 2 * math.pi), st.floats(30.0, 300.0), st.sampled_from(["hostile", "friendly", "neutral"])),
    min_size=1, max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects=objects, aim_bearing=st.floats(0.0, 2 * math.pi), aim_range=st.floats(8_000.0, 30_000.0),
       pk=st.sampled_from([0.0, 1.0]))
def test_every_acquired_object_was_in_the_basket_nearest_the_boresight(
        objects: list[tuple[float, float, float, float, float, str]], aim_bearing: float, aim_range: float,
        pk: float) -> None:
    aim = np.array([aim_range * math.sin(aim_bearing), aim_range * math.cos(aim_bearing), 5_000.0])
    tgo = DELAY + float(np.linalg.norm(aim)) / SPEED
    specs = []
    for i, (dx, dy, dz, heading, speed, allegiance) in enumerate(objects):
        v = (speed * math.sin(heading), speed * math.cos(heading), 0.0)
        # where the object is at the commanded time to go: near the aim point then, anywhere before
        p = (aim[0] + dx - v[0] * tgo, aim[1] + dy - v[1] * tgo, aim[2] + dz)
        specs.append(target(f"o{i}", p, v, allegiance))
    sc = scene(*specs, pk=pk, duration_s=60.0)
    model = EngagementModel(sc.truth(), sc.launchers, seed=1)
    m = model.launch(0.0, 0, 1, aim, tgo)
    fly(model, 60.0)
    assert m.result in ("killed", "missed", "self_destruct") and m.detonation_enu is not None
    if m.acquired < 0:
        assert m.result == "self_destruct" and m.basket_at_acquisition == ()
        return
    check_acquisition(model, m)
    assert m.acquired_allegiance == objects[m.acquired][5]
    if m.result == "killed":
        assert model.truth.ended_by[m.acquired] == "killed" and m.miss_distance_m <= 15.0


def test_the_journal_takes_outcomes_in_stages_while_the_run_goes_on() -> None:
    """The run's journal builds the outcomes a stage at a time in the loop, and between its stages the host adds
    refusals and the plant launches rounds: each stage works on what it took (a refusal added mid-way made the
    dictionary change size under it, and the real-time run died). Unchanged between stages, it is outcomes()'."""
    from hil.plant.outcomes import outcomes, outcomes_in_stages

    sc = scene(*(target(f"t{k}", (20_000.0 + 100.0 * k, 5_000.0, 3_000.0), (-200.0, 0.0, 0.0)) for k in range(30)))
    truth = sc.truth()
    model = EngagementModel(truth, sc.launchers, seed=1)
    for k in range(250):
        model.launch(0.01 * k, 0, 1000 + k, (15_000.0, 5_000.0, 3_000.0), 10.0, seq=k + 1)
    refusals = {(2000 + k, 0, "OUT_OF_RANGE"): {"reason": "OUT_OF_RANGE"} for k in range(2_500)}
    track_truth = {2000 + k: k % 30 for k in range(2_500)}
    args = (sc, truth, model, track_truth, 60.0, refusals, set(track_truth))
    assert outcomes(*args) == all_stages(outcomes_in_stages(*args))[0]
    extra = iter(range(10_000))

    def the_run_goes_on() -> None:
        k = next(extra)
        refusals[(9000 + k, 0, "NOT_CONFIRMED")] = {"reason": "NOT_CONFIRMED"}
        model.launch(5.0, 0, 5000 + k, (15_000.0, 5_000.0, 3_000.0), 10.0, seq=1000 + k)

    (rows, plant), _ = all_stages(outcomes_in_stages(*args), the_run_goes_on)
    assert len(rows) == 30 and plant["rounds_launched"] >= 250

