"""A rotating search radar: which targets the beam sweeps, with Pd, polar Gaussian noise and Poisson clutter.

Clutter is a Poisson process in the beam's angle (clutter_per_scan a turn) drawn from its own random stream,
ahead of the beam: the same seed gives the same clutter however the sweeps are cut (a board stepped every 5 ms in
virtual time, a board process in real time, a whole scenario at once), and a sweep with no clutter plot in its
turn costs a comparison.

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
CLUTTER_STREAM = 1  # the clutter's random stream, beside the detections' (the seed alone)
CLUTTER_BATCH = 256  # clutter plots drawn ahead at a time
CROSSING_MARGIN_RAD = 1e-6  # earliest_crossings keeps this far on the safe side of the rounding of angles

# shared by every empty PlotSet (read-only: nothing can be written into a set of no plots)
_NO_FLOATS = np.zeros(0)
_NO_CODES = np.zeros(0, np.int32)
_NO_TARGETS = np.zeros(0, np.int64)
for _array in (_NO_FLOATS, _NO_CODES, _NO_TARGETS):
    _array.flags.writeable = False

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
        return cls(_NO_FLOATS, _NO_FLOATS, _NO_FLOATS, _NO_FLOATS, _NO_FLOATS, _NO_CODES, _NO_TARGETS)

    def __len__(self) -> int:
        return len(self.t_s)

    @classmethod
    def concat(cls, parts: list[PlotSet]) -> PlotSet:
        """The parts' plots in one set, time ordered (a stable sort: equal times keep the parts' order)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            merged = parts[0]
            if len(merged) == 1:
                return merged
        else:
            merged = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
        order = np.argsort(merged.t_s, kind="stable")
        return cls(*(getattr(merged, f)[order] for f in _FIELDS))


