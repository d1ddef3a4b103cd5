"""Typed face of the compiled track-view kernel (ext/track_view.pyx); its numpy twin is
ext/reference/track_view.py. Whoever changes track_view.pyx's Python-visible names changes them here too."""

import numpy as np
import numpy.typing as npt

from hil.ext.tracker_types import TrackSnapshot

def fire_control_rows(snapshot: TrackSnapshot, friendly_codes: npt.ArrayLike, neutral_codes: npt.ArrayLike,
                      near_m: float) -> tuple[TrackSnapshot, npt.NDArray[np.float64], npt.NDArray[np.bool_],
                                              npt.NDArray[np.bool_], npt.NDArray[np.float64],
                                              npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(tracks, pos_var_m2, friendly, neutral, vel_var_m2s2, held, protected_rows): the rows fire control sees
    (confirmed or protected; held ones TENTATIVE), their identity inputs, held ([h, 2]: each held row seen and the
    snapshot row of the unidentified track holding it) and the snapshot rows that are protected."""
    ...

def confirmed_news(snapshot: TrackSnapshot, since_s: float) -> tuple[int, int, bool]:
    """(confirmed, id_sum, updated): the confirmed tracks' count and id sum, and whether any took a plot at since_s
    or later."""
    ...

def engagement_counts(track_id: npt.ArrayLike, last_update_s: npt.ArrayLike, t_s: float, pending_track: npt.ArrayLike,
                      round_track: npt.ArrayLike, round_launcher: npt.ArrayLike, round_state: npt.ArrayLike,
                      round_intercept_s: npt.ArrayLike, round_look_end_s: npt.ArrayLike,
                      n_launchers: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.bool_],
                                                 npt.NDArray[np.int32]]:
    """(in_flight, shots_fired, assessing, channels_in_use): the host's own rounds per track row and per launcher
    (round states: 0 flying, 1 unconfirmed, 2 not launched)."""
    ...

def confirmed_refusals(track_index: npt.ArrayLike, launcher_index: npt.ArrayLike, reason: npt.ArrayLike,
                       protected_index: npt.ArrayLike, track_id: npt.ArrayLike, status: npt.ArrayLike,
                       sorted_keys: npt.ArrayLike, sorted_rows: npt.ArrayLike, recent_keys: npt.ArrayLike,
                       recent_rows: npt.ArrayLike, key_tracks: int,
                       ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64],
                                  npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], bool]:
    """(rows, launcher, code, protected, keys, at, plain): a decision's refusals of confirmed tracks, each with its
    refusal key and the host's row for it (-1: none yet); plain: a track id a key cannot hold (every at -1)."""
    ...
