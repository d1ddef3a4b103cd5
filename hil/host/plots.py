"""One loop iteration's radar plots to the tracker: several links' PlotBatches merged in time order, with the
sector sweeps between them (the batch type itself is hil.drivers.plot_batch.PlotBatch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hil.drivers.plot_batch import PlotBatch

MERGED_COLUMNS = ("t_s", "sensor", "range_m", "azimuth_rad", "elevation_rad", "range_rate_mps", "mode3a",
                  "host_rx_ns")
IN_ORDER = np.arange(4096)  # the order of a batch already in time order (a view of it: none built per poll)
IN_ORDER.flags.writeable = False


def merge_in_time_order(batches: list[PlotBatch], in_place: bool = False,
                        in_order: bool | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Several radars' batches of one loop iteration as one time-ordered set of columns, and the order used.

    The host feeds the tracker exactly this (hil.runtime), and replay rebuilds it (hil.records.replay): one function,
    so the two can never drift apart. in_place: one batch already in time order (most iterations: one radar's dwell)
    comes back as views of its rows, valid until the batch is refilled (the host's fire path: no copy before the fire
    command); else the columns are the caller's. in_order: whether one batch's times are known to be in order (the
    host's fire path knows it from hil.ext.decode.run_times); None: looked at here.
    """
    if len(batches) == 1:
        b = batches[0]
        n = b.n
        cols = {"t_s": b.t_s[:n], "sensor": b.sensor[:n], "range_m": b.range_m[:n], "azimuth_rad": b.azimuth_rad[:n],
                "elevation_rad": b.elevation_rad[:n], "range_rate_mps": b.range_rate_mps[:n], "mode3a": b.mode3a[:n],
                "host_rx_ns": b.host_rx_ns[:n]}  # MERGED_COLUMNS, spelled out: no getattr by name on the fire path
        t = cols["t_s"]
        if in_order if in_order is not None else (n < 2 or not (t[1:] < t[:-1]).any()):
            return (cols if in_place else {k: v.copy() for k, v in cols.items()}), IN_ORDER[:n] if n <= len(
                IN_ORDER) else np.arange(n)
    else:
        cols = {name: np.concatenate([getattr(b, name)[: b.n] for b in batches]) for name in MERGED_COLUMNS}
    order = np.argsort(cols["t_s"], kind="stable")
    return {k: v[order] for k, v in cols.items()}, order


def feed_tracker(tracker: Any, cols: dict[str, np.ndarray] | None, sweeps: list[tuple[float, int, float]],
                 sector_az: list[float]) -> None:
    """One loop iteration's plots (time-ordered columns, run-relative t_s) and sector sweeps (run time, radar,
    azimuth reached) into the tracker in one time order: the plots up to each sweep, then that sweep.

    A poll normally holds one dwell, but after a stalled or delayed link it holds seconds of them: applying
    every plot before every sweep would make the late sweeps count misses against tracks the plots had just
    updated, and delete them. sector_az holds each radar's previous sector azimuth (NaN before the first) and
    is updated. The runtime and replay both feed the tracker here.
    """
    names = ("t_s", "sensor", "range_m", "azimuth_rad", "elevation_rad", "range_rate_mps", "mode3a")
    n = 0 if cols is None else len(cols["t_s"])
    start = 0
    for t_sweep, radar, az in sorted(sweeps):
        if cols is not None:
            end = int(np.searchsorted(cols["t_s"], t_sweep, side="right"))
            if end > start:
                tracker.update(*(cols[k][start:end] for k in names))
                start = end
        prev = sector_az[radar]
        if prev == prev:  # not NaN: the beam's previous sector boundary is known
            tracker.sector_swept(radar, t_sweep, prev, az)
        sector_az[radar] = az
    if cols is not None and start < n:
        tracker.update(*(cols[k][start:] if start else cols[k] for k in names))
