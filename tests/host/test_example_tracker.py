"""The example tracker plug-in (examples/cv_tracker): on the raid's plots it holds every aircraft with a
confirmed track close to the truth, keeps each squawking aircraft's code, lets go of a target that is gone, and
fits the Tracker seam as hil's own kernel does."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from hil.geo import FloatArray
from hil.host.plugins import make_tracker
from hil.host.seams import Tracker
from hil.plant.radars import scan_plots
from hil.scenario import Scenario, format_mode3a
from tests.helpers import CV_TRACKER_EXAMPLE

CHOICE = "hil_cv_tracker:make_tracker"
STEP_S = 0.05  # plots handed over in batches this long, about what one loop iteration of the host takes
CHECK_EVERY_S = 1.0
CONFIRMED = 2


@pytest.fixture(scope="module")
def example_on_path() -> Iterator[None]:
    sys.path.insert(0, str(CV_TRACKER_EXAMPLE))
    yield
    sys.path.remove(str(CV_TRACKER_EXAMPLE))
    sys.modules.pop("hil_cv_tracker", None)


@dataclass
class Tracked:
    tracker: Any
    scenario: Scenario
    # per target, at each check: its true position, and the nearest confirmed track's position and Mode 3/A
    # (nearest on the ground with no_height; NaN and -9 when there is no confirmed track)
    truth: dict[str, list[FloatArray]]
    nearest: dict[str, list[FloatArray]]
    codes: dict[str, list[int]]
    confirmed: list[int]  # confirmed tracks at each check
    alive: list[int]  # live targets at each check


def track(scenario: Scenario, until_s: float, plots_until_s: float | None = None,
          no_height: bool = False) -> Tracked:
    """Feed the scenario's plots and beam sweeps to the example tracker in time order, as the host does: each
    batch's plots, then the sector sweeps that batch completed (from the previous sector boundary of that
    radar); check the confirmed tracks against the truth every CHECK_EVERY_S."""
    tracker = make_tracker(scenario, CHOICE)
    truth = scenario.truth()
    out = Tracked(tracker, scenario, {}, {}, {}, [], [])
    previous_boundary = [math.nan] * len(scenario.radars)
    for t_end, radar, p, crossings in scan_plots(scenario, truth, step_s=STEP_S):
        if t_end > until_s + 1e-9:
            break
        if len(p) and (plots_until_s is None or t_end <= plots_until_s):
            elevation = np.full(len(p), np.nan) if no_height else p.elevation_rad
            tracker.update(p.t_s, np.full(len(p), radar, np.int32), p.range_m, p.azimuth_rad, elevation,
                           p.range_rate_mps, p.mode3a)
        for c in crossings:
            if not math.isnan(previous_boundary[radar]):
                tracker.sector_swept(radar, c.t_s, previous_boundary[radar], c.azimuth_rad)
            previous_boundary[radar] = c.azimuth_rad
        at_check = abs(t_end / CHECK_EVERY_S - round(t_end / CHECK_EVERY_S)) < 1e-9
        if radar == len(scenario.radars) - 1 and at_check:
            now, tracks = truth.at(t_end), tracker.tracks(t_end)
            confirmed = tracks.status == CONFIRMED
            out.confirmed.append(int(confirmed.sum()))
            out.alive.append(len(now.index))
            dims = 2 if no_height else 3
            for row, position in zip(now.index, now.state[:, :3], strict=True):
                name = scenario.targets[row].name
                d = np.linalg.norm(tracks.state[confirmed, :dims] - position[:dims], axis=1)
                k = int(np.argmin(d)) if len(d) else -1
                out.truth.setdefault(name, []).append(position)
                out.nearest.setdefault(name, []).append(tracks.state[confirmed][k, :3] if k >= 0 else
                                                        np.full(3, np.nan))
                out.codes.setdefault(name, []).append(int(tracks.mode3a[confirmed][k]) if k >= 0 else -9)
    return out


def errors_m(tracked: Tracked, name: str, dims: int = 3) -> FloatArray:
    """A target's distance to its nearest confirmed track at each check (inf: no confirmed track)."""
    d = np.linalg.norm(np.array(tracked.nearest[name])[:, :dims] - np.array(tracked.truth[name])[:, :dims], axis=1)
    return np.where(np.isnan(d), np.inf, d)


@pytest.fixture(scope="module")
def raid(example_on_path: None) -> Tracked:
    return track(Scenario.load("raid"), until_s=25.0)


