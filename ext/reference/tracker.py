"""Plain numpy reference of the tracker kernel (tests only): same algorithm, no pre-gate, numeric Jacobians,
every track against every plot (no pre-gate), one global assignment with scipy instead of JV per cluster."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from hil.ext.tracker_types import ReorderBuffer, SensorDef, TrackerConfig, TrackSnapshot, TrackStatus
from hil.geo import STANDARD_GRAVITY, FloatArray, enu_to_polar, polar_to_enu

NX = 7
IFF_UNKNOWN = -2  # a track whose recent plots establish nothing: IFF does not weigh in its association


def q_cv(dt: float, q: float, n: int = NX) -> FloatArray:
    a = abs(dt)
    Q = np.zeros((n, n))
    for k in range(3):
        Q[k, k] = q * a**3 / 3.0
        Q[k, k + 3] = Q[k + 3, k] = q * dt * a / 2.0
        Q[k + 3, k + 3] = q * a
    return Q


def f_cv(x: FloatArray, dt: float) -> FloatArray:
    y = x.copy()
    y[:3] += dt * x[3:6]
    return y


def f_ct(x: FloatArray, dt: float) -> FloatArray:
    """Coordinated turn in the horizontal plane at rate x[6] (counter-clockwise positive)."""
    w = x[6]
    vx, vy = x[3], x[4]
    th = w * dt
    y = x.copy()
    if abs(w) > 1e-6:
        y[0] += (math.sin(th) * vx - (1 - math.cos(th)) * vy) / w
        y[1] += ((1 - math.cos(th)) * vx + math.sin(th) * vy) / w
    else:
        y[0] += vx * dt - w * vy * dt * dt / 2.0
        y[1] += vy * dt + w * vx * dt * dt / 2.0
    y[2] += dt * x[5]
    y[3] = math.cos(th) * vx - math.sin(th) * vy
    y[4] = math.sin(th) * vx + math.cos(th) * vy
    return y


def numeric_jacobian(f: Callable[[FloatArray], FloatArray], x: FloatArray, steps: FloatArray,
                     angle: int | None = None) -> FloatArray:
    """Central differences; component `angle` of f is an azimuth, whose differences wrap through north."""
    cols = []
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = steps[i]
        d = np.asarray(f(x + e)) - np.asarray(f(x - e))
        if angle is not None:
            d[angle] = (d[angle] + math.pi) % (2 * math.pi) - math.pi
        cols.append(d / (2 * steps[i]))
    return np.stack(cols, axis=-1)


STEPS = np.array([1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3, 1e-7])


def h(x: FloatArray, site: FloatArray, use_rr: bool) -> FloatArray:
    rel = x[:3] - site
    r, az, el = enu_to_polar(rel)
    z = [float(r), float(az), float(el)]
    if use_rr:
        z.append(float(rel @ x[3:6] / r))
    return np.array(z)


def predict(model: int, x: FloatArray, P: FloatArray, dt: float, cfg: TrackerConfig) -> tuple[FloatArray, FloatArray]:
    n = len(x)
    if model == 0:
        F = np.eye(n)
        F[0:3, 3:6] = dt * np.eye(3)
        Q = q_cv(dt, cfg.q_cv_m2ps3 if n == NX else _q_gate(cfg), n)
        y = f_cv(x, dt)
        if n == NX:  # the CV model forgets any turn rate
            F[6, 6] = 0.0
            Q[6, 6] = cfg.init_omega_sigma_radps**2
            y[6] = 0.0
        return y, F @ P @ F.T + Q
    F = numeric_jacobian(lambda v: f_ct(v, dt), x, STEPS)
    Q = q_cv(dt, cfg.q_ct_m2ps3)
    Q[6, 6] += cfg.q_omega_rad2ps3 * abs(dt)
    return f_ct(x, dt), F @ P @ F.T + Q


def _q_gate(cfg: TrackerConfig) -> float:
    return max(cfg.q_cv_m2ps3, cfg.q_ct_m2ps3) if cfg.model == "imm" else cfg.q_cv_m2ps3


def innovation(x: FloatArray, P: FloatArray, z: FloatArray, site: FloatArray,
               r2: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    nz = len(z)
    zhat = h(x, site, nz == 4)
    H = numeric_jacobian(lambda v: h(v, site, nz == 4), x, STEPS[: len(x)], angle=1)
    nu = z - zhat
    nu[1] = (nu[1] + math.pi) % (2 * math.pi) - math.pi
    S = H @ P @ H.T + np.diag(r2[:nz])
    return nu, S, H


def ekf_update(x: FloatArray, P: FloatArray, z: FloatArray, site: FloatArray,
               r2: FloatArray) -> tuple[FloatArray, FloatArray, float, float]:
    nu, S, H = innovation(x, P, z, site, r2)
    K = P @ H.T @ np.linalg.inv(S)
    P2 = P - K @ S @ K.T
    return x + K @ nu, (P2 + P2.T) / 2, float(nu @ np.linalg.solve(S, nu)), float(np.linalg.slogdet(S)[1])


def iff_penalty(cfg: TrackerConfig, expect: int, code: int) -> float:
    """Association cost (distance² units) of a plot with code (< 0: none) for a track that shows expect."""
    code = max(code, -1)
    if expect == IFF_UNKNOWN or code == expect:
        return 0.0
    return cfg.iff_missing_d2 if code < 0 else cfg.iff_unexpected_d2


def iff_push(cfg: TrackerConfig, trk: RefTrack, code: int) -> None:
    """Add a plot's code to the track's evidence; its identity changes only to an answer seen in k of the last
    n plots, and only once its own has fallen below k there (ties: the answer seen most recently)."""
    trk.codes = [*trk.codes, max(code, -1)][-cfg.iff_window:]
    have = trk.codes.count(trk.mode3a)
    best, n_best = trk.mode3a, have
    for v in reversed(trk.codes):
        if trk.codes.count(v) > n_best:
            best, n_best = v, trk.codes.count(v)
    if have < cfg.iff_k <= n_best:
        trk.mode3a, have = best, n_best
    trk.expect = trk.mode3a if have >= cfg.iff_k else IFF_UNKNOWN


@dataclass
class RefTrack:
    track_id: int
    xs: list[FloatArray]
    Ps: list[FloatArray]
    mu: FloatArray
    t: float
    mode3a: int  # the identity its IFF evidence establishes (-1: none)
    pending: int
    codes: list[int] = field(default_factory=list)  # codes of its last plots, oldest first (-1: no code)
    expect: int = IFF_UNKNOWN  # the identity, when its evidence still holds it (what association weighs)
    status: TrackStatus = TrackStatus.TENTATIVE
    hits: int = 1
    misses: int = 0
    opp: int = 0
    hist: int = 0
    xc: FloatArray = field(default_factory=lambda: np.zeros(6))
    Pc: FloatArray = field(default_factory=lambda: np.zeros((6, 6)))

    def combine(self) -> None:
        self.xc = np.sum([m * x[:6] for m, x in zip(self.mu, self.xs, strict=True)], axis=0)
        self.Pc = np.sum([m * (P[:6, :6] + np.outer(x[:6] - self.xc, x[:6] - self.xc))
                          for m, x, P in zip(self.mu, self.xs, self.Ps, strict=True)], axis=0)


class ReferenceTracker:
    """The tracker's algorithm in numpy, slowly and plainly, for agreement tests."""

    def __init__(self, config: TrackerConfig, sites_enu: FloatArray, sigmas: FloatArray | None = None,
                 max_range_m: FloatArray | None = None) -> None:
        self.cfg = config
        self.sites = np.asarray(sites_enu, dtype=np.float64)
        d = SensorDef("", (0.0, 0.0, 0.0))
        default = [d.sigma_range_m, d.sigma_azimuth_rad, d.sigma_elevation_rad, d.sigma_range_rate_mps]
        self.r2 = (np.tile(default, (len(self.sites), 1)) if sigmas is None else np.asarray(sigmas)) ** 2
        self.max_range = np.full(len(self.sites), np.inf) if max_range_m is None else np.asarray(max_range_m)
        self.live: list[RefTrack] = []
        self.next_id = 1
        self.buffer = ReorderBuffer(config.reorder_window_s)
        self.late_plots = self.new_tracks = self.confirmed = self.deleted = self.plots_used = 0

    def update(self, t_s: FloatArray, sensor: np.ndarray, range_m: FloatArray, azimuth_rad: FloatArray,
               elevation_rad: FloatArray, range_rate_mps: FloatArray, mode3a: np.ndarray) -> None:
        cols = [np.asarray(a, dtype=np.float64) for a in (t_s, range_m, azimuth_rad, elevation_rad, range_rate_mps)]
        sen, m3 = np.asarray(sensor, dtype=np.int64), np.asarray(mode3a, dtype=np.int64)
        late = cols[0] < self.buffer.released_s
        self.late_plots += int(late.sum())
        order = np.argsort(cols[0][~late], kind="stable")
        t, r, az, el, rr = (c[~late][order] for c in cols)
        sen, m3 = sen[~late][order], m3[~late][order]
        if len(t) == 0:
            return
        self.buffer.push_plots((t, sen, r, az, el, rr, m3))
        self._release(None)

    def sector_swept(self, sensor: int, t_s: float, az_from: float, az_to: float) -> None:
        self.buffer.push_sweep(t_s, (sensor, t_s, az_from, az_to))
        self._release(None)

    def flush(self) -> None:
        self._release(math.inf)

    def _release(self, until: float | None) -> None:
        for unit in self.buffer.pop_ready(until):
            if unit[0] == "plots":
                t, sen = unit[1], unit[2]
                start = 0
                for k in range(1, len(t) + 1):
                    if k == len(t) or sen[k] != sen[start]:
                        self._batch(int(sen[start]), *(a[start:k] for a in (t, *unit[3:])))
                        start = k
            else:
                self._sweep(*unit[1:])

    def _batch(self, sensor: int, t: FloatArray, r: FloatArray, az: FloatArray, el: FloatArray,
               rr: FloatArray, m3: np.ndarray) -> None:
        cfg, site, r2 = self.cfg, self.sites[sensor], self.r2[sensor]
        valid = (r > 0) & (r < 1e8) & (np.abs(az) < 1e3) & (np.abs(el) < 1.5) & (np.abs(t) < 1e12)
        zs = []
        for j in range(len(t)):
            use_rr = cfg.use_range_rate and abs(rr[j]) < 1e5
            z = [r[j], az[j] % (2 * math.pi), el[j]] + ([rr[j]] if use_rr else [])
            zs.append(np.array(z))
        cost = np.full((len(self.live), len(t)), np.inf)
        pen = np.zeros((len(self.live), len(t)))
        gated_any = np.zeros(len(t), bool)
        gated_conf = np.zeros(len(t), bool)
        for i, trk in enumerate(self.live):
            for j in range(len(t)):
                if not valid[j]:
                    continue
                # the models; while flying straight and none gates the plot, both turns as starting now from CV
                g = cfg.gate(len(zs[j]))
                d2 = self._distance(trk, [(m, x, P) for m, (x, P) in enumerate(zip(trk.xs, trk.Ps, strict=True))],
                                    t[j], zs[j], site, r2)
                if d2 >= g and cfg.model == "imm" and trk.mu[0] >= 0.5:
                    d2 = min(d2, self._distance(trk, [(m, *self._entry(trk, trk.xs[0], trk.Ps[0], m)) for m in (1, 2)],
                                                t[j], zs[j], site, r2))
                if d2 < g:
                    cost[i, j] = d2 / g
                    pen[i, j] = iff_penalty(cfg, trk.expect, int(m3[j])) / g
                    gated_any[j] = True
                    # a confirmed track whose identity disagrees with the plot's code lets it start a track
                    gated_conf[j] |= trk.status == TrackStatus.CONFIRMED and pen[i, j] == 0.0
        # IFF adds the part of a pair's disagreement that the track or the plot could avoid with another gated
        # pairing: where neither has a better-matching alternative, position alone decides
        gated = np.isfinite(cost)
        own = np.where(gated, pen, np.inf)
        best = np.minimum(own.min(axis=1, initial=np.inf)[:, None], own.min(axis=0, initial=np.inf)[None, :])
        cost[gated] += pen[gated] - best[gated]
        nt, npl = cost.shape
        big = np.full((nt + npl, npl + nt), 1e9)
        big[:nt, :npl] = np.where(np.isfinite(cost), cost, 1e9)
        big[np.arange(nt), npl + np.arange(nt)] = 0.5
        big[nt + np.arange(npl), np.arange(npl)] = 0.5
        big[nt:, npl:] = 0.0
        rows, cols = linear_sum_assignment(big)
        track_of = np.full(npl, -1)
        for i, j in zip(rows, cols, strict=True):
            if i < nt and j < npl and np.isfinite(cost[i, j]):
                track_of[j] = i
        born = []
        for j in range(npl):
            if not valid[j]:
                continue
            if track_of[j] >= 0:
                self._update(self.live[track_of[j]], sensor, float(t[j]), zs[j], int(m3[j]))
                self.plots_used += 1
            elif not gated_conf[j]:
                born.append(self._new(sensor, float(t[j]), zs[j], int(m3[j])))
        self.live.extend(born)

    def _update(self, trk: RefTrack, sensor: int, t: float, z: FloatArray, m3: int) -> None:
        cfg, site, r2 = self.cfg, self.sites[sensor], self.r2[sensor]
        dt = t - trk.t
        if cfg.model == "cv":
            x, P = predict(0, trk.xs[0], trk.Ps[0], dt, cfg)
            trk.xs[0], trk.Ps[0], _, _ = ekf_update(x, P, z, site, r2)
        else:
            p01 = 1 - math.exp(-cfg.imm_cv_to_ct_per_s * abs(dt))
            rout = cfg.imm_ct_to_cv_per_s + cfg.imm_turn_reversal_per_s
            pout = 1 - math.exp(-rout * abs(dt))
            p10 = pout * cfg.imm_ct_to_cv_per_s / rout if rout else 0.0
            prev = pout * cfg.imm_turn_reversal_per_s / rout if rout else 0.0
            # CV, turn left, turn right: CV goes to either turn, a turn back to CV or into the other sense
            Pi = np.array([[1 - p01, p01 / 2, p01 / 2], [p10, 1 - pout, prev], [p10, prev, 1 - pout]])
            cbar = Pi.T @ trk.mu
            w = np.where(cbar[None, :] > 1e-300, Pi * trk.mu[:, None] / np.maximum(cbar[None, :], 1e-300), np.eye(3))
            # what another model brings into a turn: its kinematics, with the turn-entry prior on the rate
            lls, xs, Ps = [], [], []
            for j in range(3):
                src = [self._entry(trk, trk.xs[i], trk.Ps[i], j) if j > 0 and i != j else (trk.xs[i], trk.Ps[i])
                       for i in range(3)]
                src_x, src_P = [a for a, _ in src], [b for _, b in src]
                x0 = sum(w[i, j] * src_x[i] for i in range(3))
                P0 = sum(w[i, j] * (src_P[i] + np.outer(src_x[i] - x0, src_x[i] - x0)) for i in range(3))
                x, P = predict(j, np.asarray(x0), np.asarray(P0), dt, cfg)
                x, P, d2, ld = ekf_update(x, P, z, site, r2)
                xs.append(x)
                Ps.append(P)
                lls.append(-0.5 * (d2 + ld))
            mu = np.maximum(cbar * np.exp(np.array(lls) - max(lls)), 1e-6)
            trk.mu = mu / mu.sum()
            trk.xs, trk.Ps = xs, Ps
        trk.combine()
        trk.t = t
        trk.pending |= 1 << sensor
        trk.hits += 1
        iff_push(cfg, trk, m3)

    def _distance(self, trk: RefTrack, states: list[tuple[int, FloatArray, FloatArray]], t: float, z: FloatArray,
                  site: FloatArray, r2: FloatArray) -> float:
        """Smallest Mahalanobis distance² of plot z to the states (model, x, P) predicted to t."""
        d2 = math.inf
        for m, x, P in states:
            xg, Pg = predict(m, x, P, t - trk.t, self.cfg)
            if np.hypot(*(xg[:2] - site[:2])) < 1e-3:
                continue
            nu, S, _ = innovation(xg, Pg, z, site, r2)
            d2 = min(d2, float(nu @ np.linalg.solve(S, nu)))
        return d2

    def _entry(self, trk: RefTrack, x: FloatArray, P: FloatArray, j: int) -> tuple[FloatArray, FloatArray]:
        """A model's state as it enters turn model j (1 left, 2 right): its kinematics, the entry prior's rate."""
        cfg = self.cfg
        speed = max(math.hypot(trk.xc[3], trk.xc[4]), cfg.turn_min_speed_mps)
        x, P = x.copy(), P.copy()
        x[6] = (1 if j == 1 else -1) * cfg.turn_entry_g * STANDARD_GRAVITY / speed
        P[6, :] = P[:, 6] = 0.0
        P[6, 6] = (cfg.turn_entry_sigma_g * STANDARD_GRAVITY / speed) ** 2
        return x, P

    def _new(self, sensor: int, t: float, z: FloatArray, m3: int) -> RefTrack:
        cfg, site, r2 = self.cfg, self.sites[sensor], self.r2[sensor]
        pos = site + polar_to_enu(z[0:1], z[1:2], z[2:3])[0]
        J = numeric_jacobian(lambda p: polar_to_enu(p[0:1], p[1:2], p[2:3])[0], z[:3], np.array([1e-3, 1e-8, 1e-8]))
        u = polar_to_enu(np.ones(1), z[1:2], z[2:3])[0]
        sv2 = cfg.init_speed_sigma_mps**2
        vr, srr2 = (z[3], r2[3]) if len(z) == 4 else (0.0, sv2)
        x = np.zeros(NX)
        P = np.zeros((NX, NX))
        x[:3], x[3:6] = pos, vr * u
        P[:3, :3] = J @ np.diag(r2[:3]) @ J.T
        P[3:6, 3:6] = sv2 * (np.eye(3) - np.outer(u, u)) + srr2 * np.outer(u, u)
        P[6, 6] = cfg.init_omega_sigma_radps**2
        p_turn = min(max(cfg.imm_initial_ct, 2e-6), 1 - 1e-6) / 2  # kept off 0 and 1, as the kernel does
        mu = np.array([1.0]) if cfg.model == "cv" else np.array([1 - 2 * p_turn, p_turn, p_turn])
        trk = RefTrack(self.next_id, [x.copy() for _ in mu], [P.copy() for _ in mu], mu, t, -1, 1 << sensor)
        iff_push(cfg, trk, m3)
        trk.combine()
        self.next_id += 1
        self.new_tracks += 1
        return trk

    def _sweep(self, sensor: int, t: float, a0: float, a1: float) -> None:
        cfg, site = self.cfg, self.sites[sensor]
        full = a1 - a0 >= 2 * math.pi - 1e-9
        width = (a1 - a0) % (2 * math.pi)
        keep = []
        for trk in self.live:
            dt = t - trk.t
            rel = trk.xc[:3] + dt * trk.xc[3:6] - site
            off = (math.atan2(rel[0], rel[1]) - a0) % (2 * math.pi)
            if (not full and off >= width) or np.linalg.norm(rel) > self.max_range[sensor]:
                keep.append(trk)
                continue
            hit = bool(trk.pending >> sensor & 1)
            trk.pending &= ~(1 << sensor)
            trk.hist = ((trk.hist << 1) | int(hit)) & 0xFFFFFFFF
            trk.misses = 0 if hit else trk.misses + 1
            _, Pp = predict(0, trk.xc, trk.Pc, dt, cfg)
            if np.trace(Pp[:3, :3]) > cfg.max_position_sigma_m**2:
                self.deleted += 1
                continue
            if trk.status == TrackStatus.TENTATIVE:
                trk.opp += 1
                nh = bin(trk.hist & ((1 << cfg.confirm_n) - 1)).count("1")
                if nh >= cfg.confirm_m:
                    trk.status = TrackStatus.CONFIRMED
                    self.confirmed += 1
                elif trk.opp >= cfg.confirm_n or nh + cfg.confirm_n - trk.opp < cfg.confirm_m:
                    self.deleted += 1
                    continue
            elif trk.misses >= cfg.delete_misses:
                self.deleted += 1
                continue
            keep.append(trk)
        self.live = keep

    def tracks(self, t_s: float | None = None) -> TrackSnapshot:
        live = sorted(self.live, key=lambda k: k.track_id)
        states, covs = [], []
        for k in live:
            x, P = (k.xc, k.Pc) if t_s is None else predict(0, k.xc, k.Pc, t_s - k.t, self.cfg)
            states.append(x)
            covs.append(P)
        n = len(live)
        return TrackSnapshot(
            np.array([k.track_id for k in live], np.int64), np.array([k.status for k in live], np.int8),
            np.array(states).reshape(n, 6), np.array(covs).reshape(n, 6, 6),
            np.array([k.t for k in live]), np.array([k.mode3a for k in live], np.int32),
            np.array([k.hits for k in live], np.int32))
