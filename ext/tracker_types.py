"""The tracker kernel's public types: its configuration, a sensor as it sees one, track status and snapshots,
and the late-plot reorder buffer. Plain Python and numpy: hil.ext.tracker (Cython) and its numpy twin
hil.ext.reference.tracker both take and return these; loading sensors from a file is the host's business
(hil.host.tracking).
"""

from __future__ import annotations

import enum
import functools
import heapq
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from hil.errors import ConfigError
from hil.geo import FloatArray

MODELS = ("cv", "imm")
IFF_MAX_WINDOW = 16


class TrackStatus(enum.IntEnum):
    """A live track's status in a TrackSnapshot. The kernel's C side has the same numbers (ST_TENTATIVE,
    ST_CONFIRMED in ext/tracker.pxd): hil.ext.tracker refuses to load if they differ."""

    TENTATIVE = 1  # started from a plot, not yet confirmed by TrackerConfig.confirm_m of confirm_n
    CONFIRMED = 2


# pi to 63 significant digits, for the chi-square quantile below
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


@functools.lru_cache(maxsize=64)
def chi_square_quantile(p: float, dof: int) -> float:
    """The x with P(chi-square of dof degrees of freedom <= x) = p, correctly rounded to a float (0 < p < 1).

    Newton's method on the regularized lower incomplete gamma function P(dof/2, x/2), summed as its power
    series in 50-digit decimal arithmetic (dof is small: the series has no cancellation and converges for
    every x); a tracker needs this twice when it is built, not per plot.
    """
    if not (0.0 < p < 1.0 and isinstance(dof, int) and 1 <= dof <= 64):
        raise ValueError(f"chi_square_quantile needs 0 < p < 1 and 1 <= dof <= 64, got p={p!r}, dof={dof!r}")
    with localcontext() as ctx:
        ctx.prec = 50
        a = Decimal(dof) / 2
        target = Decimal(p)
        # Gamma(a + 1) = a (a - 1) ... b Gamma(b), b = 1 or 1/2
        b, gamma_a1 = (Decimal(1), Decimal(1)) if dof % 2 == 0 else (Decimal("0.5"), _PI.sqrt())
        while b <= a:
            gamma_a1 *= b
            b += 1
        tiny = Decimal(10) ** -45

        def cdf_and_pdf(x: Decimal) -> tuple[Decimal, Decimal]:
            y = x / 2
            lead = (a * y.ln() - y).exp()  # y^a e^-y
            term = total = Decimal(1)
            n = 1
            while term > tiny * total:
                term = term * y / (a + n)
                total += term
                n += 1
            # P(a, y) = y^a e^-y / Gamma(a + 1) * sum y^n / ((a + 1) ... (a + n)); its x-derivative is
            # y^(a-1) e^-y / (2 Gamma(a)) with Gamma(a) = Gamma(a + 1) / a
            return lead * total / gamma_a1, lead * a / (2 * y * gamma_a1)

        lo, hi = Decimal(0), Decimal(dof)
        while cdf_and_pdf(hi)[0] < target:
            lo, hi = hi, hi * 2
        x = (lo + hi) / 2
        for _ in range(200):  # a safeguarded Newton step: it stays inside the bracket [lo, hi]
            cdf, pdf = cdf_and_pdf(x)
            if cdf < target:
                lo = x
            else:
                hi = x
            step = x - (cdf - target) / pdf
            if not lo < step < hi:
                step = (lo + hi) / 2
            done = abs(step - x) <= x * Decimal(10) ** -40
            x = step
            if done:
                break
        return float(x)


