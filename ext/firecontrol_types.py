"""The fire-control kernel's public types: configuration, doctrine, refusal reasons, the launchers, defended
assets and no-fire zones it plans with, and its explainable results. Plain Python and numpy.

The kernel itself is hil.ext.firecontrol.FireControl (Cython); its numpy twin is
hil.ext.reference.firecontrol. Both implement the test-bench model written down here once. The host builds
their inputs from a scenario and a track snapshot in hil.host.fire_control.

Threat evaluation (per track and defended asset, straight-line prediction of the track's state):
    t_cpa = clamp(-(r.v)/|v|^2, 0, horizon_s) with r the track's offset from the asset, d_cpa = |r + v t_cpa|;
    time_to_asset = first t >= 0 with |r + v t| <= radius (0 if already inside, inf if never within horizon_s);
    closeness = clamp(1 - (d_cpa - R) / ((miss_scale - 1) R), 0, 1)    (1 inside the radius, 0 beyond miss_scale R)
    urgency   = urgency_ref_s / (urgency_ref_s + t_go),  t_go = time_to_asset if finite else t_cpa
    score     = value * closeness * urgency, maximised over assets (the argmax is the threatened asset).
    A track with score 0 is NOT_A_THREAT. With no assets every valid track scores 1 (nothing to rank on).

Intercept (per launcher x threat): the interceptor leaves after launch_delay_s + slew time (azimuth change
from the launcher's rest azimuth, the centre of its sector, at slew_rate_dps) and flies straight at constant
speed u, so the intercept time T (from now) is the smallest root T >= delay of
    |r + v T|^2 = u^2 (T - delay)^2,   r = track position - launcher position,
a quadratic, solved for the time of flight tau = T - delay (no cancellation when the delay is long). The
slew time depends on the intercept azimuth, so the root is recomputed slew_iterations times (each step
shrinks the slew-time error by the intercept bearing's turn rate over the slew rate, typically 10-100x).
The slew angle uses a polynomial arctangent (SLEW_ATAN_COEFFS, |error| < 1e-9 rad): libm's atan2 was a
third of the kernel's time. The intercept point is track position + v T.

Envelope, checked on the intercept point: min/max slant range, altitude band (ENU z), max time of flight,
azimuth sector, intercept before the threat reaches its asset (TOO_LATE).

The terminal path (docs/FIRE_CONTROL.md has the why and the pictures' worth of words): the round flies
straight from the launcher at u to the aim; its seeker searches from S = seeker_range_m before the aim (or
from launch, if the aim is nearer) until S past it, taking any true object within S inside its cone. With
t_end = T + S/u and sigma_k(t) = sqrt(pos_var_k + vel_var_k t^2) (vel_var: evaluate's vel_var_m2s2, else
track_velocity_sigma_mps^2):
    INTERCEPT_IN_NO_FIRE_ZONE  the segment acquisition point -> aim -> S past the aim meets a zone grown by
                               safety_sigmas * sigma_track(t_end) + lethal_radius_m (radius and height);
    PROTECTED_NEAR_INTERCEPT   a friendly or neutral track (tentative or confirmed), predicted at constant
                               velocity, comes at some time of the search within rho of the basket's axis at
                               that time (the segment from the round to S ahead of it), where
                               rho = protect_radius + safety_sigmas * (sigma_track + sigma_protected)(t_end)
                                     + |v_protected| * launch_timing_margin_s,
                               protect_radius = protect_radius_m or S tan(half-angle) + lethal_radius_m.
                               In the round's frame both move in straight lines: one segment-segment distance.
Both widen with S when the aim is on the launcher (no direction to fly). Refusals.protected_index names the
first such protected track in input order.
Track reasons, most important first: INVALID_TRACK, FRIENDLY, NEUTRAL, NOT_CONFIRMED, NO_FIRE_ZONE,
NOT_A_THREAT, ALREADY_ENGAGED, KILL_ASSESSMENT (evaluate's assessing: the look after a round's expected
intercept is open), SHOTS_EXHAUSTED. Pair reasons: UNREACHABLE, TOF, OUT_OF_RANGE, ALTITUDE, SECTOR, TOO_LATE,
INTERCEPT_IN_NO_FIRE_ZONE, PROTECTED_NEAR_INTERCEPT, LOW_PK.

Kill probability (a test-bench model, not a claim about any real system):
    pk = pk_base * f_track * f_aspect * f_tof
    f_track  = 1 - exp(-basket^2 / pos_var)    (pos_var = trace of the position covariance: the chance the
                                               seeker finds the target in its handover basket)
    f_aspect = 1 - aspect_penalty * (1 - cos a) / 2   (a = angle between the interceptor's flight
                                               direction and the threat's reversed velocity: head-on best)
    f_tof    = 1 - tof_penalty * (tof / max_tof)^2    (energy bleeds at the edge of the envelope)
A pair with pk < min_pk is refused LOW_PK.

Assignment value: expected threat score destroyed, sum over tracks of score_i * (1 - prod(1 - pk_il)) over
the shots given to track i. Each launcher gives at most min(rounds, free channels, launches_per_launcher)
shots per evaluation. A track may have one interceptor in the air at a time (shoot-look-shoot) or up to
salvo_size (salvo: a salvo a launcher could not complete at once is completed by the next evaluations);
with that many in flight it is ALREADY_ENGAGED until they land, and it never gets more than
max_shots_per_track in all. Re-engagement after a miss follows: once nothing is in flight and shots are
left, the track is a candidate again.
Solvers: "lap" (optimal for one shot per track: a rectangular linear assignment), "greedy" (maximum
marginal return), "exact" (branch and bound from the greedy incumbent, within exact_node_budget nodes),
"auto" (lap for shoot-look-shoot; exact for salvos with at most exact_max_pairs feasible pairs, else greedy).
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from hil.errors import ConfigError


class Doctrine(enum.IntEnum):
    """How many rounds a threat may have in the air at once: one (look before shooting again) or a salvo."""

    SHOOT_LOOK_SHOOT = 0
    SALVO = 1


class RefusalReason(enum.IntEnum):
    """Why a track (launcher_index -1) or a track x launcher pair was not fired on. Names are stable: they
    reach summary.json. The kernel's C side has the same numbers (R_<NAME> in ext/firecontrol.pxd):
    hil.ext.firecontrol refuses to load if they differ."""

    NONE = 0
    INVALID_TRACK = 1  # non-finite state or covariance
    FRIENDLY = 2
    NOT_CONFIRMED = 3
    NO_FIRE_ZONE = 4  # the track is inside a no-fire zone
    NOT_A_THREAT = 5
    ALREADY_ENGAGED = 6  # as many interceptors in flight at it as the doctrine allows (look before shooting again)
    SHOTS_EXHAUSTED = 7  # max_shots_per_track already fired
    LAUNCHER_NOT_ARMED = 8
    LAUNCHER_NOT_READY = 9  # not ready, reloading, or lost
    NO_ROUNDS = 10
    NO_CHANNEL = 11  # every guidance channel busy
    UNREACHABLE = 12  # the interceptor can never catch it
    TOF = 13
    OUT_OF_RANGE = 14
    ALTITUDE = 15
    SECTOR = 16
    TOO_LATE = 17  # the intercept would come after the threat reaches its asset
    INTERCEPT_IN_NO_FIRE_ZONE = 18
    LOW_PK = 19
    OUTRANKED = 20  # feasible but not used: its launcher went where it was worth more
    NO_LAUNCHER = 21  # an eligible threat, but fire control has no launchers at all
    # a friendly or neutral track could be in the seeker's basket during its search (Refusals.protected_index
    # names it)
    PROTECTED_NEAR_INTERCEPT = 22
    NEUTRAL = 23  # the track squawks a neutral code: protected, never a target
    KILL_ASSESSMENT = 24  # the look after a round's expected intercept is still open: no new round before it


# The host's own interlock on every assignment, whatever fire control is plugged in (hil.host.host.Host.decide):
# the refusal names by the code hil.ext.fire_command.fire_orders gives them (0: fire)
HOST_INTERLOCKS = ("", "HOST_BAD_ASSIGNMENT", "HOST_FRIENDLY", "HOST_NEUTRAL", "HOST_NOT_CONFIRMED")


TRACK_REASONS = frozenset({RefusalReason.INVALID_TRACK, RefusalReason.FRIENDLY, RefusalReason.NEUTRAL,
                           RefusalReason.NOT_CONFIRMED, RefusalReason.NO_FIRE_ZONE, RefusalReason.NOT_A_THREAT,
                           RefusalReason.ALREADY_ENGAGED, RefusalReason.KILL_ASSESSMENT,
                           RefusalReason.SHOTS_EXHAUSTED})
PROTECTED = (RefusalReason.FRIENDLY, RefusalReason.NEUTRAL)  # track reasons of tracks that are never targets

SOLVERS = ("auto", "lap", "greedy", "exact")

# atan(t) ~= t * sum(c_k t^2k) on [0, 1], fitted for this model (max error 9e-10 rad)
SLEW_ATAN_COEFFS = (0.9999999805619665, -0.3333318038264044, 0.19996436877151888, -0.14247223007873913,
                    0.10878010804798398, -0.08213762873316446, 0.055028106391445966, -0.028490771501395118,
                    0.00956733401717734, -0.0015093011468130108)


@dataclass(frozen=True)
class FireControlConfig:
    doctrine: Doctrine = Doctrine.SHOOT_LOOK_SHOOT
    salvo_size: int = 2
    max_shots_per_track: int = 4
    launches_per_launcher: int = 1  # per evaluation: a launcher must reload between launches
    min_pk: float = 0.05
    horizon_s: float = 600.0
    miss_scale: float = 3.0
    urgency_ref_s: float = 60.0
    pk_basket_m: float = 300.0
    pk_aspect_penalty: float = 0.4
    pk_tof_penalty: float = 0.3
    slew_iterations: int = 2  # fixed-point steps: each shrinks the slew-time error ~10-100x
    solver: str = "auto"
    exact_max_pairs: int = 48
    exact_node_budget: int = 200_000
    # protection of friendly and neutral tracks and of no-fire zones along the terminal path (module docstring)
    protect_radius_m: float | None = None  # None: per launcher, its seeker basket at acquisition + lethal radius
    safety_sigmas: float = 3.0  # sigmas of predicted position uncertainty that widen those checks
    track_velocity_sigma_mps: float = 0.0  # grows every track's sigma with time when evaluate() has no vel_var
    launch_timing_margin_s: float = 0.5  # how late a round may leave against the plan: protected tracks move on

    def __post_init__(self) -> None:
        src = "fire control config"
        if self.solver not in SOLVERS:
            raise ConfigError(src, "solver", f"must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        for name in ("salvo_size", "max_shots_per_track", "launches_per_launcher", "exact_node_budget"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(src, name, "must be at least 1")
        if self.slew_iterations < 0 or self.exact_max_pairs < 0:
            raise ConfigError(src, "slew_iterations", "must not be negative")
        if not 0.0 <= self.min_pk <= 1.0:
            raise ConfigError(src, "min_pk", "must be in [0, 1]")
        for name in ("horizon_s", "urgency_ref_s", "pk_basket_m"):
            if not getattr(self, name) > 0.0:
                raise ConfigError(src, name, "must be positive")
        if not self.miss_scale > 1.0:
            raise ConfigError(src, "miss_scale", "must be above 1")
        for name in ("pk_aspect_penalty", "pk_tof_penalty"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(src, name, "must be in [0, 1]")
        for name in ("safety_sigmas", "track_velocity_sigma_mps", "launch_timing_margin_s"):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise ConfigError(src, name, "must be finite and >= 0")
        if self.protect_radius_m is not None and not 0.0 <= self.protect_radius_m < math.inf:
            raise ConfigError(src, "protect_radius_m", "must be finite and >= 0 (or None: the seeker's basket)")

    @property
    def shots_per_engagement(self) -> int:
        return self.salvo_size if self.doctrine == Doctrine.SALVO else 1


# --- what fire control plans with: launchers, defended assets, no-fire zones (a scenario's [[launcher]],
# [[asset]] and [[no_fire_zone]] tables are read into these by hil.scenario) ----------------------------


@dataclass(frozen=True)
class LauncherSpec:
    """A launcher: where it stands and its envelope (what fire control plans with), and what the plant flies
    and counts (interceptor_max_g, rounds, reload_s, lethal_radius_m): a scenario's [[launcher]] table."""

    name: str
    position: tuple[float, float, float]
    interceptor_speed_mps: float = 1000.0
    interceptor_max_g: float = 30.0
    launch_delay_s: float = 1.0
    slew_rate_dps: float = 60.0  # 0: no slew time counted
    min_range_m: float = 2_000.0
    max_range_m: float = 40_000.0
    min_alt_m: float = 30.0
    max_alt_m: float = 20_000.0
    max_tof_s: float = 60.0
    rounds: int = 4
    reload_s: float = 2.0
    channels: int = 2
    # azimuth sector the launcher covers, clockwise from north; its centre is also the rest azimuth slew starts from
    sector_centre_deg: float = 0.0
    sector_width_deg: float = 360.0
    lethal_radius_m: float = 15.0
    pk: float = 0.85  # single-shot pk in the best conditions
    # the interceptor's terminal seeker (the plant's, hil.plant.engagement): it acquires at this range from what it
    # homes on, and takes a true object only inside its basket, a cone of this half-angle around its boresight
    seeker_range_m: float = 6_000.0
    seeker_half_angle_deg: float = 20.0

    def __post_init__(self) -> None:
        src = f"launcher {self.name}"
        if not self.interceptor_speed_mps > 0.0:
            raise ConfigError(src, "interceptor_speed_mps", "must be positive")
        if not 0.0 <= self.min_range_m < self.max_range_m:
            raise ConfigError(src, "min_range_m", "must be >= 0 and below max_range_m")
        if not self.min_alt_m <= self.max_alt_m:
            raise ConfigError(src, "min_alt_m", "must not exceed max_alt_m")
        if not (self.launch_delay_s >= 0.0 and self.slew_rate_dps >= 0.0 and self.max_tof_s > 0.0):
            raise ConfigError(src, "launch_delay_s", "delay and slew rate must be >= 0, max_tof_s > 0")
        if not 0.0 <= self.sector_width_deg <= 360.0:
            raise ConfigError(src, "sector_width_deg", "must be in [0, 360]")
        if self.channels < 0 or not 0.0 <= self.pk <= 1.0:
            raise ConfigError(src, "pk", "channels must be >= 0 and pk in [0, 1]")
        if not all(math.isfinite(c) for c in self.position):
            raise ConfigError(src, "position", "must be finite")


