"""A rotating search radar: which targets the beam sweeps, with Pd, polar Gaussian noise and Poisson clutter.

The board side of the radar: it knows the sensor only as the SENSOR_CONFIG frame describes it
(RadarParameters), never the scenario. The plant's offline plots of a whole scenario (scan_plots) and the
SENSOR_CONFIG built from a scenario's radar (config_from_spec) are in hil.plant.radars.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hil.drivers.framing import SensorConfig
from hil.geo import FloatArray, enu_to_polar, range_rate

TWO_PI = 2.0 * math.pi
CLUTTER_MIN_RANGE_M = 1_000.0
CLUTTER_MAX_ELEVATION_RAD = math.radians(3.0)
CLUTTER_SIGMA_RANGE_RATE_MPS = 15.0

# states_at(target_rows, times) -> ENU states [n, 6] of those targets at those times
StateFunction = Callable[[np.ndarray, FloatArray], FloatArray]


class RadarPhysics(Protocol):
    """What the model needs of a radar: RadarParameters on a board, a scenario's RadarSpec on the plant side."""

    @property
    def site(self) -> tuple[float, float, float]: ...
    @property
    def scan_period_s(self) -> float: ...
    @property
    def sigma_range_m(self) -> float: ...
    @property
    def sigma_azimuth_rad(self) -> float: ...
    @property
    def sigma_elevation_rad(self) -> float: ...
    @property
    def sigma_range_rate_mps(self) -> float: ...
    @property
    def pd(self) -> float: ...
    @property
    def clutter_per_scan(self) -> float: ...
    @property
    def max_range_m(self) -> float: ...
    @property
    def iff_reply_p(self) -> float: ...
    @property
    def sectors(self) -> int: ...
    @property
    def north_offset_rad(self) -> float: ...


@dataclass(frozen=True)
class RadarParameters:
    """A radar as its board knows it from SENSOR_CONFIG (docs/PROTOCOLS.md §1): site ENU in metres, beam
    period, measurement noise, Pd, clutter density, range, IFF reply probability, CAT034 sectors."""

    site: tuple[float, float, float]
    scan_period_s: float
    sigma_range_m: float
    sigma_azimuth_rad: float
    sigma_elevation_rad: float
    sigma_range_rate_mps: float
    pd: float
    clutter_per_scan: float
    max_range_m: float
    iff_reply_p: float
    sectors: int
    north_offset_rad: float

    @classmethod
    def from_config(cls, cfg: SensorConfig) -> RadarParameters:
        return cls(
            site=(cfg.site_x, cfg.site_y, cfg.site_z), scan_period_s=cfg.scan_period_s,
            sigma_range_m=cfg.sigma_range_m, sigma_azimuth_rad=cfg.sigma_azimuth_rad,
            sigma_elevation_rad=cfg.sigma_elevation_rad, sigma_range_rate_mps=cfg.sigma_range_rate_mps, pd=cfg.pd,
            clutter_per_scan=cfg.clutter_per_scan, max_range_m=cfg.max_range_m, iff_reply_p=cfg.iff_reply_p,
            sectors=max(cfg.sectors, 1), north_offset_rad=cfg.north_offset_rad,
        )


@dataclass
class PlotSet:
    """Plots in SI and radar conventions, time ordered; target is the truth index (-1 for clutter)."""

    t_s: FloatArray
    range_m: FloatArray
    azimuth_rad: FloatArray
    elevation_rad: FloatArray
    range_rate_mps: FloatArray
    mode3a: np.ndarray
    target: np.ndarray

    @classmethod
    def empty(cls) -> PlotSet:
        f = np.zeros(0)
        return cls(f, f, f, f, f, np.zeros(0, np.int32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.t_s)

    @classmethod
    def concat(cls, parts: list[PlotSet]) -> PlotSet:
        if not parts:
            return cls.empty()
        merged = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))
        order = np.argsort(merged.t_s, kind="stable")
        return cls(*(getattr(merged, f)[order] for f in cls.__dataclass_fields__))


@dataclass(frozen=True)
class SectorCrossing:
    t_s: float
    sector: int
    azimuth_rad: float

    @property
    def is_north(self) -> bool:
        return self.sector == 0