_FIELDS = tuple(PlotSet.__dataclass_fields__)


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
        self._clutter_rng = np.random.default_rng((seed, CLUTTER_STREAM))
        self._clutter_ahead = np.full((1, 4), spec.north_offset_rad)  # beam, range, elevation, range rate
        self._clutter_next = 1  # row of the next clutter plot in _clutter_ahead
        # unwrapped beam angle of the next clutter plot (never, without clutter)
        self._clutter_beam = spec.north_offset_rad if spec.clutter_per_scan > 0 else math.inf
        if spec.clutter_per_scan > 0:
            self._draw_clutter()

    @property
    def next_clutter_beam(self) -> float:
        """The unwrapped beam azimuth of the next clutter plot (inf without clutter): a sweep whose turn ends
        before it draws none."""
        return self._clutter_beam

    def beam(self, t_s: float) -> float:
        """Unwrapped beam azimuth (radians) at t_s."""
        return self.spec.north_offset_rad + self.omega * (t_s - self.t_epoch_s)

    def next_sector(self, t_s: float) -> int:
        """The number of the next sector boundary the beam reaches after t_s, counted unwrapped: a sweep from t_s to
        t_to crosses one exactly when floor(beam(t_to) / width) reaches it (as sectors_crossed counts them)."""
        return math.floor(self.beam(t_s) / (TWO_PI / self.spec.sectors)) + 1

    def sectors_crossed(self, t_from: float, t_to: float) -> list[SectorCrossing]:
        """Sector boundaries the beam reached in (t_from, t_to]; sector 0 is north."""
        n = self.spec.sectors
        width = TWO_PI / n
        k0 = self.next_sector(t_from)
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
        detections = self._detections(t_from, b0, b1, rows, mode3a, states_at) if len(rows) else None
        clutter = self._clutter(t_from, b0, b1)
        if detections is None:
            return PlotSet.empty() if clutter is None else clutter  # drawn in beam order: time ordered
        return PlotSet.concat([detections] if clutter is None else [detections, clutter])

    def earliest_crossings(self, t_s: float, states: FloatArray) -> FloatArray:
        """For targets at ENU states [n, 6] at t_s, each moving at constant velocity: a time before which no
        sweep starting at or after t_s can detect it (t_s itself where that cannot be bounded).

        A sweep over (t_from, t_to] detects only targets whose azimuth at t_from lies in the beam's turn
        (beam(t_from), beam(t_to)]. The beam closes the angle ahead of it to a target at omega plus at most
        the target's azimuth rate, which is at most its horizontal speed over its ground range (bounded below
        over the next scan); so the angle cannot be closed before the time returned. A margin of
        CROSSING_MARGIN_RAD keeps the rounding of the angles on the safe side.
        """
        rel = states[:, :3] - self.site
        ground = np.hypot(rel[:, 0], rel[:, 1])
        speed = np.hypot(states[:, 3], states[:, 4])
        near = ground - speed * self.spec.scan_period_s  # the closest it can come over the next scan
        rate = speed / np.maximum(near, 1e-9)  # a bound on its azimuth rate over that scan
        gap = np.mod(np.mod(np.arctan2(rel[:, 0], rel[:, 1]), TWO_PI) - self.beam(t_s), TWO_PI)
        bounded = (rate < self.omega) & (gap > CROSSING_MARGIN_RAD) & (gap < TWO_PI - CROSSING_MARGIN_RAD)
        return np.where(bounded, t_s + (gap - CROSSING_MARGIN_RAD) / (self.omega + rate), t_s)

    def _crossing_times(self, t_from: float, b0: float, b1: float, rows: np.ndarray,
                        states_at: StateFunction) -> tuple[np.ndarray, FloatArray]:
        """Which of rows the beam crosses in (b0, b1], and when. The target moves while the beam turns: the
        crossing of its azimuth at t_from is refined once with its azimuth at that crossing. A target not
        crossed at t_from is not crossed at all (its azimuth is taken at t_from again), so only the crossed
        ones are refined."""
        _, az, _ = enu_to_polar(states_at(rows, np.full(len(rows), t_from))[:, :3] - self.site)
        crossing = self._crossing(az, b0)
        hit = crossing <= b1
        t = np.full(len(rows), t_from)
        if hit.any():
            first = np.flatnonzero(hit)
            t_first = self.t_epoch_s + (crossing[first] - self.spec.north_offset_rad) / self.omega
            _, az, _ = enu_to_polar(states_at(rows[first], t_first)[:, :3] - self.site)
            crossing = self._crossing(az, b0)
            again = crossing <= b1
            hit[first] = again
            t[first] = np.where(again, self.t_epoch_s + (crossing - self.spec.north_offset_rad) / self.omega,
                                t_from)
        return hit, t

    @staticmethod
    def _crossing(az: FloatArray, b0: float) -> FloatArray:
        """The first unwrapped beam azimuth after b0 at which the beam points at azimuth az."""
        k = np.ceil((b0 - az) / TWO_PI)  # first crossing of az + 2πk after b0
        crossing = az + TWO_PI * k
        return np.where(crossing <= b0, crossing + TWO_PI, crossing)

    def _detections(self, t_from: float, b0: float, b1: float, rows: np.ndarray, mode3a: np.ndarray,
                    states_at: StateFunction) -> PlotSet:
        hit, t = self._crossing_times(t_from, b0, b1, rows, states_at)
        if not hit.any():
            return PlotSet.empty()
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

    def _draw_clutter(self) -> None:
        """The next CLUTTER_BATCH clutter plots, after the last one drawn: exponential gaps in beam angle."""
        s, rng = self.spec, self._clutter_rng
        beam = self._clutter_ahead[-1, 0] + np.cumsum(rng.exponential(TWO_PI / s.clutter_per_scan, CLUTTER_BATCH))
        self._clutter_ahead = np.column_stack([
            beam,
            rng.uniform(CLUTTER_MIN_RANGE_M, s.max_range_m, CLUTTER_BATCH),
            rng.uniform(0.0, CLUTTER_MAX_ELEVATION_RAD, CLUTTER_BATCH),
            rng.normal(0.0, CLUTTER_SIGMA_RANGE_RATE_MPS, CLUTTER_BATCH),
        ])
        self._clutter_next = 0
        self._clutter_beam = float(beam[0])

    def _clutter(self, t_from: float, b0: float, b1: float) -> PlotSet | None:
        """The clutter plots whose beam angle lies in (b0, b1]."""
        if self._clutter_beam > b1:
            return None
        rows = []
        while self._clutter_beam <= b1:
            ahead = self._clutter_ahead
            beams = ahead[self._clutter_next:, 0]
            stop = self._clutter_next + int(np.searchsorted(beams, b1, side="right"))
            start = self._clutter_next + int(np.searchsorted(beams, b0, side="right"))
            rows.append(ahead[start:stop])
            if stop < len(ahead):
                self._clutter_next, self._clutter_beam = stop, float(ahead[stop, 0])
            else:
                self._draw_clutter()
        taken = np.concatenate(rows) if len(rows) > 1 else rows[0]
        n = len(taken)
        if n == 0:
            return None
        s = self.spec
        beam = taken[:, 0]
        return PlotSet(
            t_s=self.t_epoch_s + (beam - s.north_offset_rad) / self.omega,
            range_m=taken[:, 1].copy(),
            azimuth_rad=np.mod(beam, TWO_PI),
            elevation_rad=taken[:, 2].copy(),
            range_rate_mps=taken[:, 3].copy(),
            mode3a=np.full(n, -1, np.int32),
            target=np.full(n, -1, np.int64),
        )
