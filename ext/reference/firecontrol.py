"""Numpy twin of the fire-control kernel (tests only), and the exact assignment oracles it is checked against.

Same model as hil.ext.firecontrol (written down in hil.ext.firecontrol_types): evaluate() gives the per-track and
per-pair arrays; lap(), greedy() and branch_and_bound() assign; brute_force() enumerates every assignment.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from hil.ext.firecontrol_types import (
    SLEW_ATAN_COEFFS,
    AssetSpec,
    FireControlConfig,
    LauncherSpec,
    NoFireZone,
    protect_radius,
)
from hil.ext.firecontrol_types import RefusalReason as R

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def intercept_tof(r: FloatArray, v: FloatArray, speed: float, delay: FloatArray | float) -> FloatArray:
    """Smallest tau >= 0 with |r + v (delay + tau)| = speed tau, inf where there is none; r, v: (..., 3)."""
    delay = np.broadcast_to(np.asarray(delay, dtype=np.float64), r.shape[:-1])
    p = r + v * delay[..., None]
    u2 = speed * speed
    a = np.sum(v * v, axis=-1) - u2
    b = 2.0 * np.sum(p * v, axis=-1)
    c = np.sum(p * p, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lin = np.abs(a) <= 1e-9 * u2
        t_lin = np.where(b < 0.0, -c / b, np.inf)
        disc = b * b - 4.0 * a * c
        sq = np.sqrt(np.maximum(disc, 0.0))
        t1 = (-b - sq) / (2.0 * a)
        t2 = (-b + sq) / (2.0 * a)
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        quad = np.where(lo >= 0.0, lo, np.where(hi >= 0.0, hi, np.inf))
        out = np.where(lin, t_lin, np.where(disc >= 0.0, quad, np.inf))
    return np.where(c == 0.0, 0.0, out)


def intercept_time(r: FloatArray, v: FloatArray, speed: float, delay: FloatArray | float) -> FloatArray:
    """Smallest T >= delay with |r + v T| = speed (T - delay): delay + intercept_tof."""
    return np.asarray(delay) + intercept_tof(r, v, speed, delay)


def in_zones(p: FloatArray, zones: Sequence[NoFireZone]) -> npt.NDArray[np.bool_]:
    inside = np.zeros(p.shape[:-1], bool)
    for z in zones:
        d2 = (p[..., 0] - z.centre[0]) ** 2 + (p[..., 1] - z.centre[1]) ** 2
        inside |= (d2 <= z.radius_m**2) & (p[..., 2] >= z.z_min_m) & (p[..., 2] <= z.z_max_m)
    return inside


EPS = 1e-12


def dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """a . b over the last axis, summed in the kernel's order (x, then y, then z) so rounding agrees."""
    return np.asarray(a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2])


def clamp01(s: FloatArray) -> FloatArray:
    return np.where(s < 0.0, 0.0, np.where(s > 1.0, 1.0, s))


def path_in_zones(a: FloatArray, b: FloatArray, widen: FloatArray,
                  zones: Sequence[NoFireZone]) -> npt.NDArray[np.bool_]:
    """Rows whose segment a -> b (n, 3) meets a zone's cylinder grown by widen (n,) in radius and height."""
    hit = np.zeros(len(a), bool)
    d = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        for z in zones:
            lo_z, hi_z = z.z_min_m - widen - a[:, 2], z.z_max_m + widen - a[:, 2]
            steep = np.abs(d[:, 2]) > EPS
            s0, s1 = lo_z / d[:, 2], hi_z / d[:, 2]
            s0, s1 = np.minimum(s0, s1), np.maximum(s0, s1)
            flat_in = (z.z_min_m - widen <= a[:, 2]) & (a[:, 2] <= z.z_max_m + widen)
            lo = np.where(steep, np.where(s0 > 0.0, s0, 0.0), 0.0)
            hi = np.where(steep, np.where(s1 < 1.0, s1, 1.0), 1.0)
            band = np.where(steep, lo <= hi, flat_in)
            hx, hy = a[:, 0] - z.centre[0], a[:, 1] - z.centre[1]
            hh = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]
            s = np.where(hh > EPS, -(hx * d[:, 0] + hy * d[:, 1]) / hh, lo)
            s = np.where(s < lo, lo, np.where(s > hi, hi, s))
            ex, ey = hx + d[:, 0] * s, hy + d[:, 1] * s
            r = z.radius_m + widen
            hit |= band & (ex * ex + ey * ey <= r * r)
    return hit