@dataclass(frozen=True)
class AssetSpec:
    """A defended asset: a scenario's [[asset]] table."""

    name: str
    position: tuple[float, float, float]
    radius_m: float = 1_000.0
    value: float = 1.0

    def __post_init__(self) -> None:
        if not (self.radius_m > 0.0 and self.value >= 0.0):
            raise ConfigError(f"asset {self.name}", "radius_m", "radius must be positive and value >= 0")


@dataclass(frozen=True)
class NoFireZone:
    """A vertical cylinder nothing may be fired into (or at): a scenario's [[no_fire_zone]] table."""

    name: str
    centre: tuple[float, float]
    radius_m: float
    z_min_m: float = -1e9
    z_max_m: float = 1e9

    def __post_init__(self) -> None:
        if not (self.radius_m > 0.0 and self.z_min_m <= self.z_max_m):
            raise ConfigError(f"no-fire zone {self.name}", "radius_m", "radius must be positive, z_min <= z_max")


def protect_radius(config: FireControlConfig, launcher: LauncherSpec) -> float:
    """The doctrine's protection radius for one launcher's rounds: config.protect_radius_m if set, else the
    radius of its seeker's basket at acquisition range, S tan(half-angle), plus its lethal radius (infinite
    for a basket of 90 degrees or more: then nothing protected may be anywhere near the path)."""
    if config.protect_radius_m is not None:
        return float(config.protect_radius_m)
    half = launcher.seeker_half_angle_deg
    basket = max(launcher.seeker_range_m, 0.0) * math.tan(math.radians(half)) if 0.0 <= half < 90.0 else math.inf
    return basket + max(launcher.lethal_radius_m, 0.0)