def test_it_fits_the_tracker_seam(raid: Tracked) -> None:
    assert isinstance(raid.tracker, Tracker)
    snap = raid.tracker.tracks(25.0)
    n = len(snap.track_id)
    assert n > 0
    assert snap.track_id.dtype == np.int64 and snap.status.dtype == np.int8 and snap.mode3a.dtype == np.int32
    assert snap.hits.dtype == np.int32 and snap.last_update_s.shape == (n,)
    assert snap.state.shape == (n, 6) and snap.cov.shape == (n, 6, 6)
    assert list(snap.track_id) == sorted(snap.track_id)  # ordered by track id, as hil's kernel gives them
    assert set(snap.status.tolist()) <= {1, 2}
    np.testing.assert_allclose(snap.cov, snap.cov.transpose(0, 2, 1))
    assert (np.linalg.eigvalsh(snap.cov) > 0).all()
    # predicted to t_s: a constant-velocity step from the state at the last plot
    at_last = raid.tracker.tracks()
    dt = 25.0 - at_last.last_update_s
    np.testing.assert_allclose(snap.state[:, :3], at_last.state[:, :3] + dt[:, None] * at_last.state[:, 3:],
                               atol=1e-6)


def test_every_aircraft_of_the_raid_has_a_confirmed_track_close_to_it(raid: Tracked) -> None:
    assert set(raid.truth) == {t.name for t in raid.scenario.targets}
    every: list[float] = []
    for name in raid.truth:
        errors = errors_m(raid, name)[3:]  # from 3 s on: M of N has had its first sweeps
        held = errors[errors < 1_000.0]
        assert len(held) >= 0.95 * len(errors), (name, errors)
        assert np.median(held) < 150.0, (name, errors)  # the radars' noise: 50 m in range, 0.2° across
        every.extend(errors)
    assert np.percentile(every, 90) < 300.0


def test_clutter_seldom_makes_a_confirmed_track(raid: Tracked) -> None:
    extra = [c - a for c, a in zip(raid.confirmed[3:], raid.alive[3:], strict=True)]
    assert max(extra) <= 3, extra  # 20 clutter plots a scan per radar


def test_each_aircraft_track_carries_its_own_mode_3a(raid: Tracked) -> None:
    """Fire control tells friends from hostiles by the code a track carries: the friendly and the airliner keep
    theirs, no hostile shows one."""
    for spec in raid.scenario.targets:
        codes = raid.codes[spec.name][3:]
        if spec.mode3a >= 0:
            assert all(c == spec.mode3a for c in codes), (spec.name, [format_mode3a(c) for c in codes if c >= 0])
        else:
            assert all(c == -1 for c in codes), (spec.name, codes)


def test_a_target_that_is_gone_loses_its_track(example_on_path: None) -> None:
    """Plots stop at 12 s; the beams keep sweeping: every track is deleted within a few scans."""
    sc = Scenario.load("raid")
    gone = track(sc, until_s=15.0, plots_until_s=12.0)
    assert gone.confirmed[10] >= 9
    assert len(gone.tracker.tracks().track_id) == 0


def test_a_radar_without_height_still_gives_tracks_on_the_ground_plane(example_on_path: None) -> None:
    """Plots without elevation (a 2-D radar) are placed at an assumed altitude (3 km) at their slant range: each
    track's ground position is off by what that height makes of the slant range, and no more (about
    (height difference)² / (2 range): 1.8 km for the airliner at 11 km, 0.1 km for a cruise missile)."""
    sc = Scenario.load("raid")
    one_radar = replace(sc, radars=sc.radars[:1], duration_s=20.0)
    flat = track(one_radar, until_s=20.0, no_height=True)
    radar = one_radar.radars[0]
    for spec in sc.targets:
        truth = np.array(flat.truth[spec.name])[4:]
        errors = errors_m(flat, spec.name, dims=2)[4:]
        # where the assumed altitude puts the aircraft: the same slant range, another height
        slant = np.linalg.norm(truth - radar.site, axis=1)
        ground = np.linalg.norm(truth[:, :2] - radar.site[:2], axis=1)
        placed = np.sqrt(slant**2 - (3_000.0 - radar.site[2]) ** 2)
        assert (np.abs(errors - np.abs(placed - ground)) < 300.0).mean() >= 0.75, (spec.name, errors, placed - ground)


def test_a_malformed_plot_or_sweep_is_refused_and_the_tracks_stay(example_on_path: None) -> None:
    tracked = track(Scenario.load("raid"), until_s=8.0)
    tracker = tracked.tracker
    before = tracker.tracks(8.0)
    nan = np.nan
    tracker.update(np.array([8.0, 8.0, nan]), np.array([7, 0, 1], np.int32), np.array([20e3, nan, 30e3]),
                   np.array([1.0, 1.0, 2.0]), np.array([0.1, 0.1, 0.1]), np.array([nan, nan, nan]),
                   np.array([-1, -1, -1], np.int32))
    tracker.sector_swept(0, nan, 0.0, 1.0)
    tracker.sector_swept(5, 8.0, 0.0, 1.0)
    after = tracker.tracks(8.0)
    assert tracker.plots_refused == 3  # an unknown radar, no range, no time
    assert after.track_id.tolist() == before.track_id.tolist()
    np.testing.assert_array_equal(after.state, before.state)
