# cython: language_level=3
"""Fire-control kernel: threat ranking, intercept solutions, envelope and Pk, weapon-target assignment.

The model (formulas, reason codes, doctrine, solvers) is written down in hil.ext.firecontrol_types' docstring; the
numpy twin that tests compare against is hil.ext.reference.firecontrol.
"""

from libc.math cimport INFINITY, NAN, M_PI, exp, fabs, isfinite, sqrt
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

cimport numpy as cnp

from hil.ext.arrays cimport empty1, empty2, fits
from hil.ext.assignment cimport lap_rect

import numpy as np

from hil.errors import ConfigError
from hil.ext.tracker_types import TrackStatus
from hil.ext.firecontrol_types import (
    Assignments,
    Doctrine,
    FireControlConfig,
    FireControlResult,
    RefusalReason,
    Refusals,
    SLEW_ATAN_COEFFS,
    protect_radius,
)

cnp.import_array()

# RefusalReason's numbers are the kernel's R_* codes (firecontrol.pxd): one set of numbers, or no kernel
_C_REASONS = {
    "NONE": R_NONE, "INVALID_TRACK": R_INVALID_TRACK, "FRIENDLY": R_FRIENDLY, "NOT_CONFIRMED": R_NOT_CONFIRMED,
    "NO_FIRE_ZONE": R_NO_FIRE_ZONE, "NOT_A_THREAT": R_NOT_A_THREAT, "ALREADY_ENGAGED": R_ALREADY_ENGAGED,
    "SHOTS_EXHAUSTED": R_SHOTS_EXHAUSTED, "LAUNCHER_NOT_ARMED": R_LAUNCHER_NOT_ARMED,
    "LAUNCHER_NOT_READY": R_LAUNCHER_NOT_READY, "NO_ROUNDS": R_NO_ROUNDS, "NO_CHANNEL": R_NO_CHANNEL,
    "UNREACHABLE": R_UNREACHABLE, "TOF": R_TOF, "OUT_OF_RANGE": R_OUT_OF_RANGE, "ALTITUDE": R_ALTITUDE,
    "SECTOR": R_SECTOR, "TOO_LATE": R_TOO_LATE, "INTERCEPT_IN_NO_FIRE_ZONE": R_INTERCEPT_IN_NO_FIRE_ZONE,
    "LOW_PK": R_LOW_PK, "OUTRANKED": R_OUTRANKED, "NO_LAUNCHER": R_NO_LAUNCHER,
    "PROTECTED_NEAR_INTERCEPT": R_PROTECTED_NEAR_INTERCEPT, "NEUTRAL": R_NEUTRAL, "KILL_ASSESSMENT": R_KILL_ASSESSMENT,
}
if {r.name: int(r) for r in RefusalReason} != _C_REASONS:
    raise ImportError("hil.ext.firecontrol: RefusalReason (hil.ext.firecontrol_types) and the R_* codes of "
                      "firecontrol.pxd differ")

cdef double TWO_PI = 2.0 * M_PI
cdef signed char STATUS_CONFIRMED = <signed char> int(TrackStatus.CONFIRMED)
cdef double EPS = 1e-12


# --- geometry --------------------------------------------------------------------------------------------

cdef double intercept_tof(double rx, double ry, double rz, double vx, double vy, double vz,
                          double speed, double delay) noexcept nogil:
    """Time of flight tau >= 0 of an interceptor leaving after delay: the smallest root of
    |r' + v tau| = speed tau with r' = r + v delay (where the threat is at launch); INFINITY if none.
    Solving for tau rather than the intercept time keeps long delays from cancelling digits."""
    cdef double px = rx + vx * delay, py = ry + vy * delay, pz = rz + vz * delay
    cdef double u2 = speed * speed
    cdef double a = vx * vx + vy * vy + vz * vz - u2
    cdef double b = 2.0 * (px * vx + py * vy + pz * vz)
    cdef double c = px * px + py * py + pz * pz
    cdef double disc, q, t1, t2
    if c == 0.0:
        return 0.0
    if fabs(a) <= 1e-9 * u2:  # interceptor exactly as fast as the threat: the quadratic is linear
        if b < 0.0:
            return -c / b
        return INFINITY
    disc = b * b - 4.0 * a * c
    if disc < 0.0:
        return INFINITY
    # the cancellation-free pair of roots (q != 0 because c > 0)
    q = -0.5 * (b + sqrt(disc)) if b >= 0.0 else -0.5 * (b - sqrt(disc))
    t1 = q / a
    t2 = c / q
    if t1 > t2:
        t1, t2 = t2, t1
    if t1 >= 0.0:
        return t1
    if t2 >= 0.0:
        return t2
    return INFINITY


cdef double angle_between(double s, double c, const double* k) noexcept nogil:
    """atan2(s, c) for s >= 0, in [0, pi], from the model's polynomial arctangent."""
    cdef double ac = fabs(c), t, t2, a
    cdef int swap = s > ac
    if s == 0.0 and ac == 0.0:
        return 0.0
    t = ac / s if swap else s / ac
    t2 = t * t
    a = t * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * (k[3] + t2 * (k[4] + t2 * (k[5] + t2 * (k[6] + t2 * (
        k[7] + t2 * (k[8] + t2 * k[9])))))))))
    if swap:
        a = 0.5 * M_PI - a
    if c < 0.0:
        a = M_PI - a
    return a


cdef int in_zone(double x, double y, double z, const Zone* zones, int nz) noexcept nogil:
    cdef int k
    cdef double dx, dy
    for k in range(nz):
        dx = x - zones[k].cx
        dy = y - zones[k].cy
        if dx * dx + dy * dy <= zones[k].r2 and zones[k].zmin <= z <= zones[k].zmax:
            return 1
    return 0


cdef inline double clamp01(double s) noexcept nogil:
    return 0.0 if s < 0.0 else (1.0 if s > 1.0 else s)


cdef int path_in_zone(const double* a, const double* b, double half, double widen, const Zone* zones,
                      int nz) noexcept nogil:
    """1 if the segment a -> b (half: at least half its length) comes within widen of a zone: it meets the
    zone's cylinder grown by widen in radius and at both ends (a little more than the segment's
    widen-neighbourhood at the rims: conservative)."""
    cdef int k
    cdef double dx = b[0] - a[0], dy = b[1] - a[1], dz = b[2] - a[2]
    cdef double mx = 0.5 * (a[0] + b[0]), my = 0.5 * (a[1] + b[1])
    cdef double lo, hi, s0, s1, hx, hy, hh, s, ex, ey, r
    for k in range(nz):
        # cheap bound first: the segment lies within half of its midpoint
        ex = mx - zones[k].cx
        ey = my - zones[k].cy
        r = zones[k].r + widen + half + 1.0
        if ex * ex + ey * ey > r * r:
            continue
        # the part of the segment inside the zone's height band, as s in [lo, hi]
        if fabs(dz) > EPS:
            s0 = (zones[k].zmin - widen - a[2]) / dz
            s1 = (zones[k].zmax + widen - a[2]) / dz
            if s0 > s1:
                s0, s1 = s1, s0
            lo = s0 if s0 > 0.0 else 0.0
            hi = s1 if s1 < 1.0 else 1.0
            if lo > hi:
                continue
        elif zones[k].zmin - widen <= a[2] <= zones[k].zmax + widen:
            lo = 0.0
            hi = 1.0
        else:
            continue
        # the horizontal distance to the centre is smallest at s (a quadratic in s), clamped into [lo, hi]
        hx = a[0] - zones[k].cx
        hy = a[1] - zones[k].cy
        hh = dx * dx + dy * dy
        s = -(hx * dx + hy * dy) / hh if hh > EPS else lo
        if s < lo:
            s = lo
        elif s > hi:
            s = hi
        ex = hx + dx * s
        ey = hy + dy * s
        r = zones[k].r + widen
        if ex * ex + ey * ey <= r * r:
            return 1
    return 0