class RadarModel:
    """The sensor physics shared by every radar emulator (software, Pi, and the generator of benchmarks).

    The beam turns clockwise at 2π/scan_period from north_offset at t_epoch; a target is detected
    (with probability Pd) at the instant the beam crosses its azimuth.
    """

    def __init__(self, spec: RadarPhysics, seed: int, t_epoch_s: float = 0.0) -> None:
        self.spec = spec
        self.site = np.array(spec.site, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        self.t_epoch_s = t_epoch_s
        self.omega = TWO_PI / spec.scan_period_s

    def beam(self, t_s: float) -> float:
        """Unwrapped beam azimuth (radians) at t_s."""
        return self.spec.north_offset_rad + self.omega * (t_s - self.t_epoch_s)

    def sectors_crossed(self, t_from: float, t_to: float) -> list[SectorCrossing]:
        """Sector boundaries the beam reached in (t_from, t_to]; sector 0 is north."""
        n = self.spec.sectors
        width = TWO_PI / n
        k0 = math.floor(self.beam(t_from) / width) + 1
        k1 = math.floor(self.beam(t_to) / width)
        out = []
        for k in range(k0, k1 + 1):
            t = self.t_epoch_s + (k * width - self.spec.north_offset_rad) / self.omega
            out.append(SectorCrossing(t_s=t, sector=k % n, azimuth_rad=(k % n) * width))
        return out

    def sweep(self, t_from: float, t_to: float, rows: np.ndarray, mode3a: np.ndarray,
              states_at: StateFunction) -> PlotSet:
        """Plots of the beam's sweep over (t_from, t_to] for the targets in rows (live at t_from)."""
        b0, b1 = self.beam(t_from), self.beam(t_to)
        parts = [self._detections(t_from, b0, b1, rows, mode3a, states_at), self._clutter(t_from, b0, b1)]
        return PlotSet.concat(parts)

    def _crossing_times(self, t_from: float, b0: float, b1: float, rows: np.ndarray,
                        states_at: StateFunction) -> tuple[np.ndarray, FloatArray]:
        t = np.full(len(rows), t_from)
        hit = np.zeros(len(rows), dtype=bool)
        for _ in range(2):  # the target moves while the beam turns: refine the crossing once
            _, az, _ = enu_to_polar(states_at(rows, t)[:, :3] - self.site)
            k = np.ceil((b0 - az) / TWO_PI)  # first crossing of az + 2πk after b0
            crossing = az + TWO_PI * k
            crossing = np.where(crossing <= b0, crossing + TWO_PI, crossing)
            hit = crossing <= b1
            t = np.where(hit, self.t_epoch_s + (crossing - self.spec.north_offset_rad) / self.omega, t_from)
        return hit, t

    def _detections(self, t_from: float, b0: float, b1: float, rows: np.ndarray, mode3a: np.ndarray,
                    states_at: StateFunction) -> PlotSet:
        if len(rows) == 0:
            return PlotSet.empty()
        hit, t = self._crossing_times(t_from, b0, b1, rows, states_at)
        rows, mode3a, t = rows[hit], mode3a[hit], t[hit]
        states = states_at(rows, t)
        rel = states[:, :3] - self.site
        rng, az, el = enu_to_polar(rel)
        rr = range_rate(rel, states[:, 3:])
        s = self.spec
        seen = (rng <= s.max_range_m) & (self.rng.random(len(rows)) < s.pd)
        n = int(seen.sum())
        replies = (mode3a[seen] >= 0) & (self.rng.random(n) < s.iff_reply_p)
        return PlotSet(
            t_s=t[seen],
            range_m=np.maximum(rng[seen] + self.rng.normal(0.0, s.sigma_range_m, n), 1.0),
            azimuth_rad=np.mod(az[seen] + self.rng.normal(0.0, s.sigma_azimuth_rad, n), TWO_PI),
            elevation_rad=np.clip(el[seen] + self.rng.normal(0.0, s.sigma_elevation_rad, n), -0.5, 1.5),
            range_rate_mps=rr[seen] + self.rng.normal(0.0, s.sigma_range_rate_mps, n),
            mode3a=np.where(replies, mode3a[seen], -1).astype(np.int32),
            target=rows[seen].astype(np.int64),
        )

    def _clutter(self, t_from: float, b0: float, b1: float) -> PlotSet:
        s = self.spec
        n = int(self.rng.poisson(s.clutter_per_scan * (b1 - b0) / TWO_PI))
        if n == 0:
            return PlotSet.empty()
        beam = self.rng.uniform(b0, b1, n)
        return PlotSet(
            t_s=self.t_epoch_s + (beam - s.north_offset_rad) / self.omega,
            range_m=self.rng.uniform(CLUTTER_MIN_RANGE_M, s.max_range_m, n),
            azimuth_rad=np.mod(beam, TWO_PI),
            elevation_rad=self.rng.uniform(0.0, CLUTTER_MAX_ELEVATION_RAD, n),
            range_rate_mps=self.rng.normal(0.0, CLUTTER_SIGMA_RANGE_RATE_MPS, n),
            mode3a=np.full(n, -1, np.int32),
            target=np.full(n, -1, np.int64),
        )
