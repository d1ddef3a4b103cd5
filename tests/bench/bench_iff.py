"""IFF identity benchmark: two aircraft 300 m apart at 95 km, one squawking, tracked with the radar's noise.

`python -m tests.bench.bench_iff` prints, per geometry, how often the two tracks follow their own aircraft with
the right identity (identity_score) over seeds, with IFF weighed in association and without; then the issue
scene with every other target squawking (coded_reference_scene).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from hil.ext.tracker_types import TrackerConfig
from hil.measure.metrics import TrackingScore
from hil.plant.radars import scan_plots
from hil.scenario import tracking_scenario
from tests.helpers import GEOMETRIES, TurnWatch, identity_score, new_tracker, pair_scene, track_scan


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
