"""Typed face of the compiled tracker kernel (ext/tracker.pyx); its types are in hil.ext.tracker_types."""

import numpy as np
import numpy.typing as npt

from hil.ext.tracker_types import TrackerConfig, TrackSnapshot

def solve_assignment(cost: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
    """Row -> column of the minimum-cost assignment of a square C-contiguous float64 matrix."""

class Tracker:
    """Central multi-radar tracker over one ENU frame (see ext/tracker.pyx)."""

    @property
    def config(self) -> TrackerConfig: ...
    @property
    def capacity(self) -> int: ...
    @property
    def n_sensors(self) -> int: ...
    def __init__(self, config: TrackerConfig, sites_enu: npt.ArrayLike, capacity: int = 4096,
                 sigmas: npt.ArrayLike | None = None, max_range_m: npt.ArrayLike | None = None) -> None: ...
    @property
    def plots_in(self) -> int: ...
    @property
    def plots_used(self) -> int: ...
    @property
    def bad_plots(self) -> int: ...
    @property
    def late_plots(self) -> int: ...
    @property
    def gated_out(self) -> int: ...
    @property
    def new_tracks(self) -> int: ...
    @property
    def confirmed(self) -> int: ...
    @property
    def deleted(self) -> int: ...
    @property
    def dropped_full(self) -> int: ...
    @property
    def late_sweeps(self) -> int: ...
    @property
    def n_tracks(self) -> int: ...
    @property
    def pending_units(self) -> int: ...
    def counters(self) -> dict[str, int]:
        """Every counter by name (plots_in, plots_used, bad_plots, late_plots, gated_out, new_tracks, ...)."""
    def update(self, t_s: npt.ArrayLike, sensor: npt.ArrayLike, range_m: npt.ArrayLike,
               azimuth_rad: npt.ArrayLike, elevation_rad: npt.ArrayLike, range_rate_mps: npt.ArrayLike | None,
               mode3a: npt.ArrayLike | None = None) -> None:
        """One batch of plots (1-D arrays, time ordered; NaN range-rate = absent; mode3a -1 = no reply)."""
    def sector_swept(self, sensor: int, t_s: float, az_from_rad: float, az_to_rad: float) -> None:
        """The beam of sensor swept [az_from, az_to) clockwise by t_s: tracks there without a plot miss."""
    def flush(self, t_s: float | None = None) -> None:
        """Apply every buffered plot and sweep (up to t_s if given) now, whatever the reorder window."""
    def tracks(self, t_s: float | None = None, confirmed_only: bool = False) -> TrackSnapshot:
        """Snapshot of live tracks, predicted to t_s if given, ordered by track id."""
    def model_probabilities(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(track_id int64[n], mu float64[n, n_models]): the IMM's model probabilities."""
