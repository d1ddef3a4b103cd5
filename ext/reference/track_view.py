"""Numpy twin of the track-view kernel (hil.ext.track_view): the tracks fire control sees, picked from a snapshot.

Host(compiled=False) runs on it, and tests/kernels/test_track_view.py holds the kernel to its answers bit for bit.
The model is in ext/track_view.pyx's docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from hil.ext.tracker_types import TrackSnapshot, TrackStatus

CONFIRMED, TENTATIVE = int(TrackStatus.CONFIRMED), int(TrackStatus.TENTATIVE)


def fire_control_rows(snapshot: TrackSnapshot, friendly_codes: npt.ArrayLike, neutral_codes: npt.ArrayLike,
                      near_m: float) -> tuple[Any, ...]:
    """What hil.ext.track_view.fire_control_rows returns, the same way."""
    s = TrackSnapshot(np.asarray(snapshot.track_id, np.int64), np.asarray(snapshot.status, np.int8),
                      np.asarray(snapshot.state, np.float64).reshape(-1, 6),
                      np.asarray(snapshot.cov, np.float64).reshape(-1, 6, 6),
                      np.asarray(snapshot.last_update_s, np.float64), np.asarray(snapshot.mode3a, np.int32),
                      np.asarray(snapshot.hits, np.int32))
    coded = s.mode3a >= 0
    friendly = coded & np.isin(s.mode3a, np.asarray(friendly_codes, np.int32))
    protected = friendly | (coded & np.isin(s.mode3a, np.asarray(neutral_codes, np.int32)))
    confirmed = s.status == CONFIRMED
    keep = confirmed | protected
    held_by = np.full(len(confirmed), -1, np.int64)
    unidentified = np.flatnonzero(~confirmed & ~coded)
    if len(unidentified) and confirmed.any():
        mine, others = s.state[confirmed, :3], s.state[unidentified, :3]
        ci, ui = np.nonzero(np.abs(mine[:, None, 0] - others[None, :, 0]) <= near_m)
        close = ((mine[ci] - others[ui]) ** 2).sum(axis=1) <= near_m**2
        rows, first = np.unique(ci[close], return_index=True)  # each held track, the first unidentified one near it
        held_by[np.flatnonzero(confirmed)[rows]] = unidentified[ui[close][first]]
    status = s.status.copy()
    status[held_by >= 0] = TENTATIVE
    cov = s.cov[keep]
    tracks = TrackSnapshot(s.track_id[keep], status[keep], s.state[keep], cov, s.last_update_s[keep],
                           s.mode3a[keep], s.hits[keep])
    pos_var = cov[:, 0, 0] + cov[:, 1, 1] + cov[:, 2, 2]
    vel_var = cov[:, 3, 3] + cov[:, 4, 4] + cov[:, 5, 5]
    held = held_by[keep]
    rows = np.flatnonzero(held >= 0)
    return (tracks, pos_var, friendly[keep], (protected & ~friendly)[keep], vel_var,
            np.stack([rows, held[rows]], axis=1).astype(np.int64), np.flatnonzero(protected).astype(np.int64))


def confirmed_news(snapshot: TrackSnapshot, since_s: float) -> tuple[int, int, bool]:
    """What hil.ext.track_view.confirmed_news returns."""
    confirmed = np.asarray(snapshot.status) == CONFIRMED
    ids = np.asarray(snapshot.track_id, np.int64)[confirmed]
    return len(ids), int(ids.sum()), bool((np.asarray(snapshot.last_update_s, np.float64)[confirmed] >= since_s).any())


def engagement_counts(track_id: npt.ArrayLike, last_update_s: npt.ArrayLike, t_s: float, pending_track: npt.ArrayLike,
                      round_track: npt.ArrayLike, round_launcher: npt.ArrayLike, round_state: npt.ArrayLike,
                      round_intercept_s: npt.ArrayLike, round_look_end_s: npt.ArrayLike,
                      n_launchers: int) -> tuple[Any, ...]:
    """What hil.ext.track_view.engagement_counts returns, round by round in plain Python (its docstring has the
    rule; round states: 0 flying, 1 unconfirmed, 2 not launched)."""
    ids = np.asarray(track_id, np.int64).tolist()
    last = np.asarray(last_update_s, np.float64).tolist()
    n = len(ids)
    row = dict(zip(ids, range(n), strict=True))  # a track id on several rows: the last
    in_flight, shots = np.zeros(n, np.int32), np.zeros(n, np.int32)
    assessing, channels = np.zeros(n, bool), np.zeros(n_launchers, np.int32)
    for tid in np.asarray(pending_track, np.int64).tolist():
        if tid in row:
            in_flight[row[tid]] += 1
    rounds = zip(*(np.asarray(c).tolist() for c in (round_track, round_launcher, round_state, round_intercept_s,
                                                     round_look_end_s)), strict=True)
    for tid, launcher, state, intercept_s, look_end_s in rounds:
        if not 0 <= launcher < n_launchers:
            raise ValueError(f"launcher {launcher} is not one of the {n_launchers}")
        if state == 2:
            continue
        airborne = state == 1 or t_s < intercept_s
        if airborne:
            channels[launcher] += 1
        k = row.get(tid)
        if k is None:
            continue
        shots[k] += 1
        if airborne:
            in_flight[k] += 1
        elif t_s < look_end_s or last[k] <= intercept_s:
            assessing[k] = True
    return in_flight, shots, assessing, channels


def confirmed_refusals(track_index: npt.ArrayLike, launcher_index: npt.ArrayLike, reason: npt.ArrayLike,
                       protected_index: npt.ArrayLike, track_id: npt.ArrayLike, status: npt.ArrayLike,
                       sorted_keys: npt.ArrayLike, sorted_rows: npt.ArrayLike, recent_keys: npt.ArrayLike,
                       recent_rows: npt.ArrayLike, key_tracks: int) -> tuple[Any, ...]:
    """What hil.ext.track_view.confirmed_refusals returns, in numpy (the recent keys looked up in a dict)."""
    rows = np.asarray(track_index, np.int64)
    track_id, status = np.asarray(track_id, np.int64), np.asarray(status, np.int8)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(track_id)):
        raise ValueError("a refusal names a track row outside the tracks")
    protected = np.asarray(protected_index, np.int64)
    if len(protected) and (protected.min() < -1 or protected.max() >= len(track_id)):
        raise ValueError("a refusal names a protected track row outside the tracks")
    of_confirmed = status[rows] == CONFIRMED
    rows = rows[of_confirmed]
    launcher = np.asarray(launcher_index, np.int64)[of_confirmed]
    code = np.asarray(reason, np.int64)[of_confirmed]
    protected = protected[of_confirmed]
    refused_ids = track_id[rows]
    with np.errstate(over="ignore"):
        keys = (refused_ids * 65536 + (launcher + 1)) * 256 + code
    plain = bool(len(rows)) and bool(refused_ids.min() < 0 or refused_ids.max() >= key_tracks)
    at = np.full(len(keys), -1, np.int64)
    if not plain:
        sorted_keys, sorted_rows = np.asarray(sorted_keys, np.int64), np.asarray(sorted_rows, np.int64)
        if len(sorted_keys):
            k = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
            at = np.where(sorted_keys[k] == keys, sorted_rows[k], -1)
        recent = dict(zip(np.asarray(recent_keys, np.int64).tolist(), np.asarray(recent_rows, np.int64).tolist(),
                          strict=True))
        for i in np.flatnonzero(at < 0).tolist():
            at[i] = recent.get(int(keys[i]), -1)
    return rows, launcher, code, protected, keys, at, plain


__all__ = ["confirmed_news", "confirmed_refusals", "engagement_counts", "fire_control_rows"]
