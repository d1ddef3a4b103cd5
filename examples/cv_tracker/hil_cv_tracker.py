"""A constant-velocity tracker in plain Python and numpy: an example of a tracker plug-in for hil.

This file is meant to be copied. It shows what a tracker behind hil's Tracker seam (hil/host/seams.py)
receives and what it must give back, in about as few lines as a working tracker takes. It does not compete
with hil's own kernel (an IMM over three motion models with global assignment, in Cython): a CV filter lags
in hard turns and nearest-neighbour association can swap tracks that cross. Swap in your own algorithm here
and compare the two on the same seed (docs/PLUGINS.md).

Choose it, once installed (`pip install -e examples/cv_tracker`), with `hil run --tracker cv`; without
installing, with examples/cv_tracker on PYTHONPATH, `hil run --tracker hil_cv_tracker:make_tracker`.

Units and conventions are the host's: ENU metres around the scenario's origin (x east, y north, z up),
seconds of run time, azimuth in radians clockwise from north, elevation NaN for a plot without height,
range rate NaN for none, Mode 3/A -1 for a plot without a code.

The algorithm:

- Each plot (range, azimuth, elevation from radar i) becomes a position, radar i's site plus the polar
  offset, with its covariance carried through the polar-to-ENU Jacobian (a "converted measurement"). A plot
  without elevation is placed at an assumed altitude with a large vertical uncertainty.
- One linear Kalman filter per track: constant velocity, white-noise acceleration.
- Plots one at a time in time order, each to the nearest track (Mahalanobis distance) inside a chi-square
  gate. A plot that no track gates starts a tentative track, moving along the line of sight at the plot's
  range rate, with a wide prior across it.
- A radar's beam sweeping over a track (sector_swept) is an opportunity to see it: a hit if that radar gave
  it a plot since, a miss if not. M hits in the first N opportunities confirm a track (status 2); a
  tentative track that can no longer make it is deleted, and so is a confirmed track after `delete_misses`
  misses in a row. A track no plot has updated for `max_coast_s` is deleted whatever the sweeps say.
- Mode 3/A: a track's code is the one carried most often by those of its last plots that carried one (ties:
  the newest), -1 if none did. It errs on the side of protection: a hostile track that once took a friendly's
  plot shows the friendly's code for a while, and fire control holds fire at it. A plot whose code differs
  from a track's code never updates that track.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hil.host.seams import TrackSnapshot, TrackStatus
from hil.scenario import Scenario

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

TENTATIVE, CONFIRMED = TrackStatus.TENTATIVE, TrackStatus.CONFIRMED  # TrackSnapshot.status: 1, 2
NO_CODE = -1  # a plot without a Mode 3/A code, a track without one
TWO_PI = 2.0 * math.pi
CHI2_3DOF_999 = 16.27  # chi-square quantile, 3 degrees of freedom, probability 0.999: the gate on distance²


@dataclass(frozen=True)
class Radar:
    """What the tracker knows of one radar: where it stands and how noisy its plots are (SI units)."""

    site: FloatArray  # ENU metres
    sigma_range_m: float
    sigma_azimuth_rad: float
    sigma_elevation_rad: float
    sigma_range_rate_mps: float
    max_range_m: float


@dataclass
class Track:
    """A track's bookkeeping; its state and covariance are the tracker's rows (CVTracker.x, .P, .t_s)."""

    track_id: int
    opportunities: deque[bool]  # hit (True) or miss at its recent beam sweeps, newest last
    codes: deque[int]  # Mode 3/A of its recent plots, NO_CODE for a plot without one
    status: TrackStatus = TENTATIVE
    hits: int = 1  # plots it took, the first one included
    misses: int = 0  # misses in a row
    mode3a: int = NO_CODE
    seen_by: set[int] = field(default_factory=set)  # radars that gave it a plot since their beam last swept it

    def take_code(self, code: int) -> None:
        self.codes.append(code)
        carried = [c for c in reversed(self.codes) if c != NO_CODE]  # newest first: Counter breaks ties by order
        self.mode3a = Counter(carried).most_common(1)[0][0] if carried else NO_CODE


def predict(x: FloatArray, P: FloatArray, dt: FloatArray, accel_psd: float) -> tuple[FloatArray, FloatArray]:
    """States x [n, 6] and covariances P [n, 6, 6], each dt [n] seconds later: constant velocity, white-noise
    acceleration of this power spectral density (m²/s³)."""
    dt = dt[:, None, None]
    a = np.abs(dt)  # the noise grows backwards in time too
    F = np.tile(np.eye(6), (len(x), 1, 1))
    F[:, :3, 3:] = dt * np.eye(3)
    Q = np.zeros_like(P)
    Q[:, :3, :3] = a**3 / 3.0 * np.eye(3)
    Q[:, :3, 3:] = Q[:, 3:, :3] = dt * a / 2.0 * np.eye(3)
    Q[:, 3:, 3:] = a * np.eye(3)
    return (F @ x[:, :, None])[:, :, 0], F @ P @ F.transpose(0, 2, 1) + accel_psd * Q


def plot_position(radar: Radar, range_m: float, azimuth_rad: float, elevation_rad: float,
                  assumed_altitude_m: float, altitude_sigma_m: float) -> tuple[FloatArray, FloatArray]:
    """A plot's ENU position and its 3 x 3 covariance (the polar noise through the conversion's Jacobian)."""
    sigma_el = radar.sigma_elevation_rad
    if math.isnan(elevation_rad):  # no height: put it at the assumed altitude, its height poorly known
        dz = assumed_altitude_m - float(radar.site[2])
        elevation_rad = math.asin(max(-1.0, min(1.0, dz / range_m)))
        sigma_el = altitude_sigma_m / range_m
    r, ce, se = range_m, math.cos(elevation_rad), math.sin(elevation_rad)
    ca, sa = math.cos(azimuth_rad), math.sin(azimuth_rad)  # azimuth clockwise from north: east = sin, north = cos
    offset = np.array([r * ce * sa, r * ce * ca, r * se])
    J = np.array([[ce * sa, r * ce * ca, -r * se * sa],  # d(east, north, up) / d(range, azimuth, elevation)
                  [ce * ca, -r * ce * sa, -r * se * ca],
                  [se, 0.0, r * ce]])
    noise = np.diag([radar.sigma_range_m**2, radar.sigma_azimuth_rad**2, sigma_el**2])
    return radar.site + offset, J @ noise @ J.T


class CVTracker:
    """A constant-velocity Kalman tracker with nearest-neighbour association (see the module's docstring).

    Track k's filter is row k of x [n, 6] (x, y, z, vx, vy, vz), P [n, 6, 6] and t_s [n] (the time of its last
    plot), its bookkeeping live[k]; rows are in track_id order. Rows let one numpy call predict every track.
    """

    def __init__(self, radars: list[Radar], *, accel_psd: float = 5.0, gate: float = CHI2_3DOF_999,
                 init_speed_sigma_mps: float = 350.0, confirm_m: int = 3, confirm_n: int = 4,
                 delete_misses: int = 4, max_coast_s: float = 6.0, code_window: int = 6,
                 assumed_altitude_m: float = 3_000.0, altitude_sigma_m: float = 5_000.0) -> None:
        if not 1 <= confirm_m <= confirm_n:
            raise ValueError(f"need 1 <= confirm_m <= confirm_n, got {confirm_m} of {confirm_n}")
        self.radars = radars
        self.accel_psd = accel_psd
        self.gate = gate
        self.init_speed_sigma_mps = init_speed_sigma_mps
        self.confirm_m, self.confirm_n = confirm_m, confirm_n
        self.delete_misses = delete_misses
        self.max_coast_s = max_coast_s
        self.code_window = code_window
        self.assumed_altitude_m, self.altitude_sigma_m = assumed_altitude_m, altitude_sigma_m
        self.x, self.P, self.t_s = np.zeros((0, 6)), np.zeros((0, 6, 6)), np.zeros(0)
        self.live: list[Track] = []
        self.next_id = 1
        self.plots_refused = 0  # plots from an unknown radar or with a range, azimuth or time that is not a number

    # --- the Tracker seam -----------------------------------------------------------------------------------

    def update(self, t_s: FloatArray, sensor: IntArray, range_m: FloatArray, azimuth_rad: FloatArray,
               elevation_rad: FloatArray, range_rate_mps: FloatArray, mode3a: IntArray) -> None:
        """One loop iteration's plots, time ordered (hil/host/seams.py)."""
        for k in range(len(t_s)):
            self._take_plot(float(t_s[k]), int(sensor[k]), float(range_m[k]), float(azimuth_rad[k]),
                            float(elevation_rad[k]), float(range_rate_mps[k]), int(mode3a[k]))
        times = t_s[np.isfinite(t_s)]
        if len(times):
            self._keep(times.max() - self.t_s <= self.max_coast_s)

    def sector_swept(self, sensor: int, t_s: float, az_from_rad: float, az_to_rad: float) -> None:
        """Radar `sensor`'s beam swept clockwise from az_from_rad to az_to_rad by t_s: a hit or a miss for every
        track inside that sector and the radar's range."""
        if not (0 <= sensor < len(self.radars) and math.isfinite(t_s)):
            return
        radar = self.radars[sensor]
        where = self.x[:, :3] + (t_s - self.t_s)[:, None] * self.x[:, 3:] - radar.site
        azimuth = np.arctan2(where[:, 0], where[:, 1])  # clockwise from north
        swept = np.linalg.norm(where, axis=1) <= radar.max_range_m
        if az_to_rad - az_from_rad < TWO_PI - 1e-9:  # less than a full turn
            swept &= (azimuth - az_from_rad) % TWO_PI < (az_to_rad - az_from_rad) % TWO_PI
        keep = np.ones(len(self.live), bool)
        for k in np.flatnonzero(swept):
            track = self.live[k]
            hit = sensor in track.seen_by
            track.seen_by.discard(sensor)
            track.opportunities.append(hit)
            track.misses = 0 if hit else track.misses + 1
            keep[k] = self._review(track)
        self._keep(keep & (t_s - self.t_s <= self.max_coast_s))

    def tracks(self, t_s: float | None = None) -> TrackSnapshot:
        """The live tracks, predicted to t_s when given."""
        state, cov = (self.x, self.P) if t_s is None else predict(self.x, self.P, t_s - self.t_s, self.accel_psd)
        return TrackSnapshot(
            track_id=np.array([t.track_id for t in self.live], np.int64),
            status=np.array([t.status for t in self.live], np.int8),
            state=state.copy(),
            cov=cov.copy(),
            last_update_s=self.t_s.copy(),
            mode3a=np.array([t.mode3a for t in self.live], np.int32),
            hits=np.array([t.hits for t in self.live], np.int32),
        )

    # --- inside -----------------------------------------------------------------------------------------------

    def _take_plot(self, t_s: float, sensor: int, range_m: float, azimuth_rad: float, elevation_rad: float,
                   range_rate_mps: float, code: int) -> None:
        if not (0 <= sensor < len(self.radars) and range_m > 0.0 and math.isfinite(range_m)
                and math.isfinite(azimuth_rad) and math.isfinite(t_s)):
            self.plots_refused += 1
            return
        z, R = plot_position(self.radars[sensor], range_m, azimuth_rad, elevation_rad, self.assumed_altitude_m,
                             self.altitude_sigma_m)
        code = code if code >= 0 else NO_CODE
        # every track predicted to the plot's time, and the plot's Mahalanobis distance² to each
        x, P = predict(self.x, self.P, t_s - self.t_s, self.accel_psd)
        S = P[:, :3, :3] + R
        innovation = z - x[:, :3]
        d2 = np.einsum("ki,ki->k", innovation, np.linalg.solve(S, innovation[:, :, None])[:, :, 0])
        other_code = np.array([code != NO_CODE and t.mode3a not in (NO_CODE, code) for t in self.live], bool)
        d2[other_code] = np.inf  # another aircraft's code: never its plot
        if len(d2) == 0 or d2.min() >= self.gate:
            self._start_track(t_s, sensor, z, R, range_rate_mps, code)
            return
        k = int(np.argmin(d2))
        K = P[k, :, :3] @ np.linalg.inv(S[k])  # the Kalman gain of a position measurement (H = [I 0])
        self.x[k] = x[k] + K @ innovation[k]
        Pk = P[k] - K @ S[k] @ K.T
        self.P[k] = (Pk + Pk.T) / 2.0
        self.t_s[k] = t_s
        track = self.live[k]
        track.hits += 1
        track.seen_by.add(sensor)
        track.take_code(code)

    def _start_track(self, t_s: float, sensor: int, z: FloatArray, R: FloatArray, range_rate_mps: float,
                     code: int) -> None:
        radar = self.radars[sensor]
        los = (z - radar.site) / np.linalg.norm(z - radar.site)  # unit line of sight
        along = np.outer(los, los)
        sigma_v2 = self.init_speed_sigma_mps**2
        if math.isfinite(range_rate_mps):
            velocity, along_var = range_rate_mps * los, radar.sigma_range_rate_mps**2
        else:
            velocity, along_var = np.zeros(3), sigma_v2
        P = np.zeros((6, 6))
        P[:3, :3] = R
        P[3:, 3:] = sigma_v2 * (np.eye(3) - along) + along_var * along
        self.x = np.vstack([self.x, np.concatenate([z, velocity])])
        self.P = np.concatenate([self.P, P[None]])
        self.t_s = np.append(self.t_s, t_s)
        track = Track(self.next_id, opportunities=deque(maxlen=self.confirm_n), codes=deque(maxlen=self.code_window),
                      seen_by={sensor})
        track.take_code(code)
        self.live.append(track)
        self.next_id += 1

    def _review(self, track: Track) -> bool:
        """Confirm a track after an opportunity; False when it is to be deleted."""
        if track.status == TENTATIVE:
            hits, seen = sum(track.opportunities), len(track.opportunities)
            if hits >= self.confirm_m:
                track.status = CONFIRMED
            return hits + (self.confirm_n - seen) >= self.confirm_m  # M of the first N still within reach
        return track.misses < self.delete_misses

    def _keep(self, keep: npt.NDArray[np.bool_]) -> None:
        """Delete the tracks whose row is False."""
        if not keep.all():
            self.x, self.P, self.t_s = self.x[keep], self.P[keep], self.t_s[keep]
            self.live = [t for t, k in zip(self.live, keep, strict=True) if k]


def radars_of(scenario: Scenario) -> list[Radar]:
    """The scenario's radars as the tracker sees them."""
    return [Radar(np.array(r.site, np.float64), r.sigma_range_m, r.sigma_azimuth_rad, r.sigma_elevation_rad,
                  r.sigma_range_rate_mps, r.max_range_m) for r in scenario.radars]


def make_tracker(scenario: Scenario, **options: Any) -> CVTracker:
    """The factory hil calls (`--tracker cv`, or hil_cv_tracker:make_tracker): a CVTracker over the scenario's
    radars; options are CVTracker's keyword arguments."""
    return CVTracker(radars_of(scenario), **options)


__all__ = ["CVTracker", "Radar", "Track", "make_tracker", "plot_position", "predict", "radars_of"]
