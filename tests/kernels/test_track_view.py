"""The track-view kernel (hil.ext.track_view) against its numpy twin: the tracks fire control sees, which are held
for an unidentified track near them, and their identity inputs, bit for bit; and the host on either gives the
same run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.ext import track_view
from hil.ext.reference import track_view as reference
from hil.ext.tracker_types import TrackSnapshot, TrackStatus
from hil.host.fire_control import friendly_code_array, protection_inputs

FRIENDLY, NEUTRAL, OTHER = 0o4521, 0o7001, 0o1200
CODES = st.sampled_from([-1, -1, -1, FRIENDLY, NEUTRAL, OTHER])


@st.composite
def snapshots(draw: st.DrawFn) -> TrackSnapshot:
    """Live tracks bunched in a few kilometres (so unidentified tracks fall near confirmed ones), some on the
    same east coordinate or exactly near_m apart, any mix of status and codes."""
    n = draw(st.integers(0, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    state = rng.normal(0.0, 1500.0, (n, 6))
    if n >= 2 and draw(st.booleans()):
        state[1, :3] = state[0, :3] + [2000.0, 0.0, 0.0]  # exactly near_m east of track 0: on the edge
    a = rng.normal(0.0, 30.0, (n, 6, 6))
    cov = a @ a.transpose(0, 2, 1)
    status = np.array(draw(st.lists(st.sampled_from([1, 2]), min_size=n, max_size=n)), np.int8)
    mode3a = np.array(draw(st.lists(CODES, min_size=n, max_size=n)), np.int32)
    return TrackSnapshot(np.arange(1, n + 1, dtype=np.int64) * 3, status, state, cov, rng.uniform(0, 60, n),
                         mode3a, rng.integers(1, 40, n).astype(np.int32))


@settings(max_examples=300, deadline=None)
@given(snapshots(), st.sampled_from([0.0, 500.0, 2000.0, 1e9]),
       st.sampled_from([(), (FRIENDLY,), (FRIENDLY, OTHER)]), st.sampled_from([(), (NEUTRAL,), (NEUTRAL, FRIENDLY)]))
def test_the_kernel_picks_what_its_numpy_twin_picks(snapshot: TrackSnapshot, near_m: float,
                                                    friendly: tuple[int, ...], neutral: tuple[int, ...]) -> None:
    fc, nc = friendly_code_array(friendly), friendly_code_array(neutral)
    got = track_view.fire_control_rows(snapshot, fc, nc, near_m)
    want = reference.fire_control_rows(snapshot, fc, nc, near_m)
    got_columns: list[np.ndarray] = [*got[0], *got[1:]]
    want_columns: list[np.ndarray] = [*want[0], *want[1:]]
    for g, w in zip(got_columns, want_columns, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g, w)
    tracks, pos_var, is_friendly, is_neutral, vel_var, held, protected_rows = got
    # the model, said plainly: every confirmed or protected track and nothing else, a held one shown tentative
    # and held by a tentative track with no code within near_m; protected: a friendly or a neutral code
    coded = snapshot.mode3a >= 0
    protected = coded & np.isin(snapshot.mode3a, np.concatenate([fc, nc]))
    assert np.array_equal(protected_rows, np.flatnonzero(protected))
    keep = (snapshot.status == TrackStatus.CONFIRMED) | protected
    assert np.array_equal(tracks.track_id, snapshot.track_id[keep])
    assert held.shape == (len(held), 2) and np.array_equal(np.flatnonzero(tracks.status != snapshot.status[keep]),
                                                          held[:, 0])
    for k, j in held.tolist():
        assert tracks.status[k] == TrackStatus.TENTATIVE and snapshot.status[keep][k] == TrackStatus.CONFIRMED
        assert snapshot.status[j] != TrackStatus.CONFIRMED and snapshot.mode3a[j] < 0
        assert np.linalg.norm(tracks.state[k, :3] - snapshot.state[j, :3]) <= near_m * (1 + 1e-12)
    # the identity inputs are protection_inputs' (what replay recomputes from the records)
    ident = protection_inputs(tracks, fc, nc)
    assert np.array_equal(pos_var, ident.pos_var_m2) and np.array_equal(vel_var, ident.vel_var_m2s2)
    assert np.array_equal(is_friendly, ident.friendly) and np.array_equal(is_neutral, ident.neutral)


def test_a_tracker_of_other_dtypes_is_read_as_the_contract_says() -> None:
    """A user's tracker may hand over other dtypes (int64 codes and status) or lists: the kernel reads them as
    the contract's and picks the same rows as from the canonical dtypes."""
    rng = np.random.default_rng(3)
    n = 12
    canonical = TrackSnapshot(np.arange(n, dtype=np.int64), rng.choice([1, 2], n).astype(np.int8),
                              rng.normal(0, 800.0, (n, 6)), np.tile(np.eye(6), (n, 1, 1)), np.zeros(n),
                              rng.choice([-1, FRIENDLY], n).astype(np.int32), np.ones(n, np.int32))
    columns: list[Any] = [np.asarray(c, np.int64) if c.dtype.kind == "i" else c.tolist() for c in canonical]
    loose = TrackSnapshot(*columns)
    fc, nc = friendly_code_array([FRIENDLY]), friendly_code_array([])
    for g, w in zip(track_view.fire_control_rows(loose, fc, nc, 1000.0)[1:],
                    track_view.fire_control_rows(canonical, fc, nc, 1000.0)[1:], strict=True):
        assert np.array_equal(g, w)


