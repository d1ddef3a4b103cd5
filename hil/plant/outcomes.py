"""Scoring a host against the plant's truth: which true object each host track follows, tracking accuracy (GOSPA),
and each target's outcome from the interceptors the plant flew.

Used by `hil run` (the host's tracks read in-process) and by `hil plant` (an external host's system tracks read
off the wire as ASTERIX CAT062): the same rules, so the two summaries compare.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hil.measure.metrics import gospa, nearest_within
from hil.plant.engagement import EngagementModel, Interceptor
from hil.scenario import LauncherSpec, Scenario, Truth

GOSPA_C_M, GOSPA_P, GOSPA_ALPHA = 1000.0, 1, 2
OUTCOME_ROWS_PER_STAGE = 100  # targets' rows a stage of outcomes_in_stages builds
# refusals a stage of outcomes_in_stages counts by target (1,000 a stage took 2-10 ms at 300 targets, in the loop)
REFUSALS_PER_STAGE = 200
TRACK_TO_TRUTH_M = 3_000.0  # a track further than this from every true object follows none


@dataclass
class TrackScorer:
    """GOSPA samples of the confirmed tracks against truth, and the true object each track follows: the one it
    was nearest most often, so a track coasting on after its target died is not handed to whatever flies near it
    then (for the report only: the host never sees truth)."""

    gospa_samples: list[float] = field(default_factory=list)
    track_truth: dict[int, int] = field(default_factory=dict)  # track id -> scenario target row
    votes: dict[int, Counter[int]] = field(default_factory=dict)

    def score(self, truth_index: np.ndarray, truth_pos: np.ndarray, track_id: np.ndarray, track_pos: np.ndarray,
              confirmed: np.ndarray) -> Any:
        """One sample: truth rows and positions [m, 3], every track's id and position [n, 3], which are confirmed.
        Returns the GOSPA decomposition of the confirmed tracks."""
        g = self.gospa(truth_pos, track_pos[confirmed])
        self.vote(truth_index, truth_pos, track_id, track_pos)
        return g

    def gospa(self, truth_pos: np.ndarray, confirmed_pos: np.ndarray) -> Any:
        """score()'s first half: the GOSPA decomposition of the confirmed tracks' positions, kept for the mean."""
        g = gospa(truth_pos, confirmed_pos, c=GOSPA_C_M, p=GOSPA_P, alpha=GOSPA_ALPHA)
        self.gospa_samples.append(float(g.total))
        return g

    def vote(self, truth_index: np.ndarray, truth_pos: np.ndarray, track_id: np.ndarray,
             track_pos: np.ndarray) -> None:
        """score()'s second half: each track's vote for the true object nearest it, and the object it follows."""
        if len(truth_pos) and len(track_id):
            # each track's nearest true object within TRACK_TO_TRUTH_M, all tracks at once
            near, nearest = nearest_within(truth_pos, track_pos, TRACK_TO_TRUTH_M)
            for tid, j in zip(track_id[near].tolist(), truth_index[nearest].tolist(), strict=True):
                votes = self.votes.setdefault(tid, Counter())
                votes[j] += 1
                self.track_truth[tid] = max(votes, key=votes.__getitem__)  # most_common(1): the first of the most

    def gospa_mean_m(self) -> float | None:
        return round(float(np.mean(self.gospa_samples)), 1) if self.gospa_samples else None


def aim_of_launch(site: LauncherSpec, record: dict[str, Any]) -> np.ndarray:
    """The intercept point (ENU m) a launcher board's launch record carries: azimuth, elevation and range from
    the launcher's own position, as the fire command put them on the wire."""
    az, el, rng = float(record["azimuth_rad"]), float(record["elevation_rad"]), float(record["range_m"])
    return np.asarray(site.position, dtype=np.float64) + rng * np.array(
        [math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])


def round_detail(m: Interceptor, scenario: Scenario) -> str:
    """An interceptor's end in words, as events.csv gives it."""
    if m.acquired >= 0:
        detail = (f"seq {m.seq} acquired {scenario.targets[m.acquired].name} ({m.acquired_allegiance}), "
                  f"miss distance {m.miss_distance_m:.1f} m")
    else:
        detail = f"seq {m.seq} acquired nothing"
    if m.no_fire_zone:
        detail += f"; detonated inside no-fire zone {m.no_fire_zone}"
    return detail


Outcomes = tuple[list[dict[str, Any]], dict[str, Any]]


