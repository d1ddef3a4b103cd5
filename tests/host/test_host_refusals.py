"""The host's account of fire control's refusals: counted as numbers and folded when read, it must say what a
plain count of every refusal says (first time, count, the latest protected track, the first one an event)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.ext.firecontrol_types import Assignments, RefusalReason, Refusals
from hil.ext.tracker_types import TrackSnapshot
from hil.host.host import REASON_NAMES, Host
from hil.host.seams import CONFIRMED, FireControlInputs, LauncherInputs
from hil.scenario import Scenario
from tests.helpers import ShownTracks

TENTATIVE = 1
REASONS = [int(r) for r in RefusalReason][1:7]


class Refusing:
    """A fire control that assigns nothing and refuses the pairs it is told to, in order."""

    def __init__(self) -> None:
        self.next: list[tuple[int, int, int, int]] = []  # (track row, launcher or -1, reason, protected row or -1)

    def decide(self, inputs: FireControlInputs) -> Any:
        rows = np.array([r[0] for r in self.next], np.int32)
        return _Decision(Refusals(rows, np.array([r[1] for r in self.next], np.int32),
                                  np.array([r[2] for r in self.next], np.int8),
                                  np.array([r[3] for r in self.next], np.int32)))


class _Decision:
    def __init__(self, refusals: Refusals) -> None:
        empty = np.zeros(0, np.int32)
        self.assignments = Assignments(empty, empty, np.zeros((0, 3)), np.zeros(0), np.zeros(0), np.zeros(0))
        self.refusals = refusals

    def explain(self, i: int) -> dict[str, Any]:
        return {"track": i}


def snapshot(rows: list[tuple[int, int]]) -> TrackSnapshot:
    """Rows (track id, status) far apart, no codes."""
    n = len(rows)
    state = np.zeros((n, 6))
    state[:, 0] = np.arange(n) * 50_000.0
    return TrackSnapshot(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int8), state,
                         np.tile(np.eye(6), (n, 1, 1)), np.zeros(n), np.full(n, -1, np.int32), np.ones(n, np.int32))


decisions = st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 1), st.sampled_from(REASONS),
                                        st.integers(-1, 5)), max_size=12), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(decisions, st.lists(st.booleans(), min_size=6, max_size=6), st.lists(st.integers(0, 11), max_size=4))
def test_counted_refusals_are_every_refusal_counted(plan: list[list[tuple[int, int, int, int]]],
                                                    confirmed: list[bool], read_at: list[int]) -> None:
    """read_at: the decisions after which the refusals are read (each read folds what was only counted)."""
    sc = Scenario.load("raid")
    fc = Refusing()
    events: list[tuple[float, str, int, int, str]] = []
    host = Host(sc, ShownTracks(snapshot), fc,
                on_event=lambda t, e, track=-1, launcher=-1, detail="": events.append((t, e, track, launcher, detail)))
    tracker = host.tracker
    assert isinstance(tracker, ShownTracks)
    ids = [10, 11, 12, 13, 14, 15]
    tracker.rows = [(tid, CONFIRMED if ok else TENTATIVE) for tid, ok in zip(ids, confirmed, strict=True)]
    shown = [i for i, ok in enumerate(confirmed) if ok]  # fire control sees the confirmed rows only
    want: dict[tuple[int, int, str], dict[str, Any]] = {}
    for k, refusals in enumerate(plan):
        fc.next = [(shown.index(row) if row in shown else -1, li, why, shown.index(p) if p in shown else -1)
                   for row, li, why, p in refusals if row in shown]
        host.decide(float(k), LauncherInputs.none(len(sc.launchers)))
        host.bookkeeping()
        for row, li, why, p in fc.next:  # the plain count
            key = (ids[shown[row]], li, REASON_NAMES[why])
            protected = ids[shown[p]] if p >= 0 else None
            if key in want:
                want[key]["count"] += 1
                want[key]["protected_track"] = protected if protected is not None else want[key]["protected_track"]
            else:
                want[key] = {"time_s": float(k), "track": key[0], "reason": key[2], "count": 1,
                             "protected_track": protected,
                             "launcher": sc.launchers[li].name if li >= 0 else None}
        if k in read_at:
            assert host.refusals == want  # read midway: folded so far
    assert host.refusals == want
    assert len([e for e in events if e[1] == "refusal"]) == len(want)  # the first of each is an event


def test_a_launcher_refusal_then_fire_control_s_own_for_the_same_pair_are_one_entry() -> None:
    """The launcher link refused a fire as NOT_READY; fire control then refuses the same track and launcher as
    LAUNCHER_NOT_READY: one entry counting both, and the next refusals of the pair counted on it."""
    from hil.host.host import FireOrder

    sc, fc, host = refusing_host([(7, CONFIRMED)])
    order = FireOrder(7, 0, (0.0, 0.0, 0.0), 10.0, 0, 0, 0)
    host.fire_answered(order, 1.0, None, "refused", reason="NOT_READY")
    fc.next = [(0, 0, int(RefusalReason.LAUNCHER_NOT_READY), -1)]
    for k in range(3):
        host.decide(2.0 + k, LauncherInputs.none(len(sc.launchers)))
        host.bookkeeping()
    entry = host.refusals[(7, 0, "LAUNCHER_NOT_READY")]
    assert entry["count"] == 4 and entry["time_s"] == 1.0


def refusing_host(rows: list[tuple[int, int]]) -> tuple[Scenario, Refusing, Host]:
    """The raid's host, its tracker showing rows (track id, status), its fire control refusing what it is told."""
    sc = Scenario.load("raid")
    fc = Refusing()
    host = Host(sc, ShownTracks(snapshot), fc)
    tracker = host.tracker
    assert isinstance(tracker, ShownTracks)
    tracker.rows = rows
    return sc, fc, host


