"""IFF identity benchmark: two aircraft 300 m apart at 95 km, one squawking, tracked with the radar's noise.

`python -m tests.bench.bench_iff` prints, per geometry, how often the two tracks follow their own aircraft with
the right identity (identity_score) over seeds, with IFF weighed in association and without; then the issue
scene with every other target squawking (coded_reference_scene).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np

from hil.ext.tracker import Tracker
from hil.ext.tracker_types import TrackerConfig
from hil.measure.metrics import TrackingScore
from hil.plant.radars import scan_plots
from hil.scenario import RadarSpec, Scenario, TargetSpec, tracking_scenario
from tests.bench.bench_tracker import TurnWatch, new_tracker, track_scan

TWO_PI = 2.0 * math.pi
ESCORT_CODE = 0o4021
GEOMETRIES = ("in trail", "abreast")
SETTLE_S = 10.0  # scans before this are not scored: confirmation and the first identities


def pair_scene(geometry: str, seed: int, separation_m: float = 300.0, duration_s: float = 60.0) -> Scenario:
    """An escort squawking ESCORT_CODE and a silent bomber, same heading and speed at 6 km altitude, apart
    across the line of sight (0.2° of azimuth noise is 330 m there): "in trail" crosses the line of sight
    at 95 km range, one behind the other; "abreast" flies inbound side by side from 102 to 87 km.
    One radar at the origin with its defaults (Pd 0.9, 20 clutter plots a scan, IFF reply 0.98)."""
    if geometry == "in trail":
        escort, bomber, velocity = (0.0, 95_000.0, 6_000.0), (-separation_m, 95_000.0, 6_000.0), (250.0, 0.0, 0.0)
    elif geometry == "abreast":
        escort, bomber, velocity = (0.0, 102_000.0, 6_000.0), (separation_m, 102_000.0, 6_000.0), (0.0, -250.0, 0.0)
    else:
        raise ValueError(f"geometry must be one of {GEOMETRIES}")
    targets = (TargetSpec(name="escort", allegiance="friendly", kind="aircraft", position=escort, velocity=velocity,
                          mode3a=ESCORT_CODE),
               TargetSpec(name="bomber", allegiance="hostile", kind="aircraft", position=bomber, velocity=velocity))
    return Scenario(name=f"pair {geometry}", duration_s=duration_s, seed=seed, targets=targets,
                    radars=(RadarSpec(name="r", site=(0.0, 0.0, 10.0)),))


def identity_score(sc: Scenario, config: TrackerConfig) -> float:
    """Fraction of the scans from SETTLE_S on that are right: near the pair (5 km) there are exactly two
    confirmed tracks, one showing the escort's code and one -1, and each of the pair's plots of the scan
    updated the confirmed track showing its own aircraft's identity (a track's last_update_s is the time of
    the plot that updated it)."""
    truth = sc.truth()
    trk = Tracker(config, np.array([r.site for r in sc.radars]))
    right = scored = 0
    for t_end, _, p, _ in scan_plots(sc, truth):
        trk.update(p.t_s, np.zeros(len(p), np.int32), p.range_m, p.azimuth_rad, p.elevation_rad, p.range_rate_mps,
                   p.mode3a)
        trk.sector_swept(0, t_end, 0.0, TWO_PI)
        snap = truth.at(t_end)
        if t_end < SETTLE_S or len(snap.index) < 2:
            continue
        tracks = trk.tracks(confirmed_only=True)
        near = np.linalg.norm(tracks.state[:, :3] - snap.state[0, :3], axis=1) < 5_000.0
        ok = sorted(tracks.mode3a[near].tolist()) == [-1, ESCORT_CODE]
        for k in np.flatnonzero(p.target >= 0):
            fed = np.flatnonzero(near & (tracks.last_update_s == p.t_s[k]))
            own = ESCORT_CODE if sc.targets[int(p.target[k])].mode3a >= 0 else -1
            ok = ok and len(fed) == 1 and tracks.mode3a[fed[0]] == own
        right += ok
        scored += 1
    return right / scored


def coded_reference_scene(seed: int = 1, config: TrackerConfig | None = None) -> dict[str, float | int]:
    """bench_tracker's issue scene (40 targets, 1 radar, 300 scans) with every other target squawking, so each
    crossing pair is a squawker and a silent aircraft: its accuracy figures, and the target-scans whose nearest
    confirmed track (within 1 km) shows another identity than the target's."""
    sc = tracking_scenario(40, seed=seed, duration_s=300.0)
    sc = dataclasses.replace(sc, targets=tuple(dataclasses.replace(t, mode3a=0o4000 + k if k % 2 == 0 else -1)
                                                for k, t in enumerate(sc.targets)))
    truth = sc.truth()
    trk = new_tracker(sc, config or TrackerConfig())
    score, turns = TrackingScore(), TurnWatch(sc)
    wrong = near_total = 0
    for t_end, _, p, _ in scan_plots(sc, truth):
        track_scan(trk, 1, (t_end, np.zeros(len(p), np.int32), p))
        snap, tracks = truth.at(t_end), trk.tracks(t_end, confirmed_only=True)
        score.step(snap.index, snap.state[:, :3], tracks.track_id, tracks.state[:, :3])
        turns.step(t_end, snap.index, snap.state[:, :3], tracks.track_id, tracks.state[:, :3])
        if len(tracks.track_id) and len(snap.index):
            d = np.linalg.norm(snap.state[:, None, :3] - tracks.state[None, :, :3], axis=2)
            near = d.min(axis=1) < 1_000.0
            wrong += int((tracks.mode3a[d.argmin(axis=1)][near] != snap.mode3a[near]).sum())
            near_total += int(near.sum())
    return {**score.summary(), "turners_lost": len(turns.lost()), "wrong_identity": wrong,
            "target_scans": near_total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    print("| geometry | IFF in association | mean right scans | median | worst seed |")
    print("|---|---|---|---|---|")
    for geometry in GEOMETRIES:
        for weighed in (True, False):
            s = [identity_score(pair_scene(geometry, seed), TrackerConfig(iff_association=weighed))
                 for seed in range(1, args.seeds + 1)]
            print(f"| {geometry} | {'yes' if weighed else 'no'} | {np.mean(s):.1%} | {np.median(s):.1%} "
                  f"| {min(s):.1%} |")
    print()
    print("| issue scene, every other target squawking | GOSPA per live target (m) | switches | breaks | turners lost "
          "| wrong identities |")
    print("|---|---|---|---|---|---|")
    for seed in (1, 2):
        r = coded_reference_scene(seed)
        print(f"| seed {seed} | {r['gospa_per_target_m']:.1f} | {r['identity_switches']} | {r['track_breaks']} "
              f"| {r['turners_lost']} | {r['wrong_identity']} of {r['target_scans']} |")


if __name__ == "__main__":
    main()