def outcomes(scenario: Scenario, truth: Truth, engagement: EngagementModel, track_truth: dict[int, int],
             run_end_s: float, refusals: dict[tuple[int, int, str], dict[str, Any]] | None = None,
             confirmed_ids: set[int] | None = None) -> Outcomes:
    """Each target's row (engaged, shots, result, refusal reasons when known) and the plant's counts.

    run_end_s: how far the run got (an impact after it is not a leak, a target starting then or later never flew).
    refusals and confirmed_ids are the host's own (hil's host gives them; an external host's are unknown)."""
    stages = outcomes_in_stages(scenario, truth, engagement, track_truth, run_end_s, refusals, confirmed_ids)
    while True:
        try:
            next(stages)
        except StopIteration as done:
            found: Outcomes = done.value
            return found


def outcomes_in_stages(scenario: Scenario, truth: Truth, engagement: EngagementModel, track_truth: dict[int, int],
                       run_end_s: float,
                       refusals: dict[tuple[int, int, str], dict[str, Any]] | None = None,
                       confirmed_ids: set[int] | None = None) -> Generator[None, None, Outcomes]:
    """outcomes() in stages (the run's journal, in the loop): the rounds, the refusal reasons, then the targets'
    rows OUTCOME_ROWS_PER_STAGE at a time; the generator's value is outcomes()'."""
    sc = scenario
    shots_by_target: dict[int, list[Any]] = {}
    rounds = engagement.finished + engagement.flying
    for k, m in enumerate(rounds):
        if k and not k % OUTCOME_ROWS_PER_STAGE:
            yield  # a long run commands thousands of rounds: the journal's stages stay short however many
        # a round belongs to the true object its seeker took; one that took nothing, to its track's target
        target = m.acquired if m.acquired >= 0 else track_truth.get(m.track_id, -1)
        shots_by_target.setdefault(target, []).append(m)
    yield
    plant = engagement.counts()
    plant["rounds_per_target"] = {sc.targets[int(row)].name: n for row, n in plant["rounds_per_target"].items()}
    yield
    records = []
    for k, m in enumerate(sorted(rounds, key=lambda m: m.ident)):
        if k and not k % OUTCOME_ROWS_PER_STAGE:
            yield
        records.append({**m.record(), "acquired": sc.targets[m.acquired].name if m.acquired >= 0 else None,
                        "launcher": sc.launchers[m.launcher].name})
    plant["rounds"] = records
    yield
    # by target row, in one pass each (the journal builds this every few seconds, in the loop)
    reasons_of: dict[int, Counter[str]] = {}
    # the host adds refusals while the journal runs in stages: its entries as of now (a C-level copy)
    for k, ((tid, _, _), r) in enumerate(list((refusals or {}).items())):
        if k and not k % REFUSALS_PER_STAGE:
            yield
        followed = track_truth.get(tid)
        if followed is not None:
            reasons_of.setdefault(followed, Counter())[r["reason"]] += 1
    tracked_rows = set(track_truth.values())
    confirmed_rows = {track_truth.get(tid) for tid in confirmed_ids} if confirmed_ids is not None else set()
    yield
    rows = []
    impact_s, start_s = truth.impact_s.tolist(), truth.start_s.tolist()  # read as floats, not numpy scalars
    no_reasons: Counter[str] = Counter()
    for row, spec in enumerate(sc.targets):
        if row and not row % OUTCOME_ROWS_PER_STAGE:
            yield
        shots = sorted(shots_by_target.get(row, []), key=lambda m: m.launch_s)
        ended = truth.ended_by[row]
        if ended == "impact" and impact_s[row] > run_end_s:
            ended = "end"  # its impact would come after the run ended (a short or interrupted run)
        result = "killed" if ended == "killed" else "leaked" if ended == "impact" else "survived"
        if result == "survived" and start_s[row] >= run_end_s:
            result = "not_launched"  # it would have started at or after the run ended: it never flew
        reasons = reasons_of.get(row, no_reasons)
        tracked = row in tracked_rows
        if confirmed_ids is not None and not reasons and tracked and row not in confirmed_rows:
            reasons = Counter(NOT_CONFIRMED=1)  # fire control is only ever asked about confirmed tracks
        rows.append({
            "target": spec.name, "kind": spec.kind, "allegiance": spec.allegiance, "engaged": bool(shots),
            "first_launch_s": round(shots[0].launch_s, 3) if shots else None,
            "launcher": sc.launchers[shots[0].launcher].name if shots else None,
            "shots": len(shots), "result": result,
            "tracks": sorted({m.track_id for m in shots}),  # the tracks the rounds that took it were fired at
            "refusal_reasons": [r for r, _ in reasons.most_common()] if not shots else [],
            "tracked": tracked,
        })
    return rows, plant


__all__ = ["GOSPA_ALPHA", "GOSPA_C_M", "GOSPA_P", "Outcomes", "TrackScorer", "aim_of_launch", "outcomes",
           "outcomes_in_stages", "round_detail"]
