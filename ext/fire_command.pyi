"""Typed face of the compiled fire-command kernel (ext/fire_command.pyx); its plain-Python twin is
hil.ext.reference.fire_command."""

from typing import Any

import numpy.typing as npt

def fire_request(track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float, tgo_s: float, seq: int,
                 block_address: int, el_min_cdeg: int, el_max_cdeg: int, range_max_m: int) -> bytes | None:
    """The function-16 request PDU writing one fire block (FIRE_TRACK..FIRE_CHECK), or None when the aim cannot be
    sent."""
    ...

def fire_orders(track_index: npt.ArrayLike, launcher_index: npt.ArrayLike, intercept_enu: npt.ArrayLike,
                time_of_flight_s: npt.ArrayLike, track_id: npt.ArrayLike, status: npt.ArrayLike,
                friendly: npt.ArrayLike, neutral: npt.ArrayLike, last_update_s: npt.ArrayLike,
                fresh_plot_times: npt.ArrayLike, fresh_t_abs_s: npt.ArrayLike, fresh_uncertainty_ns: float,
                fresh_uncertainties_ns: npt.ArrayLike | None, sites: npt.ArrayLike) -> list[tuple[Any, ...]]:
    """Per assignment, in order: (k, track row, launcher row, track id, interlock (0 fire, else an index into
    HOST_INTERLOCKS), plot time, plot row (-1: not among this iteration's plots), t0 host ns, t0 uncertainty ns,
    aim (east, north, up m), time to go s)."""
    ...