def seg_seg_dist2(p1: FloatArray, d1: FloatArray, p2: FloatArray, d2: FloatArray) -> FloatArray:
    """Squared distance between segments p1 + s d1 and p2 + t d2, s, t in [0, 1], broadcast over leading axes
    (the kernel's Ericson closest points, branch for branch)."""
    r = p1 - p2
    a, e, f = dot(d1, d1), dot(d2, d2), dot(d2, r)
    c, b = dot(d1, r), dot(d1, d2)
    with np.errstate(divide="ignore", invalid="ignore"):
        den = a * e - b * b
        s_gen = np.where(den > 0.0, clamp01((b * f - c * e) / den), 0.0)
        t_gen = (b * s_gen + f) / e
        s_gen = np.where(t_gen < 0.0, clamp01(-c / a), np.where(t_gen > 1.0, clamp01((b - c) / a), s_gen))
        t_gen = np.where(t_gen < 0.0, 0.0, np.where(t_gen > 1.0, 1.0, t_gen))
        a_pt, e_pt = a <= EPS, e <= EPS
        s = np.where(a_pt, 0.0, np.where(e_pt, clamp01(-c / a), s_gen))
        t = np.where(a_pt & e_pt, 0.0, np.where(a_pt, clamp01(f / e), np.where(e_pt, 0.0, t_gen)))
    x = r[..., 0] + d1[..., 0] * s - d2[..., 0] * t
    y = r[..., 1] + d1[..., 1] * s - d2[..., 1] * t
    z = r[..., 2] + d1[..., 2] * s - d2[..., 2] * t
    return np.asarray(x * x + y * y + z * z)


def angle_between(s: FloatArray, c: FloatArray) -> FloatArray:
    """atan2(s, c) for s >= 0 from the model's polynomial arctangent (what the kernel uses for slew)."""
    ac = np.abs(c)
    swap = s > ac
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(swap, ac / s, s / ac)
    t = np.where((s == 0.0) & (ac == 0.0), 0.0, t)
    t2 = t * t
    poly = np.zeros_like(t)
    for k in reversed(SLEW_ATAN_COEFFS):
        poly = poly * t2 + k
    a = t * poly
    a = np.where(swap, 0.5 * np.pi - a, a)
    return np.where(c < 0.0, np.pi - a, a)


def wrap_pi(a: FloatArray) -> FloatArray:
    return np.asarray((a + np.pi) % (2.0 * np.pi) - np.pi)


@dataclass
class Evaluation:
    track_code: npt.NDArray[np.int8]
    score: FloatArray
    t_cpa: FloatArray
    d_cpa: FloatArray
    t_asset: FloatArray
    asset: IntArray
    shots_left: IntArray  # shots this evaluation may give each track
    capacity: IntArray  # shots each launcher may give
    pair_code: npt.NDArray[np.int8]  # before assignment (0 = feasible)
    pk: FloatArray
    t_int: FloatArray
    tof: FloatArray
    protected: IntArray  # (n, n_l): the protected row of a PROTECTED_NEAR_INTERCEPT pair, else -1