cdef double seg_seg_dist2(const double* p1, const double* d1, const double* p2, const double* d2) noexcept nogil:
    """Squared distance between the segments p1 + s d1 and p2 + t d2, s, t in [0, 1] (Ericson, Real-Time
    Collision Detection, 5.1.9)."""
    cdef double rx = p1[0] - p2[0], ry = p1[1] - p2[1], rz = p1[2] - p2[2]
    cdef double a = d1[0] * d1[0] + d1[1] * d1[1] + d1[2] * d1[2]
    cdef double e = d2[0] * d2[0] + d2[1] * d2[1] + d2[2] * d2[2]
    cdef double f = d2[0] * rx + d2[1] * ry + d2[2] * rz
    cdef double b, c, den, s = 0.0, t = 0.0, x, y, z
    if a <= EPS and e <= EPS:
        pass
    elif a <= EPS:
        t = clamp01(f / e)
    else:
        c = d1[0] * rx + d1[1] * ry + d1[2] * rz
        if e <= EPS:
            s = clamp01(-c / a)
        else:
            b = d1[0] * d2[0] + d1[1] * d2[1] + d1[2] * d2[2]
            den = a * e - b * b
            s = clamp01((b * f - c * e) / den) if den > 0.0 else 0.0
            t = (b * s + f) / e
            if t < 0.0:
                t = 0.0
                s = clamp01(-c / a)
            elif t > 1.0:
                t = 1.0
                s = clamp01((b - c) / a)
    x = rx + d1[0] * s - d2[0] * t
    y = ry + d1[1] * s - d2[1] * t
    z = rz + d1[2] * s - d2[2] * t
    return x * x + y * y + z * z


cdef inline void no_threat(double* score, double* t_cpa, double* d_cpa, double* t_asset, int* asset) noexcept nogil:
    """A track that threatens no asset: score 0, no closest approach, never reaching one."""
    score[0] = 0.0
    t_cpa[0] = NAN
    d_cpa[0] = NAN
    t_asset[0] = INFINITY
    asset[0] = -1


cdef void threat_of(const double* x, const Asset* assets, int na, const Params* p,
                    double* score, double* t_cpa, double* d_cpa, double* t_asset, int* asset) noexcept nogil:
    """Score of track state x against its most threatened asset (see hil.ext.firecontrol_types)."""
    cdef int a
    cdef double rx, ry, rz, rr, rv, vv, tc, dx, dy, dz, d, R, ta, disc, b, c, root, close, t_go, s
    cdef double vx = x[3], vy = x[4], vz = x[5]
    vv = vx * vx + vy * vy + vz * vz
    no_threat(score, t_cpa, d_cpa, t_asset, asset)
    if na == 0:
        score[0] = 1.0
        return
    for a in range(na):
        rx = x[0] - assets[a].x
        ry = x[1] - assets[a].y
        rz = x[2] - assets[a].z
        rr = rx * rx + ry * ry + rz * rz
        rv = rx * vx + ry * vy + rz * vz
        tc = -rv / vv if vv > EPS else 0.0
        if tc < 0.0:
            tc = 0.0
        elif tc > p.horizon:
            tc = p.horizon
        dx = rx + vx * tc
        dy = ry + vy * tc
        dz = rz + vz * tc
        d = sqrt(dx * dx + dy * dy + dz * dz)
        R = assets[a].radius
        ta = INFINITY
        if rr <= R * R:
            ta = 0.0
        elif vv > EPS:
            b = 2.0 * rv
            c = rr - R * R
            disc = b * b - 4.0 * vv * c
            if disc >= 0.0 and b < 0.0:
                root = (-b - sqrt(disc)) / (2.0 * vv)  # entry (the smaller root; c > 0 so both roots share a sign)
                if root <= p.horizon:
                    ta = root
        close = 1.0 - (d - R) / ((p.miss_scale - 1.0) * R)
        if close > 1.0:
            close = 1.0
        if close <= 0.0:
            continue
        t_go = ta if isfinite(ta) else tc
        s = assets[a].value * close * p.t_ref / (p.t_ref + t_go)
        if s > score[0]:
            score[0] = s
            t_cpa[0] = tc
            d_cpa[0] = d
            t_asset[0] = ta
            asset[0] = a


cdef int protected_near(const Launcher* la, double T, double dx, double dy, double dz, double ux, double uy,
                        double uz, double t_back, double h, double sig, double extra, const Params* p,
                        const Protect* pr) noexcept nogil:
    """The row of the first protected track (of pr.near, in input order) that comes within the safety radius
    of the seeker's basket axis during its search, or -1. In the round's frame the protected track moves in
    a straight line (both fly at constant velocity), so "at some time of the window, within rho of the axis
    from the round to S ahead of it" is the distance between two segments. aim - launcher = (dx, dy, dz),
    u the unit flight direction, the window from T - t_back to T + h (s from now), sig the threat's sigma."""
    cdef double S = la.seeker_range
    cdef double ax = la.x + dx, ay = la.y + dy, az = la.z + dz
    cdef double t_end = T + h, sj, rho, bound, vv, along, px, py, pz, far = 2.0 * S
    cdef double e[3]
    cdef double w[3]
    cdef double ya[3]
    cdef double dy_[3]
    cdef double zero[3]
    cdef double axis[3]
    cdef int q, k, j
    cdef const double* xj
    zero[0] = zero[1] = zero[2] = 0.0
    axis[0] = S * ux
    axis[1] = S * uy
    axis[2] = S * uz
    for q in range(pr.n_near):
        k = pr.near[q]
        j = pr.index[k]
        xj = pr.st + 6 * j
        # where the protected track is at the intercept time, relative to the aim
        e[0] = xj[0] + xj[3] * T - ax
        e[1] = xj[1] + xj[4] * T - ay
        e[2] = xj[2] + xj[5] * T - az
        # cheap bound first: over the window it moves at most |v| h from e, and the axis stays on the line of
        # fire between back before the aim and 2 S past it (sigma_end[k] bounds its sigma at t_end)
        along = e[0] * ux + e[1] * uy + e[2] * uz
        if along < -t_back * la.speed:
            along = -t_back * la.speed
        elif along > far:
            along = far
        px = e[0] - along * ux
        py = e[1] - along * uy
        pz = e[2] - along * uz
        bound = (la.protect_r + extra + p.sigmas * (sig + pr.sigma_end[k]) + pr.speed[k] * (p.timing + h)
                 + 1.0)
        if px * px + py * py + pz * pz > bound * bound:
            continue
        vv = pr.vel_var[j] if pr.vel_var != NULL else p.vel_var
        sj = sqrt(pr.pos_var[j] + vv * t_end * t_end)
        rho = la.protect_r + extra + p.sigmas * (sig + sj) + pr.speed[k] * p.timing
        w[0] = xj[3] - la.speed * ux  # its velocity relative to the round
        w[1] = xj[4] - la.speed * uy
        w[2] = xj[5] - la.speed * uz
        ya[0] = e[0] - w[0] * t_back
        ya[1] = e[1] - w[1] * t_back
        ya[2] = e[2] - w[2] * t_back
        dy_[0] = w[0] * (t_back + h)
        dy_[1] = w[1] * (t_back + h)
        dy_[2] = w[2] * (t_back + h)
        if seg_seg_dist2(ya, dy_, zero, axis) <= rho * rho:
            return j
    return -1


