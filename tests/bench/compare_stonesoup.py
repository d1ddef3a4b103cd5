"""Stone Soup (EKF + GNN) against our tracker on the same generated plots: time per scan, GOSPA, identity.

Optional: needs `pip install .[compare]` (stonesoup). Run as `python -m tests.bench.compare_stonesoup`.
Stone Soup is set up as the issue's reference figures were: EKF with a CV model (q = 100), a Mahalanobis
gate, GNNWith2DAssignment, three-plot initiation and deletion after four scans without an update.
"""

from __future__ import annotations

import argparse
import datetime
import math
import time
from typing import Any

import numpy as np
from scipy.stats import chi2

from hil.ext.tracker_types import TrackerConfig
from hil.measure.metrics import TrackingScore
from tests.helpers import new_tracker, scene, track_scan

EPOCH = datetime.datetime(2026, 1, 1)


def stonesoup_tracker(sc: Any, scans: list[Any], q: float, gate_probability: float) -> tuple[Any, list[Any]]:
    """A Stone Soup MultiTargetTracker over the scans' plots (converted to its detections)."""
    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.deleter.time import UpdateTimeStepsDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.initiator.simple import MultiMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.nonlinear import CartesianToElevationBearingRangeRate
    from stonesoup.models.transition.linear import CombinedLinearGaussianTransitionModel, ConstantVelocity
    from stonesoup.predictor.kalman import ExtendedKalmanPredictor
    from stonesoup.tracker.simple import MultiTargetTracker
    from stonesoup.types.detection import Detection
    from stonesoup.types.state import GaussianState
    from stonesoup.updater.kalman import ExtendedKalmanUpdater

    models = [
        CartesianToElevationBearingRangeRate(
            ndim_state=6, mapping=(0, 2, 4), velocity_mapping=(1, 3, 5),
            noise_covar=np.diag([r.sigma_elevation_rad**2, r.sigma_azimuth_rad**2, r.sigma_range_m**2,
                                 r.sigma_range_rate_mps**2]),
            translation_offset=np.array([[r.site[0]], [r.site[1]], [r.site[2]]]))
        for r in sc.radars
    ]
    transition = CombinedLinearGaussianTransitionModel([ConstantVelocity(q)] * 3)
    predictor = ExtendedKalmanPredictor(transition)
    updater = ExtendedKalmanUpdater(measurement_model=None)
    hypothesiser = DistanceHypothesiser(predictor, updater, measure=Mahalanobis(),
                                        missed_distance=math.sqrt(chi2.ppf(gate_probability, 4)))
    associator = GNNWith2DAssignment(hypothesiser)
    prior = GaussianState(np.zeros((6, 1)), np.diag([1e4, 250.0**2] * 3))
    initiator = MultiMeasurementInitiator(prior_state=prior, measurement_model=models[0],
                                          deleter=UpdateTimeStepsDeleter(time_steps_since_update=2),
                                          data_associator=associator, updater=updater, min_points=3)

    def detections() -> Any:
        # one step per radar per scan: GNN gives a track one detection a step, so with both radars' plots in
        # one step every target's second plot would start a duplicate track
        for t_end, sensors, p in scans:
            for i in range(len(sc.radars)):
                dets = set()
                for k in np.nonzero(sensors == i)[0]:
                    # Stone Soup's bearing is counter-clockwise from east; ours is clockwise from north
                    z = np.array([[p.elevation_rad[k]], [math.pi / 2 - p.azimuth_rad[k]], [p.range_m[k]],
                                  [p.range_rate_mps[k]]])
                    dets.add(Detection(z, timestamp=EPOCH + datetime.timedelta(seconds=float(p.t_s[k])),
                                       measurement_model=models[i]))
                yield EPOCH + datetime.timedelta(seconds=t_end), dets

    class Detector:  # the tracker only iterates its detector
        def __iter__(self) -> Any:
            return detections()

    tracker = MultiTargetTracker(initiator=initiator, deleter=UpdateTimeStepsDeleter(time_steps_since_update=4),
                                 detector=Detector(), data_associator=associator, updater=updater)
    return tracker, models


def positions_at(tracks: Any, t_s: float, numbers: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Track numbers (stable small integers, for identity scoring) and positions extrapolated to t_s."""
    ids, pos = [], []
    for track in tracks:
        s = track.state
        dt = t_s - (s.timestamp - EPOCH).total_seconds()
        x = np.asarray(s.state_vector, dtype=np.float64).ravel()
        pos.append([x[0] + dt * x[1], x[2] + dt * x[3], x[4] + dt * x[5]])
        ids.append(numbers.setdefault(track.id, len(numbers) + 1))
    return np.array(ids, np.int64), np.array(pos, np.float64).reshape(len(pos), 3)


def run_stonesoup(n_targets: int, n_scans: int, n_radars: int) -> tuple[np.ndarray, dict[str, Any]]:
    sc, scans = scene(n_targets, n_scans, n_radars)
    truth = sc.truth()
    tracker, _ = stonesoup_tracker(sc, scans, q=100.0, gate_probability=TrackerConfig().gate_probability)
    numbers: dict[str, int] = {}
    score = TrackingScore()
    times = []
    it = iter(tracker)
    for t_end, _, _ in scans:
        tick = time.perf_counter()
        for _ in sc.radars:
            _, tracks = next(it)
        times.append(time.perf_counter() - tick)
        ids, pos = positions_at(tracks, t_end, numbers)
        snap = truth.at(t_end)
        score.step(snap.index, snap.state[:, :3], ids, pos)
    return np.array(times), score.summary()


def run_ours(n_targets: int, n_scans: int, n_radars: int) -> tuple[np.ndarray, dict[str, Any]]:
    sc, scans = scene(n_targets, n_scans, n_radars)
    truth = sc.truth()
    trk = new_tracker(sc, TrackerConfig())
    score = TrackingScore()
    times = []
    for scan in scans:
        tick = time.perf_counter()
        track_scan(trk, n_radars, scan)
        times.append(time.perf_counter() - tick)
        snap, tracks = truth.at(scan[0]), trk.tracks(scan[0])
        c = tracks.confirmed
        score.step(snap.index, snap.state[:, :3], tracks.track_id[c], tracks.state[c, :3])
    return np.array(times), score.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[40])
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--radars", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print("| scene | tracker | median ms/scan | p99 ms/scan | speed ratio | GOSPA/target m | GOSPA ratio "
          "| switches | breaks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.targets:
        for radars in args.radars:
            ts, ss = run_stonesoup(n, args.scans, radars)
            to, so = run_ours(n, args.scans, radars)
            name = f"{n} targets, {radars} radar(s), {args.scans} scans"
            for label, t, s in (("Stone Soup EKF+GNN", ts, ss), ("hil IMM+GNN (JV)", to, so)):
                print(f"| {name} | {label} | {np.median(t) * 1e3:.3f} | {np.percentile(t, 99) * 1e3:.3f} | "
                      f"{np.median(ts) / np.median(t):.0f}x | {s['gospa_per_target_m']:.1f} | "
                      f"{s['gospa_per_target_m'] / ss['gospa_per_target_m']:.2f} | {s['identity_switches']} | "
                      f"{s['track_breaks']} |", flush=True)


if __name__ == "__main__":
    main()
