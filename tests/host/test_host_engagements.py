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
