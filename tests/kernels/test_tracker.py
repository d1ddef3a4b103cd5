"""The tracking kernel: agreement with the numpy reference, and the behaviour a user of the tracks sees."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from hil.emulators.radar_model import PlotSet, RadarModel
from hil.errors import ConfigError
from hil.ext.reference.tracker import ReferenceTracker
from hil.ext.tracker import Tracker, solve_assignment
from hil.ext.tracker_types import ReorderBuffer, TrackerConfig, TrackStatus
from hil.geo import enu_to_polar, range_rate
from hil.measure.metrics import TrackingScore, gospa
from hil.plant.radars import scan_plots
from hil.scenario import Manoeuvre, RadarSpec, Scenario, TargetSpec, tracking_scenario
from tests.helpers import accuracy, feed

TWO_PI = 2.0 * math.pi


def run_scene(sc: Scenario, cfg: TrackerConfig, radars: list[int] | None = None,
              seed: int | None = None) -> tuple[Tracker, TrackingScore]:
    """Track a scenario scan by scan (all radars merged in time order), scoring confirmed tracks every scan."""
    radars = list(range(len(sc.radars))) if radars is None else radars
    truth = sc.truth()
    trk = Tracker(cfg, np.array([r.site for r in sc.radars]))
    score = TrackingScore()
    step: list[tuple[int, PlotSet]] = []
    for t_end, i, p, _ in scan_plots(sc, truth, seed=seed):
        step.append((i, p))
        if i < len(sc.radars) - 1:
            continue
        parts = [(k, q) for k, q in step if k in radars]
        step = []
        merged = PlotSet.concat([q for _, q in parts])
        order = np.argsort(np.concatenate([q.t_s for _, q in parts]), kind="stable")
        sensors = np.concatenate([np.full(len(q), k) for k, q in parts])[order]
        feed(trk, merged, sensors)
        for k in radars:
            trk.sector_swept(k, t_end, 0.0, TWO_PI)
        snap, tracks = truth.at(t_end), trk.tracks(t_end)
        c = tracks.confirmed
        score.step(snap.index, snap.state[:, :3], tracks.track_id[c], tracks.state[c, :3])
    return trk, score


# --- kernels against references ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(0.0, 0.7))
def test_assignment_is_optimal_like_scipy(n: int, seed: int, forbidden: float) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.random((n, n)) * 10
    cost[rng.random((n, n)) < forbidden] = 1e9  # gated-out pairs, as the kernel writes them
    rows = solve_assignment(np.ascontiguousarray(cost))
    assert sorted(rows.tolist()) == list(range(n))  # a permutation
    r, c = linear_sum_assignment(cost)
    assert cost[np.arange(n), rows].sum() == pytest.approx(cost[r, c].sum(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(("model", "n_radars"), [("cv", 1), ("imm", 1), ("imm", 2)])
def test_kernel_agrees_with_numpy_reference(model: str, n_radars: int) -> None:
    """Same plots, same sweeps: same track numbers, statuses and states (the reference has no pre-gate)."""
    sc = tracking_scenario(8, seed=2, duration_s=24, n_radars=n_radars, clutter_per_scan=5, turning=2,
                           min_range_m=5_000, max_range_m=40_000)
    sites = np.array([r.site for r in sc.radars])
    cfg = TrackerConfig(model=model)
    kernel, ref = Tracker(cfg, sites), ReferenceTracker(cfg, sites)
    compared = most_confirmed = 0
    for t_end, i, p, _ in scan_plots(sc, step_s=0.25):
        for trk in (kernel, ref):
            feed(trk, p, i)
            trk.sector_swept(i, t_end, ((t_end - 0.25) * TWO_PI) % TWO_PI, (t_end * TWO_PI) % TWO_PI)
        a, b = kernel.tracks(t_end), ref.tracks(t_end)
        most_confirmed = max(most_confirmed, int(a.confirmed.sum()))
        assert a.track_id.tolist() == b.track_id.tolist(), t_end
        assert a.status.tolist() == b.status.tolist()
        assert a.mode3a.tolist() == b.mode3a.tolist()
        np.testing.assert_allclose(a.state, b.state, rtol=1e-6, atol=1e-2)  # numeric Jacobians in the reference
        np.testing.assert_allclose(a.cov, b.cov, rtol=1e-4, atol=1e-2)
        ids, mu = kernel.model_probabilities()  # the turn models are mirror images: their weights tell them apart
        ref_mu = {k.track_id: k.mu for k in ref.live}
        np.testing.assert_allclose(mu, np.array([ref_mu[i] for i in ids]).reshape(mu.shape), rtol=1e-5, atol=1e-7)
        compared += len(a.track_id)
    assert most_confirmed >= 6  # the comparison covered confirmed tracks (of the 8 targets)
    assert kernel.late_plots == ref.late_plots
    assert compared > 100


# --- behaviour ----------------------------------------------------------------------------------------------


def one_target(turn_g: float = 0.0, pd: float = 1.0, clutter: float = 0.0, mode3a: int = -1,
               duration_s: float = 80.0) -> Scenario:
    target = TargetSpec(name="a", allegiance="hostile", kind="aircraft", position=(-8_000.0, 40_000.0, 5_000.0),
                        velocity=(250.0, 0.0, 0.0), mode3a=mode3a,
                        manoeuvres=(Manoeuvre(start_s=30.0, duration_s=20.0, turn_g=turn_g),) if turn_g else ())
    radar = RadarSpec(name="r", site=(0.0, 0.0, 10.0), pd=pd, clutter_per_scan=clutter)
    return Scenario(name="one", duration_s=duration_s, seed=11, targets=(target,), radars=(radar,))


def test_imm_holds_a_4g_turn_where_cv_alone_breaks() -> None:
    sc = one_target(turn_g=4.0)
    breaks = {}
    for model in ("imm", "cv"):
        trk, score = run_scene(sc, TrackerConfig(model=model))
        breaks[model] = score.breaks + score.switches
        if model == "imm":
            assert trk.new_tracks == 1 and trk.deleted == 0  # one track from start to end
            assert score.localisation_sum / score.steps < 150.0
    assert breaks["imm"] == 0
    assert breaks["cv"] >= 1  # the same CV model on its own loses the target in the turn


@pytest.mark.parametrize("turn_g", [4.0, -4.0])
def test_a_head_on_4g_turn_far_out_keeps_its_track(turn_g: float) -> None:
    """Head-on at 95 km a turn moves range-rate alike either way and the cross-range noise (330 m) hides the
    sense for seconds: a single turn model locks onto the wrong sense and loses the target; one turn
    model per side holds it, whichever way it turns."""
    target = TargetSpec(name="a", allegiance="hostile", kind="aircraft", position=(2_000.0, 95_000.0, 6_000.0),
                        velocity=(0.0, -220.0, 0.0),
                        manoeuvres=(Manoeuvre(start_s=40.0, duration_s=20.0, turn_g=turn_g),))
    sc = Scenario(name="head-on", duration_s=90.0, seed=5, targets=(target,),
                  radars=(RadarSpec(name="r", site=(0.0, 0.0, 10.0), clutter_per_scan=5.0),))
    trk, score = run_scene(sc, TrackerConfig())
    assert score.breaks + score.switches == 0
    assert trk.confirmed == 1  # one track from start to end, no second one started on the target
    assert score.localisation_sum / score.steps < 250.0


def test_every_turning_target_of_the_reference_scene_keeps_its_track() -> None:
    """40 targets, one radar, 300 scans: each 4 g turner is held by one track number through its turn."""
    result = accuracy(40, 300)
    assert result["turners"] == 5
    assert result["turners_lost"] == 0, result


@pytest.mark.parametrize(("field", "value"), [("turn_entry_g", -1.0), ("turn_entry_sigma_g", math.nan),
                                            ("turn_min_speed_mps", 0.0), ("model", "ct"), ("imm_initial_ct", 1.5)])
def test_a_bad_tracker_setting_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TrackerConfig(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("settings", [{"imm_initial_ct": 0.0}, {"imm_initial_ct": 1.0},
                                      {"imm_cv_to_ct_per_s": 0.0, "imm_ct_to_cv_per_s": 1e3}])
def test_extreme_but_allowed_imm_settings_keep_the_track(settings: dict[str, Any]) -> None:
    """Switching rates or a first turn probability at their limits leave no model unreachable: no NaN state,
    the target is still tracked."""
    trk, score = run_scene(one_target(duration_s=30.0), TrackerConfig(**settings))
    tracks = trk.tracks()
    assert np.isfinite(tracks.state).all() and np.isfinite(tracks.cov).all()
    assert trk.confirmed == 1 and score.breaks == 0


def test_crossing_targets_keep_their_identities() -> None:
    sc = tracking_scenario(16, seed=7, duration_s=120, crossing_pairs=8, turning=0, clutter_per_scan=20)
    _, score = run_scene(sc, TrackerConfig())
    assert score.switches == 0
    assert score.gospa_per_target < 120.0


def test_two_radars_fused_beat_either_radar_alone() -> None:
    sc = tracking_scenario(12, seed=2, duration_s=90, n_radars=2, turning=2, crossing_pairs=1)
    loc = {}
    for name, radars in (("first", [0]), ("second", [1]), ("both", [0, 1])):
        _, score = run_scene(sc, TrackerConfig(), radars)
        loc[name] = score.localisation_sum / max(score.truth_steps - score.missed_sum / 500.0, 1)
    assert loc["both"] < 0.85 * min(loc["first"], loc["second"]), loc


def test_m_of_n_confirmation_and_miss_deletion() -> None:
    sc = one_target(duration_s=12.0)
    truth = sc.truth()
    model = RadarModel(sc.radars[0], seed=1)
    trk = Tracker(TrackerConfig(confirm_m=3, confirm_n=4, delete_misses=3), np.array([sc.radars[0].site]))
    statuses = []
    for k in range(6):
        feed(trk, model.sweep(k, k + 1.0, np.array([0]), np.array([-1]), truth.states_at), 0)
        trk.sector_swept(0, k + 1.0, 0.0, TWO_PI)
        statuses.append(TrackStatus(trk.tracks().status[0]))
        # fire control's view
        assert len(trk.tracks(confirmed_only=True).track_id) == (statuses[-1] == TrackStatus.CONFIRMED)
    # tentative until its third hit, never reported confirmed before
    assert statuses == [TrackStatus.TENTATIVE] * 2 + [TrackStatus.CONFIRMED] * 4
    for k in range(6, 9):  # the target goes silent
        trk.sector_swept(0, k + 1.0, 0.0, TWO_PI)
    assert trk.n_tracks == 0 and trk.deleted == 1


def test_a_sweep_elsewhere_is_not_a_miss() -> None:
    sc = one_target(duration_s=4.0)
    truth = sc.truth()
    model = RadarModel(sc.radars[0], seed=1)
    trk = Tracker(TrackerConfig(delete_misses=2), np.array([sc.radars[0].site]))
    for k in range(4):
        feed(trk, model.sweep(k, k + 1.0, np.array([0]), np.array([-1]), truth.states_at), 0)
        trk.sector_swept(0, k + 1.0, 0.0, TWO_PI)
    assert trk.tracks().status.tolist() == [TrackStatus.CONFIRMED]
    az = float(enu_to_polar(trk.tracks().state[0, :3])[1])  # about 348 degrees: north-north-west
    for k in range(10):  # the beam sweeps only the opposite half, wrapping through nothing near the target
        trk.sector_swept(0, 5.0 + k, az + 0.5 * math.pi, az + 1.5 * math.pi)
    assert trk.n_tracks == 1
    trk.sector_swept(0, 16.0, az - 0.1, az + 0.1)  # a sector around the target, through north
    trk.sector_swept(0, 17.0, az - 0.1, az + 0.1)
    assert trk.n_tracks == 0


def test_track_numbers_are_never_reused_and_an_identity_outlasts_two_silent_plots() -> None:
    sc = one_target(duration_s=8.0, mode3a=0o4021)
    truth = sc.truth()
    model = RadarModel(sc.radars[0], seed=1)
    trk = Tracker(TrackerConfig(delete_misses=1), np.array([sc.radars[0].site]))
    seen: list[int] = []
    for k in range(8):
        p = model.sweep(k, k + 1.0, np.array([0]), np.array([0o4021]), truth.states_at)
        if k >= 2:
            p.mode3a[:] = -1  # no more IFF replies
        if k != 4:
            feed(trk, p, 0)
        trk.sector_swept(0, k + 1.0, 0.0, TWO_PI)
        snap = trk.tracks()
        seen.extend(snap.track_id.tolist())
        if k in (2, 3):  # two replies established the code; two plots without one are not evidence enough
            assert snap.mode3a.tolist() == [0o4021]
    assert trk.deleted == 1  # the missed scan deleted the first track
    assert sorted(set(seen)) == [1, 2]  # the new one got a new number
    assert trk.tracks().mode3a.tolist() == [-1]  # never saw a reply


@pytest.mark.parametrize("capacity", [8, 64])
def test_snapshots_come_in_track_id_order_while_slots_are_reused(capacity: int) -> None:
    """Tentative tracks start and die every scan, their slots taken by newer tracks, in a table that runs
    full or not: every snapshot lists each live track once, by id, whether snapshots come often or rarely."""
    trk = Tracker(TrackerConfig(), np.zeros((1, 3)), capacity=capacity)
    rng = np.random.default_rng(2)
    for k in range(60):
        n = int(rng.integers(1, 12))
        trk.update(np.full(n, float(k)), 0, rng.uniform(5e3, 4e4, n), rng.uniform(0.0, TWO_PI, n), np.full(n, 0.05),
                   None, None)
        trk.sector_swept(0, k + 0.5, 0.0, TWO_PI)
        if k % 7 in (0, 6) or k > 50:
            ids, _ = trk.model_probabilities()
            snap = trk.tracks(k + 0.5)
            assert snap.track_id.tolist() == ids.tolist() and len(ids) == trk.n_tracks
            confirmed = trk.tracks(k + 0.5, confirmed_only=True)
            for mine, theirs in zip(confirmed, snap, strict=True):
                np.testing.assert_array_equal(mine, np.asarray(theirs)[snap.confirmed])
    assert trk.deleted > 20 and (trk.dropped_full > 0) == (capacity == 8)  # slots were freed and reused


def test_late_plots_are_counted_and_not_applied() -> None:
    sc = one_target(duration_s=6.0)
    truth = sc.truth()
    model = RadarModel(sc.radars[0], seed=1)
    trk = Tracker(TrackerConfig(), np.array([sc.radars[0].site]))
    batches = [model.sweep(k, k + 1.0, np.array([0]), np.array([-1]), truth.states_at) for k in range(6)]
    for p in batches[:5]:
        feed(trk, p, 0)
    before = trk.tracks()
    feed(trk, batches[1], 0)  # a replay of an old dwell
    assert trk.late_plots == len(batches[1])
    after = trk.tracks()
    np.testing.assert_array_equal(before.state, after.state)
    feed(trk, batches[5], 0)
    assert trk.late_plots == len(batches[1]) and trk.plots_used == sum(len(b) for b in batches) - 1


def test_reorder_window_puts_two_streams_in_time_order() -> None:
    sc = tracking_scenario(6, seed=4, duration_s=20, n_radars=2, clutter_per_scan=3)
    sites = np.array([r.site for r in sc.radars])
    dwells: list[tuple[int, float, PlotSet]] = [(i, t_end, p) for t_end, i, p, _ in scan_plots(sc, step_s=0.1)]

    def sweep(trk: Tracker, i: int, t_end: float) -> None:  # the beam turns once a second from north
        trk.sector_swept(i, t_end, ((t_end - 0.1) * TWO_PI) % TWO_PI, (t_end * TWO_PI) % TWO_PI)

    ordered = Tracker(TrackerConfig(), sites)
    for k in range(0, len(dwells), 2):  # both radars' dwells of a step merged in time order
        (i0, t_end, p0), (i1, _, p1) = dwells[k], dwells[k + 1]
        order = np.argsort(np.concatenate([p0.t_s, p1.t_s]), kind="stable")
        feed(ordered, PlotSet.concat([p0, p1]), np.concatenate([np.full(len(p0), i0), np.full(len(p1), i1)])[order])
        sweep(ordered, i0, t_end)
        sweep(ordered, i1, t_end)
    windowed = Tracker(TrackerConfig(reorder_window_s=0.45), sites)
    naive = Tracker(TrackerConfig(), sites)
    # radar 2's dwells (0.1 s each) and sector reports arrive 0.3 s late: three dwells behind radar 1's
    late_order = sorted(range(len(dwells)), key=lambda k: k + (6.5 if dwells[k][0] == 1 else 0))
    for k in late_order:
        i, t_end, p = dwells[k]
        for trk in (windowed, naive):
            feed(trk, p, i)
            sweep(trk, i, t_end)
    windowed.flush()
    assert windowed.late_plots == 0 and naive.late_plots > 0
    assert windowed.plots_used >= 0.97 * ordered.plots_used  # the window lost nothing that mattered
    a, b = windowed.tracks(), ordered.tracks()
    ca, cb = a.confirmed, b.confirmed
    assert ca.sum() == cb.sum() == 6
    assert gospa(a.state[ca, :3], b.state[cb, :3]).total < 6 * 50.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=5), min_size=1, max_size=8),
       st.lists(st.floats(0.0, 10.0), max_size=4), st.floats(0.0, 3.0))
def test_reorder_buffer_releases_in_time_order(batches: list[list[float]], sweeps: list[float],
                                               window: float) -> None:
    buf = ReorderBuffer(window)
    released: list[float] = []
    for k, times in enumerate(batches):
        t = np.array(times)
        late = t < buf.released_s
        buf.push_plots((t[~late], np.full(int((~late).sum()), k)))
        if k < len(sweeps):
            buf.push_sweep(sweeps[k], (sweeps[k],))
        for unit in buf.pop_ready():
            released.extend(unit[1].tolist() if unit[0] == "plots" else [unit[1]])
    for unit in buf.pop_ready(math.inf):
        released.extend(unit[1].tolist() if unit[0] == "plots" else [unit[1]])
    assert len(buf) == 0
    plots_only = [x for x in released if x not in sweeps]
    assert plots_only == sorted(plots_only)  # plots never go back in time


def test_malformed_plots_are_counted_never_raised() -> None:
    trk = Tracker(TrackerConfig(), np.zeros((1, 3)))
    nan, inf = math.nan, math.inf
    trk.update(np.array([1.0, 1.0, 1.0, 1.0, nan, 1.0]), np.array([0, 0, 0, 0, 0, 7]),
               np.array([nan, -5.0, 1e4, 1e4, 1e4, 1e4]), np.array([0.1, 0.1, inf, 0.1, 0.1, 0.1]),
               np.array([0.01, 0.01, 0.01, 2.0, 0.01, 0.01]), np.full(6, nan), np.full(6, -1))
    assert trk.bad_plots == 6 and trk.n_tracks == 0 and trk.plots_in == 6
    # an infinite range-rate is no range-rate: the plot still starts a track, with finite numbers
    trk.update(np.array([2.0]), 0, np.array([1e4]), np.array([0.1]), np.array([0.01]), np.array([inf]), None)
    assert trk.n_tracks == 1 and np.all(np.isfinite(trk.tracks(3.0).state))
    with pytest.raises(ValueError, match="same length"):
        trk.update(np.zeros(2), 0, np.zeros(3), np.zeros(2), np.zeros(2), None, None)


WILD = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e300])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-2, 3),
                          WILD | st.floats(-1e7, 1e7), WILD | st.floats(-20.0, 20.0), WILD | st.floats(-3.0, 3.0),
                          WILD | st.floats(-1e4, 1e4), st.integers(-5, 4095)), max_size=40))
def test_fuzzed_batches_never_crash_and_every_plot_is_accounted(rows: list[tuple[float, ...]]) -> None:
    trk = Tracker(TrackerConfig(), np.array([[0.0, 0.0, 0.0], [30_000.0, 0.0, 0.0]]), capacity=16)
    for half in (rows[: len(rows) // 2], rows[len(rows) // 2:]):
        if not half:
            continue
        t, s, r, az, el, rr, m3 = (np.array(c) for c in zip(*half, strict=True))
        trk.update(t, s, r, az, el, rr, m3)
        trk.sector_swept(0, 5.0, 0.0, TWO_PI)
    c = trk.counters()
    assert c["plots_in"] == len(rows)
    # every plot was bad, late, used by a track, or left over (started a track, dropped when full, or near one)
    assert c["bad_plots"] + c["late_plots"] + c["plots_used"] + c["new_tracks"] + c["dropped_full"] <= len(rows)
    assert trk.n_tracks <= 16
    snap = trk.tracks(6.0)
    assert np.all(np.isfinite(snap.state))


def test_capacity_is_a_counted_limit() -> None:
    trk = Tracker(TrackerConfig(), np.zeros((1, 3)), capacity=3)
    az = np.linspace(0.0, 6.0, 6)
    trk.update(np.full(6, 1.0), 0, np.full(6, 20_000.0), az, np.full(6, 0.1), None, None)
    assert trk.n_tracks == 3 and trk.dropped_full == 3


def test_range_rate_starts_a_track_moving() -> None:
    """One plot with a range-rate gives the new track its radial velocity."""
    trk = Tracker(TrackerConfig(), np.zeros((1, 3)))
    trk.update(np.array([0.0]), 0, np.array([30_000.0]), np.array([0.3]), np.array([0.05]), np.array([-200.0]), None)
    x = trk.tracks().state[0]
    assert float(range_rate(x[:3], x[3:])) == pytest.approx(-200.0, abs=1e-6)