def test_a_snapshot_whose_columns_disagree_is_one_clear_error() -> None:
    s = TrackSnapshot(np.arange(3, dtype=np.int64), np.ones(2, np.int8), np.zeros((3, 6)), np.zeros((3, 6, 6)),
                      np.zeros(3), np.full(3, -1, np.int32), np.ones(3, np.int32))
    with pytest.raises(ValueError, match="every column with 3 rows"):
        track_view.fire_control_rows(s, friendly_code_array([]), friendly_code_array([]), 100.0)


@settings(max_examples=200, deadline=None)
@given(snapshots(), st.floats(-1.0, 70.0))
def test_the_news_kernel_counts_what_its_numpy_twin_counts(snapshot: TrackSnapshot, since_s: float) -> None:
    got = track_view.confirmed_news(snapshot, since_s)
    assert got == reference.confirmed_news(snapshot, since_s)
    confirmed = snapshot.status == TrackStatus.CONFIRMED
    assert got[0] == int(confirmed.sum()) and got[2] == any(snapshot.last_update_s[confirmed] >= since_s)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(250, 500), st.sampled_from([300.0, 2000.0, 2500.0]))
def test_with_many_tracks_the_east_ordered_search_picks_what_the_reference_picks(seed: int, n: int,
                                                                                near_m: float) -> None:
    """Past 4,096 confirmed x unidentified pairs the kernel searches the unidentified tracks in east order: the same
    holds, each by the lowest row near it, on crowded pictures with tracks on one east line and on the window's
    edge."""
    rng = np.random.default_rng(seed)
    state = np.zeros((n, 6))
    state[:, :3] = rng.normal(0.0, 1500.0, (n, 3))
    state[: n // 10, 0] = state[0, 0]  # a tenth of them on one east coordinate
    state[n // 10: n // 5, 0] = state[0, 0] + near_m  # and a tenth exactly near_m east of it
    status = rng.choice(np.array([1, 2], np.int8), n)
    mode3a = rng.choice(np.array([-1, -1, -1, FRIENDLY], np.int32), n)
    snapshot = TrackSnapshot(np.arange(n, dtype=np.int64), status, state, np.tile(np.eye(6), (n, 1, 1)),
                             np.zeros(n), mode3a, np.ones(n, np.int32))
    fc, nc = friendly_code_array([FRIENDLY]), friendly_code_array([])
    assert int((status == 2).sum()) * int(((status != 2) & (mode3a < 0)).sum()) > 4096
    got = track_view.fire_control_rows(snapshot, fc, nc, near_m)
    want = reference.fire_control_rows(snapshot, fc, nc, near_m)
    assert np.array_equal(got[5], want[5]) and np.array_equal(got[0].status, want[0].status)
    assert len(got[5])  # the picture is crowded enough to hold some


def test_an_empty_snapshot_of_a_plug_in_s_plain_arrays_shows_nothing() -> None:
    """np.array([]) columns, as a plain-Python tracker with no track builds them: nothing to see, no error."""
    empty = TrackSnapshot(*(np.array([]) for _ in range(7)))
    got = track_view.fire_control_rows(empty, friendly_code_array([]), friendly_code_array([]), 500.0)
    assert len(got[0].track_id) == 0 and got[0].state.shape == (0, 6) and got[0].cov.shape == (0, 6, 6)
    assert track_view.confirmed_news(empty, 0.0) == (0, 0, False)


ROUNDS = st.lists(st.tuples(st.integers(0, 14), st.integers(0, 2), st.sampled_from([0, 1, 2]),
                            st.sampled_from([0.0, 5.0, 10.0, 20.0, np.nan]), st.sampled_from([0.0, 8.0, 15.0, 30.0])),
                  max_size=40)


@settings(max_examples=400, deadline=None)
@given(ids=st.lists(st.integers(0, 14), max_size=12), order=st.sampled_from(["ascending", "as drawn"]),
       seen=st.lists(st.sampled_from([0.0, 5.0, 10.0, 12.0, 25.0]), min_size=12, max_size=12),
       t_s=st.sampled_from([0.0, 5.0, 9.0, 10.0, 14.0, 40.0]), pending=st.lists(st.integers(0, 16), max_size=4),
       rounds=ROUNDS)
def test_the_engagement_counts_are_their_twins(ids: list[int], order: str, seen: list[float], t_s: float,
                                               pending: list[int], rounds: list[Any]) -> None:
    """Track ids ascending (a tracker's snapshot) or in any order with repeats (a plug-in's, or protected tracks held
    after the tracker dropped them): the kernel counts on the same rows as its twin, every count the same."""
    track_id = np.array(sorted(set(ids)) if order == "ascending" else ids, np.int64)
    last = np.array(seen[: len(track_id)])
    tr, la, st_, ic, le = (np.array([r[i] for r in rounds], dtype) for i, dtype in
                           enumerate((np.int64, np.int32, np.int8, np.float64, np.float64)))
    got = track_view.engagement_counts(track_id, last, t_s, np.array(pending, np.int64), tr, la, st_, ic, le, 3)
    want = reference.engagement_counts(track_id, last, t_s, np.array(pending, np.int64), tr, la, st_, ic, le, 3)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g, w)
    _, shots, _, channels = got
    launched = [r for r in rounds if r[2] != 2]
    assert shots.sum() == sum(1 for r in launched if r[0] in set(track_id.tolist()))
    assert channels.sum() == sum(1 for r in launched if r[2] == 1 or t_s < r[3])


def test_a_round_of_no_launcher_is_one_clear_error() -> None:
    for kernel in (track_view.engagement_counts, reference.engagement_counts):
        with pytest.raises(ValueError, match="launcher 5 is not one of the 2"):
            kernel(np.array([3], np.int64), np.zeros(1), 0.0, np.empty(0, np.int64), np.array([3], np.int64),
                   np.array([5], np.int32), np.zeros(1, np.int8), np.ones(1), np.ones(1), 2)


KEY_TRACKS = 1 << 39  # hil.host.host.REFUSAL_KEY_TRACKS


@st.composite
def refusal_cases(draw: st.DrawFn) -> tuple[Any, ...]:
    """One decision's refusals over tracks of any status, with track ids a key holds or (sometimes) not, and keys
    already given rows: some in the sorted index, some among the recent ones."""
    n_t = draw(st.integers(1, 10))
    big = draw(st.sampled_from([0, 0, 0, KEY_TRACKS, -5]))
    track_id = np.array(draw(st.lists(st.integers(0, 40), min_size=n_t, max_size=n_t)), np.int64)
    if big:
        track_id[draw(st.integers(0, n_t - 1))] = big
    status = np.array(draw(st.lists(st.sampled_from([1, 2]), min_size=n_t, max_size=n_t)), np.int8)
    n = draw(st.integers(0, 16))
    rows = np.array(draw(st.lists(st.integers(0, n_t - 1), min_size=n, max_size=n)), np.int32)
    launcher = np.array(draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)), np.int32)
    reason = np.array(draw(st.lists(st.integers(1, 25), min_size=n, max_size=n)), np.int8)
    protected = np.array(draw(st.lists(st.integers(-1, n_t - 1), min_size=n, max_size=n)), np.int32)
    # keys the host gave rows before: those of some of these refusals, and others
    keys = ((track_id[rows].astype(np.int64) * 65536 + launcher + 1) * 256 + reason).tolist()
    known = sorted(set(draw(st.lists(st.sampled_from(keys), max_size=8)) if keys else [])
                   | set(draw(st.lists(st.integers(0, 2**40), max_size=4))))
    split = draw(st.integers(0, len(known)))
    order = draw(st.permutations(range(len(known))))
    sorted_keys = np.array(sorted(known[i] for i in order[:split]), np.int64)
    recent_keys = np.array([known[i] for i in order[split:]], np.int64)
    sorted_rows = np.arange(len(sorted_keys), dtype=np.int64) * 2
    recent_rows = np.arange(len(recent_keys), dtype=np.int64) * 2 + 1
    return (rows, launcher, reason, protected, track_id, status, sorted_keys, sorted_rows, recent_keys, recent_rows,
            KEY_TRACKS)


