"""What fire control is told of the host's own rounds (Host.engagement_inputs): in flight, shots, kill assessment
per track and guidance channels per launcher, held to a plain numpy reference over drawn rounds and tracks."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.ext.tracker_types import TrackSnapshot
from hil.host.host import FireOrder, Host, HostRound, build_host
from hil.scenario import Scenario

SCENARIO = Scenario.load("raid")
N_LAUNCHERS = len(SCENARIO.launchers)


def reference(host: Host, t_s: float, tracks: TrackSnapshot) -> tuple[np.ndarray, ...]:
    """The rule, element by element on the arrays: a round is in flight until its planned intercept (an unconfirmed
    one until settled) and holds a channel meanwhile; every launched round is a shot; after the intercept its track
    is assessed until the look ends, and after that while it has not been seen since the intercept."""
    n = len(tracks.track_id)
    in_flight, shots, assessing = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, bool)
    channels = np.zeros(N_LAUNCHERS, np.int32)
    row = {int(t): k for k, t in enumerate(tracks.track_id)}
    for p in host.pending:
        if p.track_id in row:
            in_flight[row[p.track_id]] += 1
    for r in host.rounds:
        if r.state == "not_launched":
            continue
        airborne = r.state == "unconfirmed" or t_s < r.intercept_s
        channels[r.launcher] += airborne
        k = row.get(r.track_id)
        if k is None:
            continue
        shots[k] += 1
        if airborne:
            in_flight[k] += 1
        elif t_s < r.look_end_s or tracks.last_update_s[k] <= r.intercept_s:
            assessing[k] = True
    return in_flight, shots, assessing, channels


def snapshot(ids: list[int], last_update_s: list[float]) -> TrackSnapshot:
    n = len(ids)
    return TrackSnapshot(np.array(ids, np.int64), np.full(n, 2, np.int8), np.zeros((n, 6)), np.zeros((n, 6, 6)),
                         np.array(last_update_s), np.full(n, -1, np.int32), np.full(n, 5, np.int32))


rounds = st.lists(st.tuples(st.integers(1, 12), st.integers(0, N_LAUNCHERS - 1),
                            st.sampled_from(["flying", "unconfirmed", "not_launched"]),
                            st.floats(0.0, 30.0), st.floats(0.0, 10.0)), max_size=30)


@given(ids=st.lists(st.integers(1, 12), unique=True, max_size=10), rounds=rounds,
       pending=st.lists(st.integers(1, 14), max_size=3), t_s=st.floats(0.0, 40.0),
       seen=st.lists(st.floats(0.0, 40.0), min_size=10, max_size=10))
@settings(max_examples=300, deadline=None)
def test_engagement_inputs_are_the_reference(ids: list[int], rounds: list[Any], pending: list[int], t_s: float,
                                             seen: list[float]) -> None:
    host = build_host(SCENARIO)
    for tid, li, state, intercept_s, look_s in rounds:
        host.rounds.append(HostRound(tid, li, 1, 0.0, intercept_s, intercept_s + look_s, (0.0, 0.0, 0.0), state=state))
    for tid in pending:
        host.pending.append(FireOrder(tid, 0, (0.0, 0.0, 0.0), 5.0, 0, 0, 0))
    tracks = snapshot(ids, seen[: len(ids)])
    engagements, channels = host.engagement_inputs(t_s, tracks)
    got = (engagements.in_flight, engagements.shots_fired, engagements.assessing, channels)
    for a, b in zip(got, reference(host, t_s, tracks), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)


@given(ids=st.lists(st.integers(1, 12), unique=True, max_size=10), rounds=rounds, split=st.integers(0, 30),
       settle=st.lists(st.tuples(st.integers(0, 29), st.booleans()), max_size=4), t_s=st.floats(0.0, 40.0),
       seen=st.lists(st.floats(0.0, 40.0), min_size=10, max_size=10))
@settings(max_examples=200, deadline=None)
def test_engagement_inputs_follow_rounds_added_and_settled_between_decisions(
        ids: list[int], rounds: list[Any], split: int, settle: list[tuple[int, bool]], t_s: float,
        seen: list[float]) -> None:
    """The kernel's round columns grow with the rounds between decisions and follow a settle: each decision is told
    what the reference makes of every round as it is then."""
    host = build_host(SCENARIO)
    tracks = snapshot(ids, seen[: len(ids)])

    def told() -> None:
        engagements, channels = host.engagement_inputs(t_s, tracks)
        got = (engagements.in_flight, engagements.shots_fired, engagements.assessing, channels)
        for a, b in zip(got, reference(host, t_s, tracks), strict=True):
            assert np.array_equal(a, b)

    for k, (tid, li, state, intercept_s, look_s) in enumerate(rounds):
        if k == split:
            told()
        host.rounds.append(HostRound(tid, li, k + 1, 0.0, intercept_s, intercept_s + look_s, (0.0, 0.0, 0.0),
                                     state=state))
        told() if k % 7 == 3 else None
    told()
    for k, launched in settle:
        if k < len(host.rounds):
            r = host.rounds[k]
            host.settled(r.launcher, r.seq, launched, t_s)
            told()


@given(rounds=rounds, steps=st.lists(st.floats(0.0, 45.0), min_size=1, max_size=6),
       settle=st.lists(st.tuples(st.integers(0, 29), st.booleans(), st.integers(0, 5)), max_size=4))
@settings(max_examples=200, deadline=None)
def test_kill_assessment_takes_each_round_once_when_its_look_ends(rounds: list[Any], steps: list[float],
                                                                   settle: list[tuple[int, bool, int]]) -> None:
    """Kill assessment, however the rounds and settles come between its calls, assesses what looking at every round
    assesses (the rule it had): each round flying and not yet assessed whose look has ended, in the order they were
    commanded, each once; an unconfirmed one only once it is settled as launched."""
    events: list[tuple[float, int, int]] = []
    host = build_host(SCENARIO, on_event=lambda t, e, track=-1, launcher=-1, detail="": events.append(
        (t, track, launcher)) if e == "assessment" else None)
    half = len(rounds) // 2
    expected: list[tuple[float, int, int]] = []
    assessed: set[int] = set()
    for step, t_s in enumerate(sorted(steps)):
        if step <= 1:  # half the rounds before the first call, the rest before the second
            for tid, li, state, intercept_s, look_s in (rounds if len(steps) == 1 else
                                                        rounds[:half] if step == 0 else rounds[half:]):
                host.rounds.append(HostRound(tid, li, len(host.rounds) + 1, 0.0, intercept_s, intercept_s + look_s,
                                             (0.0, 0.0, 0.0), state=state))
        for k, launched, at_step in settle:
            if at_step == step and k < len(host.rounds) and host.rounds[k].state == "unconfirmed":
                host.settled(host.rounds[k].launcher, host.rounds[k].seq, launched, t_s)
        for k, r in enumerate(host.rounds):  # the rule, over every round
            if r.state == "flying" and k not in assessed and t_s >= r.look_end_s:
                assessed.add(k)
                expected.append((t_s, r.track_id, r.launcher))
        host.assess(t_s)
    assert events == expected
