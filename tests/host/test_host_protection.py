"""What the host shows fire control as protected, whatever tracker is plugged in: a track it cannot identify yet
beside a target, a friendly track the tracker dropped a moment ago, a friendly track whose code the tracker lost.

Each of these once let a round fly at a hostile with its escort beside it (safety/escorts, seed 1: the escort's
track was tentative, its code not yet established, when fire control fired at the bomber 600 m away; the round's
seeker took the escort)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.ext.tracker_types import TrackSnapshot, TrackStatus
from hil.host.host import PROTECT_HOLD_SCANS, Host
from hil.host.plugins import make_fire_control
from hil.scenario import Scenario
from tests.helpers import ShownTracks

FRIENDLY_CODE = 0o4001


def snapshot(rows: list[tuple[int, int, float, float, int]]) -> TrackSnapshot:
    """Rows (track id, status, x, y, mode3a), at 6 km, moving east at 200 m/s, as a snapshot."""
    n = len(rows)
    state = np.zeros((n, 6))
    for k, (_, _, x, y, _) in enumerate(rows):
        state[k] = (x, y, 6000.0, 200.0, 0.0, 0.0)
    cov = np.tile(np.diag([100.0, 100.0, 100.0, 25.0, 25.0, 25.0]), (n, 1, 1))
    return TrackSnapshot(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int8), state,
                         cov, np.zeros(n), np.array([r[4] for r in rows], np.int32), np.full(n, 5, np.int32))


CONFIRMED, TENTATIVE = int(TrackStatus.CONFIRMED), int(TrackStatus.TENTATIVE)


@pytest.fixture
def host() -> Host:
    sc = Scenario.load("safety/escorts")
    assert FRIENDLY_CODE in sc.friendly_codes
    return Host(sc, ShownTracks(snapshot), make_fire_control(sc, None))


def view(host: Host, t_s: float) -> dict[int, tuple[bool, bool, np.ndarray, np.ndarray, bool]]:
    """Track id -> (friendly, neutral, position, position covariance, confirmed) as fire control sees it."""
    got = host.fire_control_view(t_s)
    assert got is not None
    tracks, ident = got
    return {int(tid): (bool(ident.friendly[k]), bool(ident.neutral[k]), tracks.state[k, :3], tracks.cov[k, :3, :3],
                       bool(tracks.status[k] == CONFIRMED)) for k, tid in enumerate(tracks.track_id)}


def test_a_target_with_an_unidentified_track_beside_it_is_held_one_farther_away_is_not(host: Host) -> None:
    tracker = host.tracker
    assert isinstance(tracker, ShownTracks)
    near = host.unidentified_near_m
    assert 2_000.0 < near < 3_000.0  # the escorts' launchers: a 6 km seeker of 20 degrees, and the lethal radius
    tracker.rows = [(1, CONFIRMED, 0.0, 30_000.0, -1),  # a bomber
                    (2, TENTATIVE, 600.0, 30_000.0, -1),  # its escort, code not established yet
                    (3, CONFIRMED, 20_000.0, 30_000.0, -1),  # another bomber
                    (4, TENTATIVE, 20_000.0 + near + 500.0, 30_000.0, -1)]  # clutter, beyond the basket
    seen = view(host, 1.0)
    assert set(seen) == {1, 3}  # the unidentified tracks are not fire control's to see
    assert not seen[1][4] and seen[3][4]  # the bomber beside it is held as not yet confirmed, the other is not
    refusal = host.refusals[(1, -1, "HOST_UNIDENTIFIED_NEAR")]
    assert refusal["protected_track"] == 2 and refusal["count"] == 1
    view(host, 1.05)
    assert refusal["count"] == 2  # counted each decision, one event
    # once the escort's code is established it is a friendly like any other: fire control's own protection holds
    tracker.rows[1] = (2, TENTATIVE, 600.0, 30_000.0, FRIENDLY_CODE)
    seen = view(host, 1.1)
    assert seen[1][4] and seen[2][:2] == (True, False)


def test_a_dropped_friendly_track_is_held_where_it_flies_for_three_scans(host: Host) -> None:
    tracker = host.tracker
    assert isinstance(tracker, ShownTracks)
    tracker.rows = [(1, CONFIRMED, 0.0, 30_000.0, -1), (2, TENTATIVE, 600.0, 30_000.0, FRIENDLY_CODE)]
    view(host, 1.0)
    tracker.rows = [(1, CONFIRMED, 0.0, 30_000.0, -1)]  # the escort's track flickers out
    hold_s = PROTECT_HOLD_SCANS * max(r.scan_period_s for r in host.scenario.radars)
    t = 1.0 + hold_s - 0.01
    held = view(host, t)
    assert 2 in held and held[2][0]  # still there, still friendly
    np.testing.assert_allclose(held[2][2], [600.0 + 200.0 * (t - 1.0), 30_000.0, 6000.0])  # flown on
    assert np.trace(held[2][3]) == pytest.approx(300.0 + 75.0 * (t - 1.0) ** 2)  # and less certain
    assert 2 not in view(host, 1.0 + hold_s + 0.01)


def test_a_friendly_track_whose_code_the_tracker_lost_keeps_it_for_three_scans(host: Host) -> None:
    tracker = host.tracker
    assert isinstance(tracker, ShownTracks)
    tracker.rows = [(1, CONFIRMED, 0.0, 30_000.0, -1), (2, CONFIRMED, 600.0, 30_000.0, FRIENDLY_CODE)]
    view(host, 1.0)
    tracker.rows[1] = (2, CONFIRMED, 600.0, 30_000.0, -1)  # replies missed: no code established
    hold_s = PROTECT_HOLD_SCANS * max(r.scan_period_s for r in host.scenario.radars)
    assert view(host, 1.0 + hold_s - 0.01)[2][0]
    # the hold runs from when the tracker itself last gave the code, not from the last decision
    assert not view(host, 1.0 + hold_s + 0.01)[2][0]
    assert math.isfinite(hold_s)


@pytest.mark.parametrize("scene", ["safety/escorts", "safety/saturation"])
def test_the_compiled_view_and_its_numpy_twin_give_fire_control_the_same_inputs(scene: str) -> None:
    """Two hosts, one on the track-view kernel and one on its numpy twin, fed the same plots of a whole scene
    (escorts: friendlies beside hostiles; saturation: many tracks at once) decide alike: at every 5 ms step
    the same tracks, status, identity and variances go to fire control, and the same refusals come out."""
    from hil.host.host import build_host
    from hil.host.seams import LauncherInputs
    from hil.plant.radars import scan_plots

    sc = Scenario.load(scene)
    hosts = [build_host(sc), build_host(sc, compiled=False)]
    n_l = len(sc.launchers)
    armed = LauncherInputs(np.ones(n_l, bool), np.ones(n_l, bool), np.full(n_l, 8, np.int32), np.zeros(n_l),
                           np.zeros(n_l, np.int32))
    decided = 0
    for t_end, i, plots, _ in scan_plots(sc, step_s=0.005):
        if t_end > 30.0:
            break
        views = []
        for host in hosts:
            if len(plots):
                host.tracker.update(plots.t_s, np.full(len(plots), i, np.int32), plots.range_m, plots.azimuth_rad,
                                    plots.elevation_rad, plots.range_rate_mps, plots.mode3a)
            views.append(host.fire_control_view(t_end))
            host.decide(t_end, armed)
            host.pending.clear()
        if views[0] is None:
            assert views[1] is None
            continue
        (a, ia), (b, ib) = views[0], views[1]  # type: ignore[misc]
        for x, y in zip([*a, *ia], [*b, *ib], strict=True):
            assert np.array_equal(x, y)
        decided += 1
    assert decided > 1000
    assert hosts[0].refusals == hosts[1].refusals and hosts[0].counts == hosts[1].counts