def threats(state: FloatArray, assets: Sequence[AssetSpec], cfg: FireControlConfig) -> tuple[FloatArray, ...]:
    n = len(state)
    score = np.zeros(n)
    t_cpa = np.full(n, np.nan)
    d_cpa = np.full(n, np.nan)
    t_asset = np.full(n, np.inf)
    asset = np.full(n, -1.0)
    if not assets:
        return np.ones(n), t_cpa, d_cpa, t_asset, asset
    v = state[:, 3:]
    vv = np.sum(v * v, axis=1)
    for k, a in enumerate(assets):
        r = state[:, :3] - np.asarray(a.position)
        rr, rv = np.sum(r * r, axis=1), np.sum(r * v, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            tc = np.clip(np.where(vv > 1e-12, -rv / vv, 0.0), 0.0, cfg.horizon_s)
            d = np.linalg.norm(r + v * tc[:, None], axis=1)
            R2 = a.radius_m**2
            disc = 4.0 * rv * rv - 4.0 * vv * (rr - R2)
            root = (-2.0 * rv - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * vv)
            enters = (vv > 1e-12) & (disc >= 0.0) & (rv < 0.0) & (root <= cfg.horizon_s)
            ta = np.where(rr <= R2, 0.0, np.where(enters, root, np.inf))
            close = np.minimum(1.0 - (d - a.radius_m) / ((cfg.miss_scale - 1.0) * a.radius_m), 1.0)
            t_go = np.where(np.isfinite(ta), ta, tc)
            s = np.where(close > 0.0, a.value * close * cfg.urgency_ref_s / (cfg.urgency_ref_s + t_go), 0.0)
        better = s > score
        score = np.where(better, s, score)
        t_cpa = np.where(better, tc, t_cpa)
        d_cpa = np.where(better, d, d_cpa)
        t_asset = np.where(better, ta, t_asset)
        asset = np.where(better, k, asset)
    return score, t_cpa, d_cpa, t_asset, asset


def evaluate(cfg: FireControlConfig, assets: Sequence[AssetSpec], launchers: Sequence[LauncherSpec],
             zones: Sequence[NoFireZone], state: FloatArray, pos_var: FloatArray, confirmed: npt.NDArray[np.bool_],
             friendly: npt.NDArray[np.bool_], in_flight: npt.ArrayLike, shots: npt.ArrayLike,
             armed: npt.NDArray[np.bool_], ready: npt.NDArray[np.bool_], rounds: npt.ArrayLike,
             reload_left: FloatArray, channels_in_use: npt.ArrayLike | None = None, *,
             neutral: npt.ArrayLike | None = None, assessing: npt.ArrayLike | None = None,
             vel_var_m2s2: npt.ArrayLike | None = None) -> Evaluation:
    n, n_l = len(state), len(launchers)
    in_flight, shots, rounds = np.asarray(in_flight), np.asarray(shots), np.asarray(rounds)
    neutral = np.zeros(n, bool) if neutral is None else np.asarray(neutral, bool)
    assessing = np.zeros(n, bool) if assessing is None else np.asarray(assessing, bool)
    vel_var = (np.full(n, cfg.track_velocity_sigma_mps * cfg.track_velocity_sigma_mps) if vel_var_m2s2 is None
               else np.asarray(vel_var_m2s2, np.float64))
    with np.errstate(invalid="ignore"):
        valid = (np.all(np.isfinite(state), axis=1) & np.isfinite(pos_var) & (pos_var >= 0.0) & np.isfinite(vel_var)
                 & (vel_var >= 0.0))
    safe_state = np.where(valid[:, None], state, 0.0)
    safe_pv, safe_vv = np.where(valid, pos_var, 0.0), np.where(valid, vel_var, 0.0)
    prot = np.nonzero((np.asarray(friendly, bool) | neutral) & valid)[0]  # protected rows, in input order
    xp, vp = safe_state[prot, :3], safe_state[prot, 3:]
    speed_p = np.sqrt(vp[:, 0] * vp[:, 0] + vp[:, 1] * vp[:, 1] + vp[:, 2] * vp[:, 2])
    score, t_cpa, d_cpa, t_asset, asset = threats(safe_state, assets, cfg)
    score = np.where(valid, score, 0.0)
    code = np.zeros(n, np.int8)
    conditions = [  # last assignment wins, so list them from the least to the most important
        (shots >= cfg.max_shots_per_track, R.SHOTS_EXHAUSTED), (assessing, R.KILL_ASSESSMENT),
        (in_flight >= cfg.shots_per_engagement, R.ALREADY_ENGAGED),
        (score <= 0.0, R.NOT_A_THREAT), (in_zones(safe_state[:, :3], zones), R.NO_FIRE_ZONE),
        (~confirmed, R.NOT_CONFIRMED), (neutral, R.NEUTRAL), (friendly, R.FRIENDLY), (~valid, R.INVALID_TRACK),
    ]
    for cond, reason in conditions:
        code = np.where(cond, np.int8(reason), code)
    left = np.where(code == 0, np.minimum(cfg.shots_per_engagement - in_flight, cfg.max_shots_per_track - shots), 0)

    busy = np.zeros(n_l, int) if channels_in_use is None else np.asarray(channels_in_use)
    channels = np.array([s.channels for s in launchers], int)
    lcode = np.zeros(n_l, np.int8)
    for cond, reason in [(channels - busy <= 0, R.NO_CHANNEL), (rounds <= 0, R.NO_ROUNDS),
                         (~ready | ~(reload_left <= 0.0), R.LAUNCHER_NOT_READY), (~armed, R.LAUNCHER_NOT_ARMED)]:
        lcode = np.where(cond, np.int8(reason), lcode)
    cap = np.where(lcode == 0, np.minimum(np.minimum(rounds, channels - busy), cfg.launches_per_launcher), 0)

    pair_code = np.zeros((n, n_l), np.int8)
    pk = np.full((n, n_l), np.nan)
    t_int = np.full((n, n_l), np.nan)
    tof = np.full((n, n_l), np.nan)
    protected = np.full((n, n_l), -1, np.int64)
    p, v = safe_state[:, :3], safe_state[:, 3:]
    for li, la in enumerate(launchers):
        pos = np.asarray(la.position, dtype=np.float64)
        r = p - pos
        centre = np.radians(la.sector_centre_deg)
        tau = intercept_tof(r, v, la.interceptor_speed_mps, la.launch_delay_s)
        delay = np.full(n, la.launch_delay_s)
        unreachable = ~np.isfinite(tau)
        if np.radians(la.slew_rate_dps) > 0.0:  # as the kernel tests it (a denormal rate is no slew)
            for _ in range(cfg.slew_iterations):
                d = r + v * np.where(unreachable, 0.0, delay + tau)[:, None]
                sin_c, cos_c = np.sin(centre), np.cos(centre)
                angle = angle_between(np.abs(d[:, 0] * cos_c - d[:, 1] * sin_c), d[:, 0] * sin_c + d[:, 1] * cos_c)
                delay = la.launch_delay_s + angle / np.radians(la.slew_rate_dps)
                tau = intercept_tof(r, v, la.interceptor_speed_mps, delay)
                unreachable |= ~np.isfinite(tau)
        fly = np.where(unreachable, 0.0, tau)
        Tf = delay + fly
        d = r + v * delay[:, None] + v * fly[:, None]
        rng = np.sqrt(dot(d, d))  # as the kernel sums it
        point = pos + d
        # outside the sector: the bearing's cosine to the centre below the half-width's (the kernel's test,
        # which also decides an intercept on top of the launcher the same way)
        half = np.radians(la.sector_width_deg) / 2.0
        ground = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
        off_sector = (half < np.pi) & (d[:, 0] * np.sin(centre) + d[:, 1] * np.cos(centre) < ground * np.cos(half))
        with np.errstate(divide="ignore", invalid="ignore"):
            vn = np.linalg.norm(v, axis=1)
            cos_a = np.where((vn > 1e-12) & (rng > 1e-12), -np.sum(d * v, axis=1) / (rng * vn), 1.0)
            f_track = np.where(pos_var > 0.0, 1.0 - np.exp(-cfg.pk_basket_m**2 / pos_var), 1.0)
        pkl = (la.pk * f_track * (1.0 - cfg.pk_aspect_penalty * (1.0 - cos_a) / 2.0)
               * (1.0 - cfg.pk_tof_penalty * (fly / la.max_tof_s) ** 2))
        # the terminal path and the seeker's window (hil.ext.firecontrol_types docstring)
        seeker = max(float(la.seeker_range_m), 0.0)
        ahead = rng > EPS
        with np.errstate(divide="ignore", invalid="ignore"):
            u_dir = np.where(ahead[:, None], d / rng[:, None], 0.0)
        extra = np.where(ahead, 0.0, seeker)
        back = np.where(seeker < rng, seeker, rng)
        h = seeker / la.interceptor_speed_mps
        t_end = Tf + h
        sig = np.sqrt(safe_pv + safe_vv * t_end * t_end)
        a_pt = pos + d - back[:, None] * u_dir
        b_pt = pos + d + seeker * u_dir
        lethal = max(float(la.lethal_radius_m), 0.0)
        nfz_path = path_in_zones(a_pt, b_pt, cfg.safety_sigmas * sig + lethal + extra, zones)
        # protected track k's offset from the aim at T, its velocity relative to the round, the window
        e = xp[None, :, :] + vp[None, :, :] * Tf[:, None, None] - point[:, None, :]
        w = vp[None, :, :] - la.interceptor_speed_mps * u_dir[:, None, :]
        t_back = back / la.interceptor_speed_mps
        ya = e - w * t_back[:, None, None]
        dy = w * (t_back + h)[:, None, None]
        axis = (seeker * u_dir)[:, None, :]
        sj = np.sqrt(safe_pv[prot][None, :] + safe_vv[prot][None, :] * t_end[:, None] * t_end[:, None])
        rho = (protect_radius(cfg, la) + extra[:, None] + cfg.safety_sigmas * (sig[:, None] + sj)
               + speed_p[None, :] * cfg.launch_timing_margin_s)
        near = seg_seg_dist2(ya, dy, np.zeros_like(axis), axis) <= rho * rho  # (n, n_protected)
        first = np.where(near.any(axis=1), prot[np.argmax(near, axis=1)] if len(prot) else -1, -1)
        pc = np.zeros(n, np.int8)
        checks = [  # least to most important again
            ((pkl < cfg.min_pk) | (pkl <= 0.0), R.LOW_PK),
            (first >= 0, R.PROTECTED_NEAR_INTERCEPT),
            (nfz_path, R.INTERCEPT_IN_NO_FIRE_ZONE),
            (Tf >= t_asset, R.TOO_LATE),
            (off_sector, R.SECTOR),
            ((point[:, 2] < la.min_alt_m) | (point[:, 2] > la.max_alt_m), R.ALTITUDE),
            ((rng < la.min_range_m) | (rng > la.max_range_m), R.OUT_OF_RANGE),
            (fly > la.max_tof_s, R.TOF),
        ]
        for cond, reason in checks:
            pc = np.where(cond, np.int8(reason), pc)
        solved = ~unreachable
        pc = np.where(unreachable, np.int8(R.UNREACHABLE), pc)
        geo = (code == 0) & (lcode[li] == 0)
        pair_code[:, li] = np.where(code != 0, code, np.where(lcode[li] != 0, lcode[li], pc))
        t_int[:, li] = np.where(geo & solved, Tf, np.nan)
        tof[:, li] = np.where(geo & solved, fly, np.nan)
        pk[:, li] = np.where(geo & solved & (pc != R.TOF) & (pc != R.OUT_OF_RANGE) & (pc != R.ALTITUDE)
                             & (pc != R.SECTOR) & (pc != R.TOO_LATE) & (pc != R.INTERCEPT_IN_NO_FIRE_ZONE)
                             & (pc != R.PROTECTED_NEAR_INTERCEPT), pkl, np.nan)
        protected[:, li] = np.where(pair_code[:, li] == R.PROTECTED_NEAR_INTERCEPT, first, -1)
    return Evaluation(code, score, t_cpa, d_cpa, t_asset, asset.astype(np.int64), left.astype(np.int64),
                      cap.astype(np.int64), pair_code, pk, t_int, tof, protected)


# --- assignment: a problem is (value[i, l] = score_i * pk_il or -1 if infeasible, pk, shots_left, capacity)


@dataclass
class Problem:
    score: FloatArray  # (n,)
    pk: FloatArray  # (n, n_l)
    feasible: npt.NDArray[np.bool_]  # (n, n_l)
    shots_left: IntArray  # (n,)
    capacity: IntArray  # (n_l,)

    @classmethod
    def from_evaluation(cls, e: Evaluation) -> Problem:
        return cls(e.score, np.nan_to_num(e.pk), e.pair_code == 0, e.shots_left, e.capacity)


Shot = tuple[int, int]  # (track, launcher)


def objective(p: Problem, shots: Sequence[Shot]) -> float:
    survive = np.ones(len(p.score))
    for i, j in shots:
        survive[i] *= 1.0 - p.pk[i, j]
    return float(np.sum(p.score * (1.0 - survive)))


def is_valid(p: Problem, shots: Sequence[Shot]) -> bool:
    per_track = np.bincount([i for i, _ in shots], minlength=len(p.score)) if shots else np.zeros(len(p.score))
    per_launcher = np.bincount([j for _, j in shots], minlength=len(p.capacity)) if shots else np.zeros(
        len(p.capacity))
    return (all(p.feasible[i, j] for i, j in shots) and bool(np.all(per_track <= p.shots_left))
            and bool(np.all(per_launcher <= p.capacity)))


def lap(p: Problem) -> list[Shot]:
    """Optimal one-shot-per-track assignment (scipy's linear_sum_assignment over launcher slots)."""
    slots = np.repeat(np.arange(len(p.capacity)), p.capacity)
    rows = np.nonzero((p.shots_left > 0) & p.feasible.any(axis=1))[0]
    if len(rows) == 0 or len(slots) == 0:
        return []
    value = np.where(p.feasible[np.ix_(rows, slots)], p.score[rows, None] * p.pk[np.ix_(rows, slots)], 0.0)
    r, c = linear_sum_assignment(value, maximize=True)
    return [(int(rows[a]), int(slots[b])) for a, b in zip(r, c, strict=True) if p.feasible[rows[a], slots[b]]]


def greedy(p: Problem) -> list[Shot]:
    """Maximum marginal return."""
    q = np.ones(len(p.score))
    left, cap = p.shots_left.copy(), p.capacity.copy()
    shots: list[Shot] = []
    while True:
        gain = np.where(p.feasible & (left[:, None] > 0) & (cap[None, :] > 0),
                        p.score[:, None] * q[:, None] * p.pk, 0.0)
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape) if gain.size else (0, 0)
        if not gain.size or gain[i, j] <= 0.0:
            return shots
        shots.append((int(i), int(j)))
        q[i] *= 1.0 - p.pk[i, j]
        left[i] -= 1
        cap[j] -= 1