# --- results -------------------------------------------------------------------------------------------

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


@dataclass
class Assignments:
    track_index: IntArray
    launcher_index: IntArray
    intercept_enu: FloatArray  # (k, 3) m
    time_of_flight_s: FloatArray
    pk: FloatArray
    score: FloatArray  # threat score x pk: the expected value this shot destroys on its own


@dataclass
class Refusals:
    track_index: IntArray
    launcher_index: IntArray  # -1 when the track itself is refused
    reason: npt.NDArray[np.int8]
    protected_index: IntArray  # PROTECTED_NEAR_INTERCEPT: the protected track's row in the inputs; else -1


@dataclass
class ThreatTable:
    """Threats (score > 0, valid, neither friendly nor neutral) ranked by score, highest first."""

    track_index: IntArray
    score: FloatArray
    t_cpa_s: FloatArray
    d_cpa_m: FloatArray
    time_to_asset_s: FloatArray
    asset_index: IntArray
    speed_mps: FloatArray
    altitude_m: FloatArray
    heading_deg: FloatArray


def _num(x: float) -> float | None:
    """JSON has no inf/nan."""
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


@dataclass
class FireControlResult:
    """One evaluation: the assignments, and everything the kernel computed to explain them.

    threats, refusals and objective are worked out from those arrays on first use, so the host can send
    its fire commands before it pays for the bookkeeping.
    """

    t_s: float
    assignments: Assignments
    solver: str  # the solver that produced the assignment
    optimal: bool  # proven optimal for the model (lap, or exact within its node budget)
    # everything the kernel computed, kept for explanations
    track_id: npt.NDArray[np.int64]
    state: FloatArray
    pos_var_m2: FloatArray
    track_reason: npt.NDArray[np.int8]
    score: FloatArray
    t_cpa_s: FloatArray
    d_cpa_m: FloatArray
    time_to_asset_s: FloatArray
    asset_index: IntArray
    pair_reason: npt.NDArray[np.int8]  # (n, n_launchers)
    pair_pk: FloatArray
    pair_t_s: FloatArray  # intercept time from now
    pair_tof_s: FloatArray
    launcher_names: tuple[str, ...]
    asset_names: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)  # per-track and per-launcher inputs
    pair_protected: IntArray | None = None  # (n, n_launchers): the protected track's row, -1 (None: all -1)

    @functools.cached_property
    def threats(self) -> ThreatTable:
        return threat_table(self.score, self.t_cpa_s, self.d_cpa_m, self.time_to_asset_s, self.asset_index,
                            self.track_reason, self.state)

    @functools.cached_property
    def refusals(self) -> Refusals:
        from hil.ext.firecontrol import refusals_of as compiled  # (the kernel imports this module: not at the top)

        # (cast: mypy reads this file as ext.firecontrol_types, the kernel's face as hil.ext.firecontrol_types)
        return cast(Refusals, compiled(self.track_reason, self.pair_reason, self.assignments.track_index,
                                       self.pair_protected))

    @functools.cached_property
    def objective(self) -> float:
        """Expected threat score destroyed by this assignment."""
        survive = np.ones(len(self.track_id))
        np.multiply.at(survive, self.assignments.track_index, 1.0 - self.assignments.pk)
        return float(np.sum(self.score * (1.0 - survive)))

    def rank_of(self, i: int) -> int | None:
        hit = np.nonzero(self.threats.track_index == i)[0]
        return int(hit[0]) + 1 if len(hit) else None

    def explain(self, i: int) -> dict[str, Any]:
        """JSON-ready account of what was decided for track row i and the inputs that drove it."""
        st = self.state[i]
        a = int(self.asset_index[i])
        shots = [k for k in range(len(self.assignments.track_index)) if self.assignments.track_index[k] == i]
        alternatives = []
        for li, name in enumerate(self.launcher_names):
            t_int = float(self.pair_t_s[i, li])
            j = int(self.pair_protected[i, li]) if self.pair_protected is not None else -1
            point = (st[:3] + st[3:] * t_int).tolist() if math.isfinite(t_int) else None
            alternatives.append({
                "launcher": name, "reason": RefusalReason(int(self.pair_reason[i, li])).name,
                "pk": _num(self.pair_pk[i, li]), "time_of_flight_s": _num(self.pair_tof_s[i, li]),
                "intercept_time_s": _num(t_int),
                "intercept_enu_m": [round(c, 2) for c in point] if point is not None else None,
                "value": _num(self.score[i] * self.pair_pk[i, li]) if self.pair_reason[i, li] in (0, 20) else None,
                "chosen": any(int(self.assignments.launcher_index[k]) == li for k in shots),
                "protected_track": int(self.track_id[j]) if j >= 0 else None,
            })
        track_reason = RefusalReason(int(self.track_reason[i]))
        if shots:
            decision = "fire"
        elif track_reason != RefusalReason.NONE:
            decision = track_reason.name
        else:
            decision = "no launcher: " + ", ".join(sorted({str(x["reason"]) for x in alternatives})) or "none"
        speed = float(np.hypot(np.hypot(st[3], st[4]), st[5]))
        return {
            "t_s": _num(self.t_s),
            "track": int(self.track_id[i]),
            "decision": decision,
            "launchers": [self.launcher_names[int(self.assignments.launcher_index[k])] for k in shots],
            "track_reason": track_reason.name,
            "inputs": {"position_enu_m": [round(float(c), 2) for c in st[:3]],
                       "velocity_enu_mps": [round(float(c), 2) for c in st[3:]],
                       "pos_var_m2": _num(self.pos_var_m2[i]),
                       **{k: v[i].item() for k, v in self.inputs.get("track", {}).items()}},
            "threat": {"score": _num(self.score[i]), "rank": self.rank_of(i),
                       "asset": self.asset_names[a] if a >= 0 else None,
                       "t_cpa_s": _num(self.t_cpa_s[i]), "d_cpa_m": _num(self.d_cpa_m[i]),
                       "time_to_asset_s": _num(self.time_to_asset_s[i]), "speed_mps": _num(speed),
                       "altitude_m": _num(st[2])},
            "alternatives": alternatives,
            "solver": self.solver, "optimal": self.optimal,
        }

    def explain_assignment(self, k: int) -> dict[str, Any]:
        """explain() of the track the k-th assignment fires at, naming that shot's launcher."""
        out = self.explain(int(self.assignments.track_index[k]))
        out["launcher"] = self.launcher_names[int(self.assignments.launcher_index[k])]
        out["pk"] = _num(self.assignments.pk[k])
        out["time_of_flight_s"] = _num(self.assignments.time_of_flight_s[k])
        out["intercept_enu_m"] = [round(float(c), 2) for c in self.assignments.intercept_enu[k]]
        return out

    def decisions(self) -> list[dict[str, Any]]:
        """explain() of every track that was fired at or refused, in threat-rank order then the rest."""
        order = list(dict.fromkeys([*self.threats.track_index.tolist(), *range(len(self.track_id))]))
        return [self.explain(i) for i in order]


