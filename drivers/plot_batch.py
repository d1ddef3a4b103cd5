"""PlotBatch: decoded radar plots as a preallocated struct of arrays (no Python object per plot).

A radar link's decoder (hil.ext.decode.LinkDecoder) writes plots straight into a batch's columns; the host
merges the batches of one loop iteration and feeds them to its tracker.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

PLOT_DTYPES: dict[str, type] = {
    "t_s": np.float64,  # host clock, seconds: t0 mapped through the board's clock offset
    "sensor": np.int32,
    "range_m": np.float64,
    "azimuth_rad": np.float64,  # clockwise from north
    "elevation_rad": np.float64,  # NaN when the plot carried no height
    "range_rate_mps": np.float64,  # positive receding, NaN when absent
    "mode3a": np.int32,  # 12-bit code, -1 when absent
    "board_t_us": np.int64,  # t0 as the board stamped it
    "host_rx_ns": np.int64,  # t1: when the host read the bytes
}


def elevation_from_height(
    height_m: npt.ArrayLike, range_m: npt.ArrayLike, site_z_m: float
) -> npt.NDArray[np.float64]:
    """Elevation of plots from I110 height and range (flat earth, as the emulators encode it).

    The sine is clipped to [-1, 1] (height quantisation can push it past at short range) and a zero range
    gives elevation 0; a NaN height gives NaN. The Cython decoder computes the same expression.
    """
    h = np.asarray(height_m, dtype=np.float64)
    r = np.asarray(range_m, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.clip((h - site_z_m) / r, -1.0, 1.0)
    return np.where(r > 0.0, np.arcsin(s), np.where(np.isnan(h), np.nan, 0.0))


@dataclass(eq=False, slots=True)
class PlotBatch:
    """Plots in SI, one array per field; rows [0, n) are valid, the arrays hold `capacity` rows."""

    t_s: npt.NDArray[np.float64]
    sensor: npt.NDArray[np.int32]
    range_m: npt.NDArray[np.float64]
    azimuth_rad: npt.NDArray[np.float64]
    elevation_rad: npt.NDArray[np.float64]
    range_rate_mps: npt.NDArray[np.float64]
    mode3a: npt.NDArray[np.int32]
    board_t_us: npt.NDArray[np.int64]
    host_rx_ns: npt.NDArray[np.int64]
    n: int = field(default=0)

    @classmethod
    def empty(cls, capacity: int) -> PlotBatch:
        columns: dict[str, Any] = {name: np.zeros(capacity, dtype=dt) for name, dt in PLOT_DTYPES.items()}
        return cls(**columns)

    @property
    def capacity(self) -> int:
        return len(self.t_s)

    def __len__(self) -> int:
        return self.n

    def clear(self) -> None:
        self.n = 0

    def column(self, name: str) -> np.ndarray:
        """The valid rows of one field (a view: it changes when the batch is refilled)."""
        column: np.ndarray = getattr(self, name)[: self.n]
        return column

    def copy(self) -> PlotBatch:
        """A trimmed copy that survives the next refill of this batch."""
        columns: dict[str, Any] = {name: self.column(name).copy() for name in PLOT_DTYPES}
        return PlotBatch(**columns, n=self.n)

    def extend(self, other: PlotBatch) -> None:
        """Append other's valid rows; raises ValueError when they do not fit."""
        end = self.n + other.n
        if end > self.capacity:
            raise ValueError(f"{other.n} plots do not fit: {self.n} of {self.capacity} rows used")
        for name in PLOT_DTYPES:
            getattr(self, name)[self.n : end] = other.column(name)
        self.n = end

    def equals(self, other: PlotBatch, rtol: float = 0.0) -> bool:
        """Same valid rows (NaN equals NaN); floats compared with rtol."""
        if self.n != other.n:
            return False
        for f in fields(self):
            if f.name == "n":
                continue
            a, b = self.column(f.name), other.column(f.name)
            if a.dtype.kind == "f":
                if not np.allclose(a, b, rtol=rtol, atol=0.0, equal_nan=True):
                    return False
            elif not np.array_equal(a, b):
                return False
        return True