def branch_and_bound(p: Problem) -> list[Shot]:
    """Exact: each launcher slot takes one feasible track or stays empty; bounded by each remaining slot's
    best single-shot value (marginal gains only shrink as shots are added)."""
    n_l = len(p.capacity)
    slots = [int(x) for x in np.repeat(np.arange(n_l), p.capacity)]
    value = np.where(p.feasible, p.score[:, None] * p.pk, 0.0)
    best_l = value.max(axis=0) if value.size else np.zeros(n_l)
    suffix = np.concatenate([np.cumsum([best_l[j] for j in slots][::-1])[::-1], [0.0]])
    q = np.ones(len(p.score))
    left = p.shots_left.copy()
    best: list[float | list[Shot]] = [-1.0, []]
    chosen: list[Shot] = []

    def visit(s: int, min_track: int, cur: float) -> None:
        if cur > float(best[0]):  # type: ignore[arg-type]
            best[0], best[1] = cur, list(chosen)
        if s == len(slots) or cur + suffix[s] <= float(best[0]):  # type: ignore[arg-type]
            return
        lj = slots[s]
        same = s > 0 and slots[s - 1] == lj
        for i in range(min_track if same else 0, len(p.score)):
            if not p.feasible[i, lj] or left[i] <= 0:
                continue
            old = q[i]
            gain = p.score[i] * old * p.pk[i, lj]
            q[i], left[i] = old * (1.0 - p.pk[i, lj]), left[i] - 1
            chosen.append((i, lj))
            visit(s + 1, i, cur + gain)
            chosen.pop()
            q[i], left[i] = old, left[i] + 1
        nxt = s
        while nxt < len(slots) and slots[nxt] == lj:
            nxt += 1
        visit(nxt, 0, cur)

    visit(0, 0, 0.0)
    return list(best[1])  # type: ignore[arg-type]