@settings(max_examples=400, deadline=None)
@given(refusal_cases())
def test_the_refusals_kernel_is_its_numpy_twin(case: tuple[Any, ...]) -> None:
    """The refusals the host counts (those of confirmed tracks), their keys and the rows they are counted on, as the
    numpy twin finds them; with a track id no key holds, every refusal is counted plainly (no row)."""
    got, want = track_view.confirmed_refusals(*case), reference.confirmed_refusals(*case)
    assert got[6] == want[6]
    for name, g, w in zip(("rows", "launcher", "code", "protected", "keys", "at"), got[:6], want[:6], strict=True):
        if name == "keys" and got[6]:
            continue  # a plain count reads no key
        np.testing.assert_array_equal(g, w, err_msg=name)
    assert not got[6] or (got[5] == -1).all()


def test_a_refusal_of_a_track_row_that_is_not_there_is_one_clear_error() -> None:
    none = np.empty(0, np.int64)
    with pytest.raises(ValueError, match="refusal 0 names track row 3 of 2"):
        track_view.confirmed_refusals(np.array([3], np.int32), np.array([0], np.int32), np.array([5], np.int8),
                                      np.array([-1], np.int32), np.array([1, 2]), np.array([2, 2], np.int8),
                                      none, none, none, none, KEY_TRACKS)