cdef int solve_pair(const Launcher* la, const double* x, double f_track, double speed, double t_asset,
                    double pos_var, double vel_var, const Zone* zones, int nz, const Params* p, const Protect* pr,
                    double* t_out, double* tof_out, double* pk_out, int* prot_out) noexcept nogil:
    """Intercept time, time of flight and pk of one launcher on one track; returns 0 or a refusal code.
    f_track (the track-quality factor of pk) and speed (|v|) are per track, computed once by the caller;
    pos_var and vel_var its position and velocity variances; pr the protected tracks near it (pr.near).
    prot_out gets the protected track's row on PROTECTED_NEAR_INTERCEPT."""
    cdef double rx = x[0] - la.x, ry = x[1] - la.y, rz = x[2] - la.z
    cdef double vx = x[3], vy = x[4], vz = x[5]
    cdef double delay = la.delay, T, dx, dy, dz, rng, ground, tof, pk, ft
    cdef double ux, uy, uz, extra, back, h, t_end, sig
    cdef double a[3]
    cdef double b[3]
    cdef int k
    t_out[0] = NAN
    tof_out[0] = NAN
    pk_out[0] = NAN
    prot_out[0] = -1
    tof = intercept_tof(rx, ry, rz, vx, vy, vz, la.speed, delay)
    if not isfinite(tof):
        return R_UNREACHABLE  # a longer delay (slewing) cannot make it reachable
    if la.slew_rate > 0.0:
        for k in range(p.slew_iters):
            T = delay + tof
            dx = rx + vx * T
            dy = ry + vy * T
            # angle between the intercept bearing and the rest azimuth, in [0, pi], without wrapping
            delay = la.delay + angle_between(fabs(dx * la.cos_c - dy * la.sin_c), dx * la.sin_c + dy * la.cos_c,
                                             p.atan_c) / la.slew_rate
            tof = intercept_tof(rx, ry, rz, vx, vy, vz, la.speed, delay)
            if not isfinite(tof):
                return R_UNREACHABLE
    T = delay + tof
    t_out[0] = T
    tof_out[0] = tof
    if tof > la.max_tof:
        return R_TOF
    dx = rx + vx * delay + vx * tof  # intercept point relative to the launcher, as the root was solved
    dy = ry + vy * delay + vy * tof
    dz = rz + vz * delay + vz * tof
    rng = sqrt(dx * dx + dy * dy + dz * dz)
    if rng < la.min_r or rng > la.max_r:
        return R_OUT_OF_RANGE
    if la.z + dz < la.min_alt or la.z + dz > la.max_alt:
        return R_ALTITUDE
    if la.sector_half < M_PI:
        ground = sqrt(dx * dx + dy * dy)
        if dx * la.sin_c + dy * la.cos_c < ground * la.cos_half:
            return R_SECTOR
    if T >= t_asset:
        return R_TOO_LATE
    # the terminal path (hil.ext.firecontrol_types docstring): the seeker searches from `back` before the aim (S, or
    # from launch if the aim is nearer) until S past it, along the launcher -> aim line
    if rng > EPS:
        ux = dx / rng
        uy = dy / rng
        uz = dz / rng
        extra = 0.0
    else:  # no direction to fly: the basket may point anywhere, so everything within S of the aim counts
        ux = uy = uz = 0.0
        extra = la.seeker_range
    back = la.seeker_range if la.seeker_range < rng else rng
    h = la.seeker_range / la.speed
    t_end = T + h
    sig = sqrt(pos_var + vel_var * t_end * t_end)
    a[0] = la.x + dx - back * ux
    a[1] = la.y + dy - back * uy
    a[2] = la.z + dz - back * uz
    b[0] = la.x + dx + la.seeker_range * ux
    b[1] = la.y + dy + la.seeker_range * uy
    b[2] = la.z + dz + la.seeker_range * uz
    if path_in_zone(a, b, 0.5 * (back + la.seeker_range), p.sigmas * sig + la.lethal + extra, zones, nz):
        return R_INTERCEPT_IN_NO_FIRE_ZONE
    if pr.n_near > 0:
        k = protected_near(la, T, dx, dy, dz, ux, uy, uz, back / la.speed, h, sig, extra, p, pr)
        if k >= 0:
            prot_out[0] = k
            return R_PROTECTED_NEAR_INTERCEPT
    # pk model (hil.ext.firecontrol_types docstring)
    pk = la.pk_base * f_track
    if speed > EPS and rng > EPS:  # aspect: cos a = -(d . v) / (|d| |v|)
        pk *= 1.0 - p.aspect_pen * (1.0 + (dx * vx + dy * vy + dz * vz) / (rng * speed)) * 0.5
    ft = tof / la.max_tof
    pk *= 1.0 - p.tof_pen * ft * ft
    pk_out[0] = pk
    if pk < p.min_pk or pk <= 0.0:
        return R_LOW_PK
    return R_NONE


# --- assignment -------------------------------------------------------------------------------------------

cdef int greedy_mmr(int n_l, int m, const int* cand, const double* score, const double* pk,
                    const signed char* code, int* left, int* cap, double* q, int* out_t, int* out_l) noexcept nogil:
    """Maximum marginal return: repeatedly give the shot with the largest gain score * q * pk (q: the
    track's chance of surviving the shots already given). Returns the number of shots."""
    cdef int k = 0, c, l, i, bc, bl
    cdef double best, base, g
    while True:
        best = 0.0
        bc = -1
        bl = -1
        for c in range(m):
            if left[c] <= 0:
                continue
            i = cand[c]
            base = score[i] * q[c]
            if base <= best:
                continue
            for l in range(n_l):
                if cap[l] > 0 and code[i * n_l + l] == R_NONE:
                    g = base * pk[i * n_l + l]
                    if g > best:
                        best = g
                        bc = c
                        bl = l
        if bc < 0:
            return k
        out_t[k] = cand[bc]
        out_l[k] = bl
        k += 1
        q[bc] *= 1.0 - pk[cand[bc] * n_l + bl]
        left[bc] -= 1
        cap[bl] -= 1


cdef struct BnB:
    int n_l, n_slots
    const double* score
    const double* pk
    const int* slot_l        # launcher of each slot (slots of one launcher are consecutive)
    const int* next_l_slot   # first slot of the next launcher
    const int* lcand         # per launcher: candidate rows (indices into cand) sorted by value, stride m
    const int* n_lcand
    const int* cand
    int m
    const double* suffix     # upper bound on what slots s.. can still add
    double* q
    int* left
    int* choice
    int* best_choice
    double best
    long long nodes, budget
    int aborted


cdef void bnb_rec(BnB* b, int s, int pos_min, double cur) noexcept nogil:
    cdef int l, start, p, c, i, t, nxt
    cdef double old, g, pkv
    if b.nodes >= b.budget:
        b.aborted = 1
        return
    b.nodes += 1
    if cur > b.best * (1.0 + 1e-12) + 1e-15:
        b.best = cur
        for t in range(b.n_slots):
            b.best_choice[t] = b.choice[t] if t < s else -1
    if s >= b.n_slots or cur + b.suffix[s] <= b.best * (1.0 + 1e-12) + 1e-15:
        return
    l = b.slot_l[s]
    start = pos_min if s > 0 and b.slot_l[s - 1] == l else 0  # same launcher: no reordered duplicates
    for p in range(start, b.n_lcand[l]):
        c = b.lcand[l * b.m + p]
        if b.left[c] <= 0:
            continue
        i = b.cand[c]
        pkv = b.pk[i * b.n_l + l]
        g = b.score[i] * b.q[c] * pkv
        old = b.q[c]
        b.q[c] = old * (1.0 - pkv)
        b.left[c] -= 1
        b.choice[s] = c
        bnb_rec(b, s + 1, p, cur + g)
        b.q[c] = old
        b.left[c] += 1
        if b.aborted:
            return
    # leave this slot (and so the rest of this launcher's slots) unused
    nxt = b.next_l_slot[s]
    for t in range(s, nxt):
        b.choice[t] = -1
    bnb_rec(b, nxt, 0, cur)