def brute_force(p: Problem) -> float:
    """Best objective over every assignment of every launcher slot to a track or to nothing (tiny problems)."""
    slots = [int(x) for x in np.repeat(np.arange(len(p.capacity)), p.capacity)]
    options = [[-1, *np.nonzero(p.feasible[:, j])[0].tolist()] for j in slots]
    best = 0.0
    for pick in itertools.product(*options):
        shots = [(i, j) for i, j in zip(pick, slots, strict=True) if i >= 0]
        if is_valid(p, shots):
            best = max(best, objective(p, shots))
    return best


# --- seeded random instances for tests and benchmarks ------------------------------------------------------


def random_problem(rng: np.random.Generator, n: int, n_l: int, max_capacity: int = 2, max_shots: int = 1,
                   density: float = 0.6) -> Problem:
    """A bare assignment problem: random scores, pks and feasibility."""
    return Problem(score=rng.uniform(0.05, 1.0, n), pk=rng.uniform(0.2, 0.95, (n, n_l)),
                   feasible=rng.random((n, n_l)) < density, shots_left=rng.integers(1, max_shots + 1, n),
                   capacity=rng.integers(0, max_capacity + 1, n_l))


BoolArray = npt.NDArray[np.bool_]
Int32Array = npt.NDArray[np.int32]
# FireControl.evaluate's array arguments after t_s: track_id, state, pos_var_m2, confirmed, friendly, in_flight,
# shots_fired, launcher_armed, launcher_ready, launcher_rounds, launcher_reload_left_s
EvaluateArrays = tuple[IntArray, FloatArray, FloatArray, BoolArray, BoolArray, Int32Array, Int32Array, BoolArray,
                       BoolArray, Int32Array, FloatArray]