@dataclass(frozen=True)
class TrackerConfig:
    """Every tuning knob of the tracker, in SI units (sigmas of a sensor live in SensorDef)."""

    model: str = "imm"  # "cv": one constant-velocity EKF; "imm": CV + coordinated turn left + coordinated turn right
    # tuned on tracking_scenario (40 targets, 4 g turns, crossings; see tests/bench/bench_tracker.py)
    q_cv_m2ps3: float = 0.05  # white-noise acceleration PSD of the CV model
    q_ct_m2ps3: float = 1.0  # ... of the coordinated-turn model
    q_omega_rad2ps3: float = 1e-3  # turn-rate random walk PSD of the CT model
    # model switching rates of the IMM's Markov chain: straight legs of about 100 s, turns of about 20 s
    imm_cv_to_ct_per_s: float = 0.01
    imm_ct_to_cv_per_s: float = 0.05
    imm_turn_reversal_per_s: float = 0.01  # a turn straight into the opposite sense
    imm_initial_ct: float = 0.1  # initial probability of the turn models (split between left and right)
    # A target that starts to turn does so at some lateral acceleration, left or right: the turn models take
    # their turn rate from this prior (rate = acceleration / horizontal speed, speed at least
    # turn_min_speed_mps) when another model mixes into them. One turn model per side keeps both
    # senses alive where the measurements cannot tell them apart yet (a head-on turn moves range-rate alike
    # either way), instead of one filter locking onto the wrong sense.
    turn_entry_g: float = 3.0
    turn_entry_sigma_g: float = 1.5
    turn_min_speed_mps: float = 100.0
    gate_probability: float = 0.9995  # chi-square gate on the Mahalanobis distance
    init_speed_sigma_mps: float = 250.0  # velocity prior of a one-plot track across the line of sight
    init_omega_sigma_radps: float = 0.05
    use_range_rate: bool = True
    confirm_m: int = 3  # M hits in the first N opportunities confirm a tentative track
    confirm_n: int = 4
    delete_misses: int = 4  # consecutive misses that delete a confirmed track
    max_position_sigma_m: float = 5_000.0  # a track this uncertain is deleted whatever its misses
    reorder_window_s: float = 0.0  # hold plots this long to put streams of several radars in time order
    # IFF Mode 3/A as evidence (docs/TRACKING.md, "IFF"). In association, a plot whose code disagrees with what
    # a track's recent plots establish costs as much as extra Mahalanobis distance² of the likelihood ratio:
    # 2 ln((1 - f) / (1 - p)) = 7.8 for a missing code, 2 ln(p / f) = 9.2 for an unexpected or other code.
    iff_association: bool = True
    iff_reply_p: float = 0.98  # a squawking target's plot carries its code (the emulated radar's iff_reply_p)
    iff_false_code_p: float = 0.01  # a plot carries a code its target does not squawk (garble, fruit)
    # A track's identity: a code (or no code) seen in iff_k of its last iff_window plots establishes itself, and
    # replaces an identity only once that identity has fallen below iff_k there (with 2 of 6: a young track
    # takes a code from its first two replies, an established identity changes after 5 plots of 6 against it)
    iff_window: int = 6
    iff_k: int = 2

    def __post_init__(self) -> None:
        src = "TrackerConfig"
        if self.model not in MODELS:
            raise ConfigError(src, "model", f"must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not 0.5 < self.gate_probability < 1.0:
            raise ConfigError(src, "gate_probability", "must be in (0.5, 1)")
        if not 1 <= self.confirm_m <= self.confirm_n <= 16:
            raise ConfigError(src, "confirm_m/confirm_n", "need 1 <= M <= N <= 16")
        if not 1 <= self.delete_misses <= 30:
            raise ConfigError(src, "delete_misses", "must be in [1, 30]")
        for name in ("q_cv_m2ps3", "q_ct_m2ps3", "q_omega_rad2ps3", "init_speed_sigma_mps", "init_omega_sigma_radps",
                     "imm_cv_to_ct_per_s", "imm_ct_to_cv_per_s", "imm_turn_reversal_per_s", "reorder_window_s",
                     "max_position_sigma_m", "turn_entry_g", "turn_entry_sigma_g"):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise ConfigError(src, name, f"must be a finite number >= 0, got {v!r}")
        if not (self.turn_min_speed_mps > 0.0 and math.isfinite(self.turn_min_speed_mps)):
            raise ConfigError(src, "turn_min_speed_mps", f"must be a finite number > 0, got {self.turn_min_speed_mps}")
        if not 0.0 <= self.imm_initial_ct <= 1.0:
            raise ConfigError(src, "imm_initial_ct", "must be a probability")
        if not 0.0 < self.iff_reply_p < 1.0:
            raise ConfigError(src, "iff_reply_p", f"must be a probability in (0, 1), got {self.iff_reply_p!r}")
        if not 0.0 < self.iff_false_code_p < self.iff_reply_p:
            raise ConfigError(src, "iff_false_code_p", f"must be in (0, iff_reply_p), got {self.iff_false_code_p!r}")
        if not 1 <= self.iff_k <= self.iff_window <= IFF_MAX_WINDOW:
            raise ConfigError(src, "iff_k/iff_window", f"need 1 <= k <= window <= {IFF_MAX_WINDOW}")

    def gate(self, dof: int) -> float:
        """Chi-square gate threshold for a measurement of dof components."""
        return chi_square_quantile(float(self.gate_probability), dof)

    @property
    def n_models(self) -> int:
        return 3 if self.model == "imm" else 1

    @property
    def iff_missing_d2(self) -> float:
        """Association cost (as Mahalanobis distance²) of a plot without a code for a track that shows one."""
        return 2.0 * math.log((1.0 - self.iff_false_code_p) / (1.0 - self.iff_reply_p)) if self.iff_association else 0.0

    @property
    def iff_unexpected_d2(self) -> float:
        """Association cost (as Mahalanobis distance²) of a plot with a code for a track that shows none, or
        another code."""
        return 2.0 * math.log(self.iff_reply_p / self.iff_false_code_p) if self.iff_association else 0.0


@dataclass(frozen=True)
class SensorDef:
    """One radar as the tracker sees it: where it stands and how noisy its plots are."""

    name: str
    site_enu_m: tuple[float, float, float]
    sigma_range_m: float = 50.0
    sigma_azimuth_rad: float = math.radians(0.2)
    sigma_elevation_rad: float = math.radians(0.2)
    sigma_range_rate_mps: float = 5.0
    max_range_m: float = math.inf


class TrackSnapshot(NamedTuple):
    """Live tracks at one instant, as arrays, ordered by track id (status: TrackStatus values; mode3a: the
    Mode 3/A code the track's recent plots establish, -1 when they establish none; see TrackerConfig.iff_k)."""

    track_id: npt.NDArray[np.int64]  # int64[n]
    status: npt.NDArray[np.int8]  # int8[n], TrackStatus
    state: FloatArray  # float64[n, 6] ENU x, y, z, vx, vy, vz
    cov: FloatArray  # float64[n, 6, 6]
    last_update_s: FloatArray  # float64[n]
    mode3a: npt.NDArray[np.int32]  # int32[n], -1: no code established
    hits: npt.NDArray[np.int32]  # int32[n]

    @property
    def confirmed(self) -> npt.NDArray[np.bool_]:
        """Which tracks are confirmed (status CONFIRMED), as fire control takes them."""
        flags: npt.NDArray[np.bool_] = self.status == TrackStatus.CONFIRMED
        return flags


class ReorderBuffer:
    """Holds plots and sector sweeps for window_s, then releases them merged in time order.

    Everything up to (newest time seen - window_s) is released: plots as one time-ordered stream, cut at
    the sweeps that fall between them. A plot older than the newest plot already released is late: the
    caller counts and drops it. Sweeps are bookkeeping and never make a plot late.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.released_s = -math.inf
        self.newest_s = -math.inf
        self._plots: list[tuple[np.ndarray, ...]] = []  # columns, the first one time
        self._sweeps: list[tuple[float, int, tuple[Any, ...]]] = []
        self._seq = 0

    def __len__(self) -> int:
        return sum(len(p[0]) for p in self._plots) + len(self._sweeps)

    def push_plots(self, columns: tuple[np.ndarray, ...]) -> None:
        if len(columns[0]):
            self.newest_s = max(self.newest_s, float(np.max(columns[0])))
            self._plots.append(columns)

    def push_sweep(self, t_s: float, payload: tuple[Any, ...]) -> None:
        self.newest_s = max(self.newest_s, t_s)
        heapq.heappush(self._sweeps, (t_s, self._seq, payload))
        self._seq += 1

    def pop_ready(self, until_s: float | None = None) -> list[tuple[Any, ...]]:
        """("plots", *columns) and ("sweep", *payload) units up to the horizon (or until_s), oldest first."""
        horizon = self.newest_s - self.window_s if until_s is None else max(until_s, self.newest_s - self.window_s)
        out: list[tuple[Any, ...]] = []
        ready: tuple[np.ndarray, ...] = ()
        if self._plots:
            cols = tuple(np.concatenate(c) for c in zip(*self._plots, strict=True))
            order = np.argsort(cols[0], kind="stable")
            cols = tuple(c[order] for c in cols)
            k = int(np.searchsorted(cols[0], horizon, side="right"))
            ready = tuple(np.ascontiguousarray(c[:k]) for c in cols)
            self._plots = [tuple(c[k:] for c in cols)] if k < len(cols[0]) else []
            if k:
                self.released_s = max(self.released_s, float(ready[0][k - 1]))
        start = 0
        while self._sweeps and self._sweeps[0][0] <= horizon:
            t_s, _, payload = heapq.heappop(self._sweeps)
            if ready:
                stop = int(np.searchsorted(ready[0], t_s, side="right"))
                if stop > start:
                    out.append(("plots", *(c[start:stop] for c in ready)))
                start = stop
            out.append(("sweep", *payload))
        if ready and start < len(ready[0]):
            out.append(("plots", *(c[start:] for c in ready)))
        return out


__all__ = [
    "IFF_MAX_WINDOW", "MODELS", "ReorderBuffer", "SensorDef", "TrackSnapshot", "TrackStatus", "TrackerConfig",
    "chi_square_quantile",
]