cdef char* scratch_reserve(Scratch* w, Py_ssize_t nbytes) noexcept nogil:
    """w's block, grown to at least nbytes (its old contents are not kept); NULL if out of memory."""
    cdef char* q
    if nbytes > w.cap:
        q = <char*> realloc(w.p, nbytes + nbytes // 2 + 256)
        if q == NULL:
            return NULL
        w.p = q
        w.cap = nbytes + nbytes // 2 + 256
    return w.p


cdef int lap_shots(Scratch* w, int n_l, int m, int n_slots, const int* cand, const int* cap, const double* score,
                   const double* pk, const signed char* code, int* out_t, int* out_l) noexcept nogil:
    """One shot per candidate track: lap_rect on candidates x launcher slots (m, n_slots > 0). Returns the
    number of shots, -1 if the assignment failed, -2 if scratch could not be had."""
    cdef int transpose = m > n_slots
    cdef int nr = n_slots if transpose else m
    cdef int nc = m if transpose else n_slots
    cdef Py_ssize_t n_dbl = <Py_ssize_t> nr * nc + nr + 2 * nc
    cdef Py_ssize_t n_int = n_slots + nr + 3 * nc
    cdef char* base = scratch_reserve(w, n_dbl * sizeof(double) + n_int * sizeof(int) + nr + nc)
    cdef double* cost
    cdef double* u
    cdef double* v
    cdef double* shortest
    cdef int* slot_l
    cdef int* col4row
    cdef int* row4col
    cdef int* path
    cdef int* remaining
    cdef char* row_seen
    cdef char* col_seen
    cdef int c, s, i, l, r, k = 0
    if base == NULL:
        return -2
    cost = <double*> base
    u = cost + <Py_ssize_t> nr * nc
    v = u + nr
    shortest = v + nc
    slot_l = <int*> (shortest + nc)
    col4row = slot_l + n_slots
    row4col = col4row + nr
    path = row4col + nc
    remaining = path + nc
    row_seen = <char*> (remaining + nc)
    col_seen = row_seen + nr
    s = 0
    for l in range(n_l):  # slots: each launcher's shots, launcher by launcher
        for c in range(cap[l]):
            slot_l[s] = l
            s += 1
    # an infeasible pair costs 0, the same as leaving both sides unassigned
    memset(cost, 0, <Py_ssize_t> nr * nc * sizeof(double))
    for c in range(m):
        i = cand[c]
        for s in range(n_slots):
            l = slot_l[s]
            if code[i * n_l + l] == R_NONE:
                if transpose:
                    cost[s * nc + c] = -score[i] * pk[i * n_l + l]
                else:
                    cost[c * nc + s] = -score[i] * pk[i * n_l + l]
    if lap_rect(nr, nc, cost, col4row, row4col, u, v, shortest, path, remaining, row_seen, col_seen) != 0:
        return -1
    for r in range(nr):
        if transpose:
            s = r
            c = col4row[r]
        else:
            c = r
            s = col4row[r]
        i = cand[c]
        l = slot_l[s]
        if code[i * n_l + l] == R_NONE:
            out_t[k] = i
            out_l[k] = l
            k += 1
    return k


cdef int greedy_shots(Scratch* w, int n_l, int m, const int* cand, const int* left, const int* cap,
                      const double* score, const double* pk, const signed char* code, int* out_t,
                      int* out_l) noexcept nogil:
    """greedy_mmr on copies of the shots left per candidate (left is per track row) and of the launchers'
    capacity; returns the number of shots, -2 if scratch could not be had."""
    cdef char* base = scratch_reserve(w, m * sizeof(double) + (m + n_l) * sizeof(int))
    cdef double* q
    cdef int* left_c
    cdef int* cap_c
    cdef int c
    if base == NULL:
        return -2
    q = <double*> base
    left_c = <int*> (q + m)
    cap_c = left_c + m
    for c in range(m):
        q[c] = 1.0
        left_c[c] = left[cand[c]]
    memcpy(cap_c, cap, n_l * sizeof(int))
    return greedy_mmr(n_l, m, cand, score, pk, code, left_c, cap_c, q, out_t, out_l)


cdef tuple _assign(Scratch* w, str solver, int n_l, int m, int n_slots, cand_a, left_a, cap_a, score_a, pk_a,
                   code_a, out_t_a, out_l_a, long long budget):
    """Run one solver on the candidates (rows of the pair arrays: C-contiguous int32 cand, left, cap, out_t,
    out_l, float64 score and pk, int8 code); returns (shots, proven optimal, B&B nodes)."""
    if m == 0 or n_slots == 0:
        return 0, True, 0
    cdef const int* cand = <const int*> cnp.PyArray_DATA(cand_a)
    cdef const int* left = <const int*> cnp.PyArray_DATA(left_a)
    cdef const int* cap = <const int*> cnp.PyArray_DATA(cap_a)
    cdef const double* score = <const double*> cnp.PyArray_DATA(score_a)
    cdef const double* pk = <const double*> cnp.PyArray_DATA(pk_a)
    cdef const signed char* code = <const signed char*> cnp.PyArray_DATA(code_a)
    cdef int* out_t = <int*> cnp.PyArray_DATA(out_t_a)
    cdef int* out_l = <int*> cnp.PyArray_DATA(out_l_a)
    cdef int k, c
    if solver == "lap":
        for c in range(m):
            if left[cand[c]] > 1:
                raise ValueError("the lap solver gives one shot per track: use greedy or exact for salvos")
        with nogil:
            k = lap_shots(w, n_l, m, n_slots, cand, cap, score, pk, code, out_t, out_l)
        if k == -1:
            raise RuntimeError("linear assignment failed")
    else:
        with nogil:
            k = greedy_shots(w, n_l, m, cand, left, cap, score, pk, code, out_t, out_l)
    if k == -2:
        raise MemoryError("fire-control scratch allocation failed")
    if solver == "lap":
        return k, True, 0
    if solver == "greedy":
        return k, False, 0
    return _exact(n_l, m, n_slots, cand_a, cap_a, left_a[cand_a], score_a, pk_a, code_a, out_t_a, out_l_a, k, budget)

def _exact(int n_l, int m, int n_slots, int[::1] cand, cap_a, left_a, double[::1] score, double[:, ::1] pk,
           signed char[:, ::1] code, int[::1] out_t, int[::1] out_l, int k_greedy, long long budget):
    """Branch and bound over launcher slots, starting from the greedy answer in out_t/out_l."""
    cap_np = np.asarray(cap_a, dtype=np.int32)
    slot_l_a = np.repeat(np.arange(n_l, dtype=np.int32), cap_np)
    ends = np.cumsum(cap_np).astype(np.int32)
    next_a = ends[slot_l_a] if n_slots else np.empty(0, np.int32)
    cand_np = np.asarray(cand)
    val = np.asarray(score)[cand_np, None] * np.asarray(pk)[cand_np]  # (m, n_l)
    ok = np.asarray(code)[cand_np] == 0
    val = np.where(ok, val, -1.0)
    lcand_a = np.full((n_l, m), -1, np.int32)
    n_lcand_a = np.zeros(n_l, np.int32)
    best_l = np.zeros(n_l)
    for l in range(n_l):
        rows = np.nonzero(ok[:, l])[0]
        rows = rows[np.argsort(-val[rows, l], kind="stable")]
        lcand_a[l, :len(rows)] = rows
        n_lcand_a[l] = len(rows)
        best_l[l] = val[rows[0], l] if len(rows) else 0.0
    suffix_a = np.concatenate([np.cumsum(best_l[slot_l_a][::-1])[::-1], [0.0]])
    # incumbent: the greedy answer
    q_a = np.ones(m)
    pos = {int(i): c for c, i in enumerate(cand_np.tolist())}
    best = 0.0
    best_choice_a = np.full(max(n_slots, 1), -1, np.int32)
    used = np.zeros(n_l, np.int32)
    first_slot = np.concatenate([[0], ends[:-1]]).astype(np.int32)
    for j in range(k_greedy):
        c, l = pos[int(out_t[j])], int(out_l[j])
        best += score[cand[c]] * q_a[c] * pk[cand[c], l]
        q_a[c] *= 1.0 - pk[cand[c], l]
        best_choice_a[first_slot[l] + used[l]] = c
        used[l] += 1
    q_a[:] = 1.0
    cdef int[::1] slot_l = slot_l_a, next_l = next_a, lcand = lcand_a.reshape(-1), n_lcand = n_lcand_a
    cdef double[::1] suffix = suffix_a, q = q_a
    cdef int[::1] left = np.ascontiguousarray(left_a, dtype=np.int32)
    cdef int[::1] choice = np.full(max(n_slots, 1), -1, np.int32), best_choice = best_choice_a
    cdef BnB b
    b.n_l = n_l
    b.n_slots = n_slots
    b.score = &score[0]
    b.pk = &pk[0, 0]
    b.slot_l = &slot_l[0]
    b.next_l_slot = &next_l[0]
    b.lcand = &lcand[0]
    b.n_lcand = &n_lcand[0]
    b.cand = &cand[0]
    b.m = m
    b.suffix = &suffix[0]
    b.q = &q[0]
    b.left = &left[0]
    b.choice = &choice[0]
    b.best_choice = &best_choice[0]
    b.best = best
    b.nodes = 0
    b.budget = budget
    b.aborted = 0
    cdef int s, k = 0
    with nogil:
        bnb_rec(&b, 0, 0, 0.0)
        for s in range(n_slots):
            if b.best_choice[s] >= 0:
                out_t[k] = cand[b.best_choice[s]]
                out_l[k] = b.slot_l[s]
                k += 1
    return k, not b.aborted, b.nodes


def solve_assignment(score, pk, feasible, shots_left, capacity, str solver="exact", long long node_budget=200_000):
    """One solver on a bare problem: maximise sum_i score_i (1 - prod(1 - pk_il)) over the shots given, with
    at most shots_left[i] shots per track and capacity[l] per launcher, only on feasible pairs.
    Returns (track_index, launcher_index, proven optimal, branch-and-bound nodes)."""
    sc = np.ascontiguousarray(score, dtype=np.float64)
    pk_a = np.ascontiguousarray(pk, dtype=np.float64)
    n = sc.shape[0]
    n_l = pk_a.shape[1] if pk_a.ndim == 2 else -1
    if pk_a.shape != (n, n_l) or np.shape(feasible) != (n, n_l):
        raise ValueError("pk and feasible must be (n_tracks, n_launchers)")
    code = np.where(np.asarray(feasible, bool), 0, R_LOW_PK).astype(np.int8)
    left = np.ascontiguousarray(shots_left, dtype=np.int32)
    cap = np.ascontiguousarray(capacity, dtype=np.int32)
    if left.shape != (n,) or cap.shape != (n_l,) or np.any(left < 0) or np.any(cap < 0):
        raise ValueError("shots_left (n,) and capacity (n_launchers,) must be >= 0")
    if solver not in ("lap", "greedy", "exact"):
        raise ValueError(f"unknown solver {solver!r}")
    code[left == 0] = R_SHOTS_EXHAUSTED
    cand = np.nonzero((code == 0).any(axis=1))[0].astype(np.int32) if n_l else np.empty(0, np.int32)
    n_slots = int(cap.sum())
    out_t = np.empty(max(n_slots, 1), np.int32)
    out_l = np.empty(max(n_slots, 1), np.int32)
    cdef Scratch w
    w.p = NULL
    w.cap = 0
    try:
        k, optimal, nodes = _assign(&w, solver, n_l, cand.shape[0], n_slots, cand, left, cap, sc, pk_a, code, out_t,
                                    out_l, node_budget)
    finally:
        free(w.p)
    return out_t[:k].copy(), out_l[:k].copy(), optimal, nodes


# --- the Python object ------------------------------------------------------------------------------------

cdef object _as_array(object x, int typenum, object dtype, int ndim):
    """x itself when it already fits (hil.ext.arrays.fits: the host passes such arrays every evaluation), else
    np.ascontiguousarray of it (flattened when ndim is 1)."""
    if fits(x, typenum, ndim):
        return x
    a = np.ascontiguousarray(x, dtype=dtype)
    return a.reshape(-1) if ndim == 1 else a


cdef object _vec(object x, int typenum, object dtype, Py_ssize_t n, str name):
    a = _as_array(x, typenum, dtype, 1)
    if cnp.PyArray_DIM(a, 0) != n:
        raise ValueError(f"{name} must have {n} entries, got {cnp.PyArray_DIM(a, 0)}")
    return a


cdef object _shots(int k, out_t, out_l, st, score, pair_code, pair_pk, pair_t, pair_tof):
    """The first k shots of out_t/out_l as Assignments. pair_code becomes the final pair reasons: the chosen
    pairs NONE, feasible pairs left unused OUTRANKED."""
    cdef Py_ssize_t n_l = cnp.PyArray_DIM(pair_code, 1)
    cdef Py_ssize_t n_pairs = cnp.PyArray_DIM(pair_code, 0) * n_l
    ti = empty1(k, cnp.NPY_INT32)
    li = empty1(k, cnp.NPY_INT32)
    point = empty2(k, 3, cnp.NPY_FLOAT64)
    tof = empty1(k, cnp.NPY_FLOAT64)
    pk = empty1(k, cnp.NPY_FLOAT64)
    value = empty1(k, cnp.NPY_FLOAT64)
    cdef const int* ot = <const int*> cnp.PyArray_DATA(out_t)
    cdef const int* ol = <const int*> cnp.PyArray_DATA(out_l)
    cdef const double* x = <const double*> cnp.PyArray_DATA(st)
    cdef const double* sc = <const double*> cnp.PyArray_DATA(score)
    cdef signed char* code = <signed char*> cnp.PyArray_DATA(pair_code)
    cdef const double* ppk = <const double*> cnp.PyArray_DATA(pair_pk)
    cdef const double* pt = <const double*> cnp.PyArray_DATA(pair_t)
    cdef const double* ptof = <const double*> cnp.PyArray_DATA(pair_tof)
    cdef int* ti_p = <int*> cnp.PyArray_DATA(ti)
    cdef int* li_p = <int*> cnp.PyArray_DATA(li)
    cdef double* point_p = <double*> cnp.PyArray_DATA(point)
    cdef double* tof_p = <double*> cnp.PyArray_DATA(tof)
    cdef double* pk_p = <double*> cnp.PyArray_DATA(pk)
    cdef double* value_p = <double*> cnp.PyArray_DATA(value)
    cdef Py_ssize_t q, j, i, e, a
    with nogil:
        for q in range(n_pairs):
            if code[q] == R_NONE:
                code[q] = R_OUTRANKED
        for j in range(k):
            i = ot[j]
            e = i * n_l + ol[j]
            code[e] = R_NONE
            ti_p[j] = ot[j]
            li_p[j] = ol[j]
            for a in range(3):  # where the threat is at the intercept time
                point_p[3 * j + a] = x[6 * i + a] + x[6 * i + 3 + a] * pt[e]
            tof_p[j] = ptof[e]
            pk_p[j] = ppk[e]
            value_p[j] = sc[i] * pk_p[j]
    return Assignments(track_index=ti, launcher_index=li, intercept_enu=point, time_of_flight_s=tof, pk=pk,
                       score=value)


def refusals_of(track_reason, pair_reason, shot_tracks, pair_protected=None):
    """hil.ext.firecontrol_types.refusals_of (the numpy twin, tests hold the two to one answer) in one pass: the
    track's own reason for every refused track, then each launcher's reason for every eligible track left unfired
    (NO_LAUNCHER when there are no launchers at all), each with the protected track's row (-1: none). At 300
    targets the numpy version took 45 µs of bookkeeping per decision warm, and 150 µs in the loop."""
    tr = _as_array(track_reason, cnp.NPY_INT8, np.int8, 1)
    pr = _as_array(pair_reason, cnp.NPY_INT8, np.int8, 2)
    shots = _as_array(shot_tracks, cnp.NPY_INT32, np.int32, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(tr, 0), n_l, n_shots = cnp.PyArray_DIM(shots, 0)
    if cnp.PyArray_NDIM(pr) != 2 or cnp.PyArray_DIM(pr, 0) != n:
        raise ValueError(f"pair_reason must be ({n}, launchers), got {np.shape(pair_reason)}")
    n_l = cnp.PyArray_DIM(pr, 1)
    pp = None
    if pair_protected is not None:
        pp = _as_array(pair_protected, cnp.NPY_INT32, np.int32, 2)
        if cnp.PyArray_NDIM(pp) != 2 or cnp.PyArray_DIM(pp, 0) != n or cnp.PyArray_DIM(pp, 1) != n_l:
            raise ValueError(f"pair_protected must be ({n}, {n_l}), got {np.shape(pair_protected)}")
    cdef const signed char* tr_p = <const signed char*> cnp.PyArray_DATA(tr)
    cdef const signed char* pr_p = <const signed char*> cnp.PyArray_DATA(pr)
    cdef const int* shot_p = <const int*> cnp.PyArray_DATA(shots)
    cdef const int* pp_p = NULL if pp is None else <const int*> cnp.PyArray_DATA(pp)
    cdef Py_ssize_t i, j, k = 0, n_track = 0, n_open = 0
    for j in range(n_shots):
        if shot_p[j] < 0 or shot_p[j] >= n:
            raise ValueError(f"shot_tracks names row {shot_p[j]} of {n} tracks")
    assigned_a = np.zeros(n, np.bool_)
    cdef cnp.npy_bool* assigned = <cnp.npy_bool*> cnp.PyArray_DATA(assigned_a)
    with nogil:
        for j in range(n_shots):
            assigned[shot_p[j]] = True
        for i in range(n):
            if tr_p[i] != R_NONE:
                n_track += 1
            elif not assigned[i]:
                n_open += 1
    cdef Py_ssize_t per_open = n_l if n_l else 1, total = n_track + n_open * per_open
    ti_a, li_a = empty1(total, cnp.NPY_INT32), empty1(total, cnp.NPY_INT32)
    why_a, prot_a = empty1(total, cnp.NPY_INT8), empty1(total, cnp.NPY_INT32)
    cdef int* ti = <int*> cnp.PyArray_DATA(ti_a)
    cdef int* li = <int*> cnp.PyArray_DATA(li_a)
    cdef signed char* why = <signed char*> cnp.PyArray_DATA(why_a)
    cdef int* prot = <int*> cnp.PyArray_DATA(prot_a)
    with nogil:
        for i in range(n):
            if tr_p[i] != R_NONE:
                ti[k], li[k], why[k], prot[k] = <int> i, -1, tr_p[i], -1
                k += 1
        for i in range(n):
            if tr_p[i] != R_NONE or assigned[i]:
                continue
            if n_l == 0:
                ti[k], li[k], why[k], prot[k] = <int> i, -1, R_NO_LAUNCHER, -1
                k += 1
                continue
            for j in range(n_l):
                ti[k], li[k], why[k] = <int> i, <int> j, pr_p[i * n_l + j]
                prot[k] = -1 if pp_p == NULL else pp_p[i * n_l + j]
                k += 1
    return Refusals(track_index=ti_a, launcher_index=li_a, reason=why_a, protected_index=prot_a)


cdef class FireControl:
    """Threat evaluation and weapon-target assignment for a fixed set of assets, launchers and no-fire zones."""

    cdef Launcher* launchers
    cdef Asset* assets
    cdef Zone* zones
    cdef int n_l, n_a, n_z
    cdef Params p
    cdef signed char* lcode  # each launcher's refusal code in the evaluation under way
    cdef Scratch work  # the assignment solvers' working memory
    cdef readonly object config
    cdef readonly tuple launcher_specs, asset_specs, zone_specs
    cdef readonly tuple launcher_names, asset_names
    cdef public long long last_nodes

    def __cinit__(self):
        self.launchers = NULL
        self.assets = NULL
        self.zones = NULL
        self.lcode = NULL
        self.work.p = NULL
        self.work.cap = 0

    def __init__(self, config=None, assets=(), launchers=(), no_fire_zones=()):
        cdef int k
        cdef Launcher* la
        if config is None:
            config = FireControlConfig()
        if not isinstance(config, FireControlConfig):
            raise ConfigError("fire control", "config", "must be a FireControlConfig")
        self.config = config
        self.asset_specs = tuple(assets)
        self.launcher_specs = tuple(launchers)
        self.zone_specs = tuple(no_fire_zones)
        self.launcher_names = tuple(s.name for s in self.launcher_specs)
        self.asset_names = tuple(s.name for s in self.asset_specs)
        self.n_l = len(self.launcher_specs)
        self.n_a = len(self.asset_specs)
        self.n_z = len(self.zone_specs)
        self.launchers = <Launcher*> malloc(max(self.n_l, 1) * sizeof(Launcher))
        self.assets = <Asset*> malloc(max(self.n_a, 1) * sizeof(Asset))
        self.zones = <Zone*> malloc(max(self.n_z, 1) * sizeof(Zone))
        self.lcode = <signed char*> malloc(max(self.n_l, 1) * sizeof(signed char))
        if self.launchers == NULL or self.assets == NULL or self.zones == NULL or self.lcode == NULL:
            raise MemoryError()
        for k, s in enumerate(self.launcher_specs):
            self.launchers[k].x, self.launchers[k].y, self.launchers[k].z = [float(c) for c in s.position]
            self.launchers[k].speed = s.interceptor_speed_mps
            self.launchers[k].delay = s.launch_delay_s
            self.launchers[k].slew_rate = np.radians(s.slew_rate_dps)
            self.launchers[k].min_r = s.min_range_m
            self.launchers[k].max_r = s.max_range_m
            self.launchers[k].min_alt = s.min_alt_m
            self.launchers[k].max_alt = s.max_alt_m
            self.launchers[k].max_tof = s.max_tof_s
            self.launchers[k].sector_centre = np.radians(s.sector_centre_deg)
            self.launchers[k].sector_half = np.radians(s.sector_width_deg) / 2.0
            self.launchers[k].sin_c = np.sin(self.launchers[k].sector_centre)
            self.launchers[k].cos_c = np.cos(self.launchers[k].sector_centre)
            self.launchers[k].cos_half = np.cos(self.launchers[k].sector_half)
            self.launchers[k].pk_base = s.pk
            self.launchers[k].channels = s.channels
            self.launchers[k].seeker_range = max(float(s.seeker_range_m), 0.0)
            self.launchers[k].protect_r = protect_radius(config, s)
            self.launchers[k].lethal = max(float(s.lethal_radius_m), 0.0)
        for k, a in enumerate(self.asset_specs):
            self.assets[k].x, self.assets[k].y, self.assets[k].z = [float(c) for c in a.position]
            self.assets[k].radius = a.radius_m
            self.assets[k].value = a.value
        for k, z in enumerate(self.zone_specs):
            self.zones[k].cx, self.zones[k].cy = [float(c) for c in z.centre]
            self.zones[k].r = z.radius_m
            self.zones[k].r2 = z.radius_m * z.radius_m
            self.zones[k].zmin = z.z_min_m
            self.zones[k].zmax = z.z_max_m
        c = config
        self.p.horizon = c.horizon_s
        self.p.miss_scale = c.miss_scale
        self.p.t_ref = c.urgency_ref_s
        self.p.basket2 = c.pk_basket_m * c.pk_basket_m
        self.p.aspect_pen = c.pk_aspect_penalty
        self.p.tof_pen = c.pk_tof_penalty
        self.p.min_pk = c.min_pk
        self.p.slew_iters = c.slew_iterations
        self.p.shots_per_engagement = c.shots_per_engagement
        self.p.max_shots = c.max_shots_per_track
        self.p.launches_per_launcher = c.launches_per_launcher
        for k in range(10):
            self.p.atan_c[k] = SLEW_ATAN_COEFFS[k]
        self.p.sigmas = c.safety_sigmas
        self.p.vel_var = c.track_velocity_sigma_mps * c.track_velocity_sigma_mps
        self.p.timing = c.launch_timing_margin_s
        self.p.seeker_max = self.p.h_max = self.p.protect_max = self.p.t_int_max = self.p.t_end_max = 0.0
        for k in range(self.n_l):
            la = &self.launchers[k]
            self.p.seeker_max = max(self.p.seeker_max, la.seeker_range)
            self.p.h_max = max(self.p.h_max, la.seeker_range / la.speed)
            self.p.protect_max = max(self.p.protect_max, la.protect_r)
            self.p.t_int_max = max(self.p.t_int_max, la.delay + (M_PI / la.slew_rate if la.slew_rate > 0.0 else 0.0)
                                   + la.max_tof)
        self.p.t_end_max = self.p.t_int_max + self.p.h_max
        self.last_nodes = 0

    def __dealloc__(self):
        free(self.launchers)
        free(self.assets)
        free(self.zones)
        free(self.lcode)
        free(self.work.p)

    @property
    def n_launchers(self):
        return self.n_l

    def evaluate(self, double t_s, track_id, state, pos_var_m2, confirmed, friendly, in_flight, shots_fired,
                 launcher_armed, launcher_ready, launcher_rounds, launcher_reload_left_s,
                 channels_in_use=None, solver=None, *, neutral=None, assessing=None, vel_var_m2s2=None,
                 status=None):
        """Rank threats, solve every launcher x threat pair and assign launchers (see hil.ext.firecontrol_types).
        channels_in_use (int32[n_l], default 0): guidance channels each launcher has busy.
        solver overrides config.solver for this call ("auto", "lap", "greedy", "exact").
        neutral (bool[n], default none): tracks of neutral traffic, protected like friendly ones.
        assessing (bool[n], default none): tracks whose kill-assessment look is open (KILL_ASSESSMENT).
        vel_var_m2s2 (float64[n], default config.track_velocity_sigma_mps squared for every track): the trace
        of each track's velocity covariance, which grows its predicted position sigma with time.
        status (int8[n], the tracks' TrackStatus codes; with confirmed=None): confirmed is then status == CONFIRMED,
        read here in one pass (a track snapshot's own column, with no comparison array built by the caller).
        Arrays already of the right dtype, 1-D (state 2-D) and C-contiguous are used as they are, not copied."""
        tid = _as_array(track_id, cnp.NPY_INT64, np.int64, 1)
        cdef Py_ssize_t n = cnp.PyArray_DIM(tid, 0)
        cdef int n_l = self.n_l
        st = _as_array(state, cnp.NPY_FLOAT64, np.float64, 2)
        if cnp.PyArray_NDIM(st) != 2 or cnp.PyArray_DIM(st, 0) != n or cnp.PyArray_DIM(st, 1) != 6:
            raise ValueError(f"state must be ({n}, 6), got {st.shape}")
        pv = _vec(pos_var_m2, cnp.NPY_FLOAT64, np.float64, n, "pos_var_m2")
        cdef const signed char* status_p
        cdef unsigned char* conf_out
        cdef Py_ssize_t row
        if confirmed is not None:
            conf = _vec(confirmed, cnp.NPY_BOOL, np.bool_, n, "confirmed")
        elif status is not None:
            stv = _vec(status, cnp.NPY_INT8, np.int8, n, "status")
            status_p = <const signed char*> cnp.PyArray_DATA(stv)
            conf = empty1(n, cnp.NPY_BOOL)
            conf_out = <unsigned char*> cnp.PyArray_DATA(conf)
            for row in range(n):
                conf_out[row] = status_p[row] == STATUS_CONFIRMED
        else:
            raise ValueError("confirmed (bool per track) or status (the tracks' TrackStatus codes) is needed")
        fr = _vec(friendly, cnp.NPY_BOOL, np.bool_, n, "friendly")
        fl = _vec(in_flight, cnp.NPY_INT32, np.int32, n, "in_flight")
        sh = _vec(shots_fired, cnp.NPY_INT32, np.int32, n, "shots_fired")
        armed = _vec(launcher_armed, cnp.NPY_BOOL, np.bool_, n_l, "launcher_armed")
        ready = _vec(launcher_ready, cnp.NPY_BOOL, np.bool_, n_l, "launcher_ready")
        rounds = _vec(launcher_rounds, cnp.NPY_INT32, np.int32, n_l, "launcher_rounds")
        reload_left = _vec(launcher_reload_left_s, cnp.NPY_FLOAT64, np.float64, n_l, "launcher_reload_left_s")
        busy = None if channels_in_use is None else _vec(channels_in_use, cnp.NPY_INT32, np.int32, n_l,
                                                         "channels_in_use")
        neu = None if neutral is None else _vec(neutral, cnp.NPY_BOOL, np.bool_, n, "neutral")
        assess = None if assessing is None else _vec(assessing, cnp.NPY_BOOL, np.bool_, n, "assessing")
        vvar = None if vel_var_m2s2 is None else _vec(vel_var_m2s2, cnp.NPY_FLOAT64, np.float64, n, "vel_var_m2s2")
        solver = self.config.solver if solver is None else solver
        if solver not in ("auto", "lap", "greedy", "exact"):
            raise ValueError(f"unknown solver {solver!r}")

        track_code = empty1(n, cnp.NPY_INT8)
        score = empty1(n, cnp.NPY_FLOAT64)
        t_cpa = empty1(n, cnp.NPY_FLOAT64)
        d_cpa = empty1(n, cnp.NPY_FLOAT64)
        t_asset = empty1(n, cnp.NPY_FLOAT64)
        asset = empty1(n, cnp.NPY_INT32)
        left = empty1(n, cnp.NPY_INT32)
        cand = empty1(n, cnp.NPY_INT32)
        pair_code = empty2(n, n_l, cnp.NPY_INT8)
        pair_pk = empty2(n, n_l, cnp.NPY_FLOAT64)
        pair_t = empty2(n, n_l, cnp.NPY_FLOAT64)
        pair_tof = empty2(n, n_l, cnp.NPY_FLOAT64)
        pair_prot = empty2(n, n_l, cnp.NPY_INT32)
        cap = empty1(n_l, cnp.NPY_INT32)
        prot_index = empty1(n, cnp.NPY_INT32)
        prot_sigma = empty1(n, cnp.NPY_FLOAT64)
        prot_speed = empty1(n, cnp.NPY_FLOAT64)
        prot_near = empty1(n, cnp.NPY_INT32)

        cdef const double* st_p = <const double*> cnp.PyArray_DATA(st)
        cdef const double* pv_p = <const double*> cnp.PyArray_DATA(pv)
        cdef const unsigned char* conf_p = <const unsigned char*> cnp.PyArray_DATA(conf)
        cdef const unsigned char* fr_p = <const unsigned char*> cnp.PyArray_DATA(fr)
        cdef const int* fl_p = <const int*> cnp.PyArray_DATA(fl)
        cdef const int* sh_p = <const int*> cnp.PyArray_DATA(sh)
        cdef const unsigned char* armed_p = <const unsigned char*> cnp.PyArray_DATA(armed)
        cdef const unsigned char* ready_p = <const unsigned char*> cnp.PyArray_DATA(ready)
        cdef const int* rounds_p = <const int*> cnp.PyArray_DATA(rounds)
        cdef const double* reload_p = <const double*> cnp.PyArray_DATA(reload_left)
        cdef const int* busy_p = NULL
        cdef const unsigned char* neu_p = NULL
        cdef const unsigned char* assess_p = NULL
        cdef const double* vvar_p = NULL
        cdef int* pprot_p = <int*> cnp.PyArray_DATA(pair_prot)
        cdef Protect pr
        pr.n = 0
        pr.index = <const int*> cnp.PyArray_DATA(prot_index)
        pr.st = st_p
        pr.pos_var = pv_p
        pr.sigma_end = <const double*> cnp.PyArray_DATA(prot_sigma)
        pr.speed = <const double*> cnp.PyArray_DATA(prot_speed)
        pr.near = <int*> cnp.PyArray_DATA(prot_near)
        pr.n_near = 0
        cdef signed char* tcode_p = <signed char*> cnp.PyArray_DATA(track_code)
        cdef double* score_p = <double*> cnp.PyArray_DATA(score)
        cdef double* tcpa_p = <double*> cnp.PyArray_DATA(t_cpa)
        cdef double* dcpa_p = <double*> cnp.PyArray_DATA(d_cpa)
        cdef double* tasset_p = <double*> cnp.PyArray_DATA(t_asset)
        cdef int* asset_p = <int*> cnp.PyArray_DATA(asset)
        cdef int* left_p = <int*> cnp.PyArray_DATA(left)
        cdef int* cand_p = <int*> cnp.PyArray_DATA(cand)
        cdef signed char* pcode_p = <signed char*> cnp.PyArray_DATA(pair_code)
        cdef double* ppk_p = <double*> cnp.PyArray_DATA(pair_pk)
        cdef double* pt_p = <double*> cnp.PyArray_DATA(pair_t)
        cdef double* ptof_p = <double*> cnp.PyArray_DATA(pair_tof)
        cdef int* cap_p = <int*> cnp.PyArray_DATA(cap)
        cdef signed char* lcode_p = self.lcode
        cdef Py_ssize_t i, l
        cdef int m = 0, n_slots = 0, n_pairs = 0
        if busy is not None:
            busy_p = <const int*> cnp.PyArray_DATA(busy)
        if neu is not None:
            neu_p = <const unsigned char*> cnp.PyArray_DATA(neu)
        if assess is not None:
            assess_p = <const unsigned char*> cnp.PyArray_DATA(assess)
        if vvar is not None:
            vvar_p = <const double*> cnp.PyArray_DATA(vvar)
        pr.vel_var = vvar_p
        with nogil:
            self._launcher_state(armed_p, ready_p, rounds_p, reload_p, busy_p, cap_p, lcode_p)
            for l in range(n_l):
                n_slots += cap_p[l]
            self._protected(n, st_p, pv_p, vvar_p, fr_p, neu_p, <int*> pr.index, <double*> pr.sigma_end,
                            <double*> pr.speed, &pr.n)
            for i in range(n):
                n_pairs += self._track(st_p + 6 * i, pv_p[i], vvar_p[i] if vvar_p != NULL else self.p.vel_var,
                                       conf_p[i], fr_p[i], neu_p[i] if neu_p != NULL else 0,
                                       assess_p[i] if assess_p != NULL else 0, fl_p[i], sh_p[i], lcode_p, &pr,
                                       tcode_p + i, score_p + i, tcpa_p + i, dcpa_p + i, tasset_p + i, asset_p + i,
                                       left_p + i, pcode_p + i * n_l, ppk_p + i * n_l, pt_p + i * n_l,
                                       ptof_p + i * n_l, pprot_p + i * n_l)
            for i in range(n):  # candidates: tracks with at least one feasible launcher
                for l in range(n_l):
                    if pcode_p[i * n_l + l] == R_NONE:
                        cand_p[m] = <int> i
                        m += 1
                        break
        if solver == "auto":
            if self.p.shots_per_engagement == 1:
                solver = "lap"
            else:
                solver = "exact" if n_pairs <= self.config.exact_max_pairs else "greedy"
        out_t = empty1(max(n_slots, 1), cnp.NPY_INT32)
        out_l = empty1(max(n_slots, 1), cnp.NPY_INT32)
        k, optimal, self.last_nodes = _assign(&self.work, solver, n_l, m, n_slots, cand[:m], left, cap, score,
                                              pair_pk, pair_code, out_t, out_l, self.config.exact_node_budget)
        inputs = {"confirmed": conf, "friendly": fr, "in_flight": fl, "shots_fired": sh}
        # the new inputs join the explanations only when given, so records of callers that pass none keep
        # their old shape
        if neu is not None:
            inputs["neutral"] = neu
        if assess is not None:
            inputs["assessing"] = assess
        return FireControlResult(
            t_s=t_s, assignments=_shots(k, out_t, out_l, st, score, pair_code, pair_pk, pair_t, pair_tof),
            solver=solver, optimal=bool(optimal), track_id=tid, state=st, pos_var_m2=pv, track_reason=track_code,
            score=score, t_cpa_s=t_cpa, d_cpa_m=d_cpa, time_to_asset_s=t_asset, asset_index=asset,
            pair_reason=pair_code, pair_pk=pair_pk, pair_t_s=pair_t, pair_tof_s=pair_tof,
            launcher_names=self.launcher_names, asset_names=self.asset_names,
            inputs={"track": inputs}, pair_protected=pair_prot,
        )

    cdef void _launcher_state(self, const unsigned char* armed, const unsigned char* ready, const int* rounds,
                              const double* reload_left, const int* busy, int* cap,
                              signed char* lcode) noexcept nogil:
        """Each launcher's refusal code (or NONE) and its shots this evaluation; busy NULL: no channel busy."""
        cdef int l, c, free_ch
        for l in range(self.n_l):
            cap[l] = 0
            free_ch = self.launchers[l].channels - (busy[l] if busy != NULL else 0)
            if not armed[l]:
                lcode[l] = R_LAUNCHER_NOT_ARMED
            elif not ready[l] or not reload_left[l] <= 0.0:
                lcode[l] = R_LAUNCHER_NOT_READY
            elif rounds[l] <= 0:
                lcode[l] = R_NO_ROUNDS
            elif free_ch <= 0:
                lcode[l] = R_NO_CHANNEL
            else:
                lcode[l] = R_NONE
                c = rounds[l]
                if free_ch < c:
                    c = free_ch
                if self.p.launches_per_launcher < c:
                    c = self.p.launches_per_launcher
                cap[l] = c

    cdef void _protected(self, Py_ssize_t n, const double* st, const double* pos_var, const double* vel_var,
                         const unsigned char* friendly, const unsigned char* neutral, int* index, double* sigma_end,
                         double* speed, int* n_prot) noexcept nogil:
        """The protected tracks: friendly or neutral (tentative or confirmed) with a usable state; per track its
        predicted sigma at the latest end of any search window and its speed (for the prefilter)."""
        cdef Py_ssize_t i
        cdef int k, m = 0, valid
        cdef const double* x
        cdef double vv
        for i in range(n):
            if not (friendly[i] or (neutral != NULL and neutral[i])):
                continue
            x = st + 6 * i
            vv = vel_var[i] if vel_var != NULL else self.p.vel_var
            # a track with no usable state cannot be predicted: it protects nothing (it is INVALID_TRACK)
            valid = isfinite(pos_var[i]) and pos_var[i] >= 0.0 and isfinite(vv) and vv >= 0.0
            for k in range(6):
                valid = valid and isfinite(x[k])
            if not valid:
                continue
            index[m] = <int> i
            sigma_end[m] = sqrt(pos_var[i] + vv * self.p.t_end_max * self.p.t_end_max)
            speed[m] = sqrt(x[3] * x[3] + x[4] * x[4] + x[5] * x[5])
            m += 1
        n_prot[0] = m

    cdef void _near(self, const double* x, double pos_var, double vel_var, Protect* pr) noexcept nogil:
        """Prefilter: pr.near gets the protected tracks whose closest approach to track x (both at constant
        velocity, until the latest intercept time of any launcher) is close enough that some launcher's
        search window could bring them within its safety radius (see protected_near's bound)."""
        cdef int k
        cdef double dx, dy, dz, vx, vy, vz, vv, tc, m
        cdef double sig = sqrt(pos_var + vel_var * self.p.t_end_max * self.p.t_end_max)
        cdef const double* xj
        pr.n_near = 0
        for k in range(pr.n):
            xj = pr.st + 6 * pr.index[k]
            dx = xj[0] - x[0]
            dy = xj[1] - x[1]
            dz = xj[2] - x[2]
            vx = xj[3] - x[3]
            vy = xj[4] - x[4]
            vz = xj[5] - x[5]
            vv = vx * vx + vy * vy + vz * vz
            tc = -(dx * vx + dy * vy + dz * vz) / vv if vv > EPS else 0.0
            if tc < 0.0:
                tc = 0.0
            elif tc > self.p.t_int_max:
                tc = self.p.t_int_max
            dx += vx * tc
            dy += vy * tc
            dz += vz * tc
            # 3 S: the axis reaches 2 S past the aim, and S more when there is no direction to fly
            m = (3.0 * self.p.seeker_max + self.p.protect_max + self.p.sigmas * (sig + pr.sigma_end[k])
                 + pr.speed[k] * (self.p.h_max + self.p.timing) + 1.0)
            if dx * dx + dy * dy + dz * dz <= m * m:
                pr.near[pr.n_near] = k
                pr.n_near += 1

    cdef int _track(self, const double* x, double pos_var, double vel_var, unsigned char confirmed,
                    unsigned char friendly, unsigned char neutral, unsigned char assessing, int in_flight, int shots,
                    const signed char* lcode, Protect* pr, signed char* tcode, double* score, double* t_cpa,
                    double* d_cpa, double* t_asset, int* asset, int* left, signed char* pcode, double* ppk,
                    double* pt, double* ptof, int* pprot) noexcept nogil:
        """Evaluate one track and its pairs; returns how many pairs are feasible."""
        cdef int k, l, code, refused, feasible = 0
        cdef double f_track = 1.0, speed = 0.0
        cdef int valid = isfinite(pos_var) and pos_var >= 0.0 and isfinite(vel_var) and vel_var >= 0.0
        for k in range(6):
            valid = valid and isfinite(x[k])
        if valid:
            threat_of(x, self.assets, self.n_a, &self.p, score, t_cpa, d_cpa, t_asset, asset)
        else:
            no_threat(score, t_cpa, d_cpa, t_asset, asset)
        left[0] = 0
        if not valid:
            code = R_INVALID_TRACK
        elif friendly:
            code = R_FRIENDLY
        elif neutral:
            code = R_NEUTRAL
        elif not confirmed:
            code = R_NOT_CONFIRMED
        elif in_zone(x[0], x[1], x[2], self.zones, self.n_z):
            code = R_NO_FIRE_ZONE
        elif score[0] <= 0.0:
            code = R_NOT_A_THREAT
        elif in_flight >= self.p.shots_per_engagement:  # look before shooting again (a salvo may be completed)
            code = R_ALREADY_ENGAGED
        elif assessing:  # the look after a round's intercept is still open: no new round before its verdict
            code = R_KILL_ASSESSMENT
        elif shots >= self.p.max_shots:
            code = R_SHOTS_EXHAUSTED
        else:
            code = R_NONE
            left[0] = self.p.max_shots - shots
            if self.p.shots_per_engagement - in_flight < left[0]:
                left[0] = self.p.shots_per_engagement - in_flight
        tcode[0] = code
        pr.n_near = 0
        if code == R_NONE:
            f_track = 1.0 - exp(-self.p.basket2 / pos_var) if pos_var > 0.0 else 1.0
            speed = sqrt(x[3] * x[3] + x[4] * x[4] + x[5] * x[5])
            if pr.n > 0:
                self._near(x, pos_var, vel_var, pr)
        for l in range(self.n_l):
            refused = code if code != R_NONE else lcode[l]  # the track's own reason first, then the launcher's
            if refused != R_NONE:
                pcode[l] = refused
                ppk[l] = NAN
                pt[l] = NAN
                ptof[l] = NAN
                pprot[l] = -1
            else:
                pcode[l] = solve_pair(&self.launchers[l], x, f_track, speed, t_asset[0], pos_var, vel_var,
                                      self.zones, self.n_z, &self.p, pr, &pt[l], &ptof[l], &ppk[l], &pprot[l])
                feasible += pcode[l] == R_NONE
        return feasible