def refusals_of(track_reason: npt.NDArray[np.int8], pair_reason: npt.NDArray[np.int8],
                shot_tracks: IntArray, pair_protected: IntArray | None = None) -> Refusals:
    """The numpy twin of hil.ext.firecontrol.refusals_of (FireControlResult.refusals runs the compiled one).

    The track's own reason for every refused track, then each launcher's reason (pair_reason, rows x
    launchers) for every eligible track left unfired (NO_LAUNCHER when there are no launchers at all), each
    with the protected track's row from pair_protected (-1 where none is named)."""
    n_l = pair_reason.shape[1]
    if pair_protected is None:
        pair_protected = np.full(pair_reason.shape, -1, np.int32)
    assigned = np.zeros(len(track_reason), bool)
    assigned[shot_tracks] = True
    ti = np.nonzero(track_reason != 0)[0].astype(np.int32)
    rows = [ti]
    launchers = [np.full(len(ti), -1, np.int32)]
    reasons = [track_reason[ti]]
    protected = [np.full(len(ti), -1, np.int32)]
    un = np.nonzero((track_reason == 0) & ~assigned)[0].astype(np.int32)
    if len(un) and n_l:
        rows.append(np.repeat(un, n_l))
        launchers.append(np.tile(np.arange(n_l, dtype=np.int32), len(un)))
        reasons.append(pair_reason[un].reshape(-1))
        protected.append(pair_protected[un].reshape(-1).astype(np.int32))
    elif len(un):
        rows.append(un)
        launchers.append(np.full(len(un), -1, np.int32))
        reasons.append(np.full(len(un), RefusalReason.NO_LAUNCHER, np.int8))
        protected.append(np.full(len(un), -1, np.int32))
    return Refusals(track_index=np.concatenate(rows), launcher_index=np.concatenate(launchers),
                    reason=np.concatenate(reasons).astype(np.int8), protected_index=np.concatenate(protected))