@dataclass
class Scene:
    assets: list[AssetSpec]
    launchers: list[LauncherSpec]
    zones: list[NoFireZone]
    args: EvaluateArrays  # FireControl.evaluate's array arguments after t_s
    kwargs: dict[str, Any] = field(default_factory=dict)  # its keyword inputs: neutral, assessing, vel_var_m2s2


def random_scene(rng: np.random.Generator, n: int, n_l: int, n_assets: int = 3, n_zones: int = 2,
                 p_flags: float = 0.0, area_m: float = 60_000.0, p_protect: float = 0.0) -> Scene:
    """Threats converging on assets defended by launchers spread over the area. p_flags: the chance each
    safety flag (unconfirmed, friendly, unarmed, not ready, empty, engaged) is set, to exercise refusals.
    p_protect > 0 adds the keyword inputs (kwargs): neutral and assessing flags set with that chance, and
    velocity variances; drawn after everything else, so the rest of the scene does not change with it."""
    half = area_m / 2.0

    def spot(scale: float) -> tuple[float, float, float]:
        return (float(rng.uniform(-scale, scale)), float(rng.uniform(-scale, scale)), 0.0)

    assets = [AssetSpec(f"asset{k}", spot(half / 3), radius_m=float(rng.uniform(1000, 4000)),
                        value=float(rng.uniform(0.5, 2))) for k in range(n_assets)]
    launchers = [LauncherSpec(f"L{k}", spot(half / 2),
                              interceptor_speed_mps=float(rng.uniform(700, 1500)),
                              launch_delay_s=float(rng.uniform(0.5, 3)), slew_rate_dps=float(rng.uniform(0, 90)),
                              max_range_m=float(rng.uniform(25_000, 60_000)), max_tof_s=float(rng.uniform(40, 90)),
                              sector_centre_deg=float(rng.uniform(0, 360)),
                              sector_width_deg=float(rng.choice([360.0, 120.0, 200.0])),
                              channels=int(rng.integers(1, 4)))
                 for k in range(n_l)]
    zones = [NoFireZone(f"nfz{k}", (float(rng.uniform(-half, half)), float(rng.uniform(-half, half))),
                        float(rng.uniform(1000, 6000)), z_min_m=0.0, z_max_m=float(rng.uniform(2000, 30000)))
             for k in range(n_zones)]
    ang = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(0.4, 1.0, n) * half
    pos = np.stack([dist * np.sin(ang), dist * np.cos(ang), rng.uniform(50, 12_000, n)], axis=1)
    aim = np.array([a.position for a in assets])[rng.integers(0, n_assets, n)] if n_assets else np.zeros((n, 3))
    aim = aim + rng.normal(0, 3000, (n, 3)) * [1, 1, 0]
    heading = aim - pos
    heading /= np.linalg.norm(heading, axis=1, keepdims=True)
    speed = rng.uniform(100, 900, n)
    state = np.concatenate([pos, heading * speed[:, None]], axis=1)

    def flag(k: int) -> npt.NDArray[np.bool_]:
        return rng.random(k) < p_flags

    args = (np.arange(1, n + 1, dtype=np.int64), state, rng.uniform(100, 80_000, n), ~flag(n), flag(n),
            flag(n).astype(np.int32), (rng.random(n) < p_flags / 2).astype(np.int32) * 4,
            ~flag(n_l), ~flag(n_l), np.where(flag(n_l), 0, 4).astype(np.int32), np.where(flag(n_l), 1.5, 0.0))
    kwargs: dict[str, Any] = {}
    if p_protect > 0.0:
        kwargs = dict(neutral=rng.random(n) < p_protect, assessing=rng.random(n) < p_protect,
                      vel_var_m2s2=rng.uniform(0.0, 300.0, n))
    return Scene(assets, launchers, zones, args, kwargs)