def test_track_ids_past_what_a_key_holds_are_counted_plainly() -> None:
    """A plug-in tracker's ids (2**40 and up, or negative) are counted one by one, never mixed with another's."""
    big = 1 << 40
    sc, fc, host = refusing_host([(5, CONFIRMED), (big + 5, CONFIRMED), (-3, CONFIRMED)])
    why = int(RefusalReason.OUT_OF_RANGE)
    for k in range(4):
        fc.next = [(0, 0, why, -1), (1, 0, why, 2), (2, -1, why, -1)]
        host.decide(float(k), LauncherInputs.none(len(sc.launchers)))
        host.bookkeeping()
    counts = {key[0]: e["count"] for key, e in host.refusals.items()}
    assert counts == {5: 4, big + 5: 4, -3: 4}
    assert host.refusals[(big + 5, 0, REASON_NAMES[why])]["protected_track"] == -3


def test_hundreds_of_pairs_refused_again_and_again_are_each_counted() -> None:
    """A 300-target decision's refusals, many decisions over: every pair's count, and the latest protected track."""
    sc, fc, host = refusing_host([(1000 + k, CONFIRMED) for k in range(300)])
    far, near = int(RefusalReason.OUT_OF_RANGE), int(RefusalReason.PROTECTED_NEAR_INTERCEPT)
    for k in range(5):
        fc.next = [(row, li, far, -1) for row in range(300) for li in (0, 1)] + [(7, 0, near, 8 + k)]
        host.decide(float(k), LauncherInputs.none(len(sc.launchers)))
        host.bookkeeping()
        if k == 2:
            assert host.refusals[(1299, 1, REASON_NAMES[far])]["count"] == 3
    refusals = host.refusals
    assert len(refusals) == 601
    assert {e["count"] for e in refusals.values()} == {5}
    assert refusals[(1007, 0, REASON_NAMES[near])]["protected_track"] == 1012  # the latest decision's