def threat_table(score: FloatArray, t_cpa: FloatArray, d_cpa: FloatArray, t_asset: FloatArray,
                 asset: IntArray, track_reason: npt.NDArray[np.int8], state: FloatArray) -> ThreatTable:
    """Rank the tracks with a positive score that are neither invalid nor protected (stable for equal scores)."""
    keep = ((score > 0.0) & (track_reason != RefusalReason.INVALID_TRACK) & (track_reason != RefusalReason.FRIENDLY)
            & (track_reason != RefusalReason.NEUTRAL))
    found = np.nonzero(keep)[0]
    idx: IntArray = found[np.argsort(-score[found], kind="stable")].astype(np.int32)
    v = state[idx, 3:6]
    return ThreatTable(
        track_index=idx, score=score[idx], t_cpa_s=t_cpa[idx], d_cpa_m=d_cpa[idx], time_to_asset_s=t_asset[idx],
        asset_index=asset[idx], speed_mps=np.linalg.norm(v, axis=1), altitude_m=state[idx, 2].copy(),
        heading_deg=np.degrees(np.mod(np.arctan2(v[:, 0], v[:, 1]), 2.0 * np.pi)),
    )


__all__ = [
    "HOST_INTERLOCKS", "PROTECTED", "SLEW_ATAN_COEFFS", "SOLVERS", "TRACK_REASONS", "AssetSpec", "Assignments",
    "Doctrine", "FireControlConfig", "FireControlResult", "FloatArray", "IntArray", "LauncherSpec", "NoFireZone",
    "RefusalReason", "Refusals", "ThreatTable", "protect_radius", "refusals_of", "threat_table",
]
