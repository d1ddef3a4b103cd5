# cython: language_level=3
"""Multi-radar tracker kernel: EKF or IMM (CV + turn left + turn right) on polar plots, azimuth-binned pre-gate,
Mahalanobis gating, clustered GNN with Jonker–Volgenant (IFF codes weighed in), M-of-N confirmation and
miss-based deletion, identity from the IFF codes of each track's last plots."""

from libc.math cimport INFINITY, M_PI, atan2, cos, exp, fabs, floor, fmax, fmin, hypot, isfinite, isnan, log, sin, sqrt
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

cimport numpy as cnp

from hil.ext.arrays cimport empty1, empty_track_columns, fits
from hil.ext.assignment cimport lap_rect

import numpy as np

from hil.ext.tracker_types import ReorderBuffer, SensorDef, TrackerConfig, TrackSnapshot, TrackStatus
from hil.geo import STANDARD_GRAVITY

cnp.import_array()

# TrackStatus's numbers are the kernel's slot states (tracker.pxd): one set of numbers, or no kernel
if {s.name: int(s) for s in TrackStatus} != {"TENTATIVE": ST_TENTATIVE, "CONFIRMED": ST_CONFIRMED}:
    raise ImportError("hil.ext.tracker: TrackStatus in hil.ext.tracker_types and ST_* in tracker.pxd differ")

cdef double TWO_PI = 2.0 * M_PI
cdef double FORBIDDEN = 1e9  # cost of a pairing outside the gate in the assignment matrix
cdef int BIG_CLUSTER = 64
cdef int SMALL_BATCH = 8  # plots up to which a batch skips the bin index


# --- small linear algebra on fixed-size row-major arrays ------------------------------------------------

cdef inline void add_q_cv(int n, double* P, double dt, double q) noexcept nogil:
    """White-noise-acceleration process noise on each axis (q: PSD in m²/s³)."""
    cdef double a = fabs(dt)
    cdef double q11 = q * a * a * a / 3.0, q12 = q * dt * a / 2.0, q22 = q * a
    cdef int k
    for k in range(3):
        P[k * n + k] += q11
        P[k * n + k + 3] += q12
        P[(k + 3) * n + k] += q12
        P[(k + 3) * n + k + 3] += q22


cdef void predict_cv(int n, double* x, double* P, double dt, double q, double omega_var=0.0) noexcept nogil:
    """Constant-velocity prediction of the first 6 components. A 7th, the turn rate, is reset to 0 with
    variance omega_var and no correlation: flying straight says nothing about a turn to come, and a turn
    rate carried along would pick up spurious corrections from straight-line residuals."""
    cdef int i, j
    for i in range(3):
        x[i] += dt * x[i + 3]
    # P <- F P F^T with F = [[I, dt I], [0, I]]: rows then columns, O(n²)
    for i in range(3):
        for j in range(n):
            P[i * n + j] += dt * P[(i + 3) * n + j]
    for j in range(3):
        for i in range(n):
            P[i * n + j] += dt * P[i * n + j + 3]
    add_q_cv(n, P, dt, q)
    if n == NX:
        x[6] = 0.0
        for i in range(NX):
            P[6 * NX + i] = 0.0
            P[i * NX + 6] = 0.0
        P[6 * NX + 6] = omega_var


cdef inline void ct_terms(double w, double T, double s, double c, double* ab) noexcept nogil:
    """A turn at rate w for T (s = sin wT, c = cos wT) moves the position by (a vx - b vy, b vx + a vy); da, db
    are a's and b's derivatives in w. ab <- a, b, da, db."""
    if fabs(w) > 1e-6:
        ab[0] = s / w
        ab[1] = (1.0 - c) / w
        ab[2] = (T * c * w - s) / (w * w)
        ab[3] = (T * s * w - (1.0 - c)) / (w * w)
    else:  # series of the limits as w -> 0
        ab[0] = T - w * w * T * T * T / 6.0
        ab[1] = w * T * T / 2.0
        ab[2] = -w * T * T * T / 3.0
        ab[3] = T * T / 2.0 - w * w * T * T * T * T / 8.0


cdef bint range_gated_out(bint turn, const double* x, const double* P, double dt, double q, const double* site,
                          double z_range, double r2_range, double g) noexcept nogil:
    """Whether a plot's range alone puts it outside the gate of state (x, P) predicted by dt (CV, or a turn):
    (z_r - r_pred)² >= g S_rr, S_rr the range entry of the innovation covariance, implies d² >= g. About 60
    multiply-adds against some 600 for the prediction and innovation it saves; the same linearisation."""
    cdef double wv[NX]
    cdef double ab[4]
    cdef double px, py, pz, r, u0, u1, u2, acc, f06 = 0.0, f16 = 0.0
    cdef double vx = x[3], vy = x[4]
    cdef int i, j
    if turn:
        ct_terms(x[6], dt, sin(x[6] * dt), cos(x[6] * dt), ab)
        px = x[0] + ab[0] * vx - ab[1] * vy
        py = x[1] + ab[1] * vx + ab[0] * vy
        f06 = ab[2] * vx - ab[3] * vy
        f16 = ab[3] * vx + ab[2] * vy
    else:
        px = x[0] + dt * vx
        py = x[1] + dt * vy
    pz = x[2] + dt * x[5]
    px -= site[0]
    py -= site[1]
    pz -= site[2]
    r = sqrt(px * px + py * py + pz * pz)
    if not r > 1e-3:
        return False
    u0, u1, u2 = px / r, py / r, pz / r
    # w = F^T u: the range row of H (the line of sight, on the position) through the prediction's Jacobian
    wv[0], wv[1], wv[2] = u0, u1, u2
    if turn:
        wv[3] = u0 * ab[0] + u1 * ab[1]
        wv[4] = -u0 * ab[1] + u1 * ab[0]
        wv[6] = u0 * f06 + u1 * f16
    else:
        wv[3] = u0 * dt
        wv[4] = u1 * dt
        wv[6] = 0.0
    wv[5] = u2 * dt
    acc = 0.0
    for i in range(NX):
        for j in range(NX):
            acc = acc + wv[i] * P[i * NX + j] * wv[j]
    acc += q * fabs(dt) * dt * dt / 3.0 + r2_range
    return (z_range - r) * (z_range - r) >= g * acc


cdef void predict_ct(double* x, double* P, double dt, double q, double q_omega) noexcept nogil:
    """Horizontal coordinated turn at rate x[6] (counter-clockwise positive), constant vertical velocity."""
    cdef double w = x[6], T = dt, wt = x[6] * dt
    cdef double s = sin(wt), c = cos(wt), a, b, da, db
    cdef double vx = x[3], vy = x[4]
    cdef double A[NX * NX]
    cdef double ab[4]
    cdef double f06, f16, f36, f46
    cdef int i, j
    ct_terms(w, T, s, c, ab)
    a, b, da, db = ab[0], ab[1], ab[2], ab[3]
    # the Jacobian F is the identity but for these entries (rows 0, 1, 3, 4 mix columns 3, 4, 6; row 2 takes 5)
    f06 = da * vx - db * vy
    f16 = db * vx + da * vy
    f36 = -T * s * vx - T * c * vy
    f46 = T * c * vx - T * s * vy
    x[0] += a * vx - b * vy
    x[1] += b * vx + a * vy
    x[2] += T * x[5]
    x[3] = c * vx - s * vy
    x[4] = s * vx + c * vy
    # A = F P row by row, then P = A F^T column by column: about 200 multiply-adds instead of 540
    for j in range(NX):
        A[0 * NX + j] = P[0 * NX + j] + a * P[3 * NX + j] - b * P[4 * NX + j] + f06 * P[6 * NX + j]
        A[1 * NX + j] = P[1 * NX + j] + b * P[3 * NX + j] + a * P[4 * NX + j] + f16 * P[6 * NX + j]
        A[2 * NX + j] = P[2 * NX + j] + T * P[5 * NX + j]
        A[3 * NX + j] = c * P[3 * NX + j] - s * P[4 * NX + j] + f36 * P[6 * NX + j]
        A[4 * NX + j] = s * P[3 * NX + j] + c * P[4 * NX + j] + f46 * P[6 * NX + j]
        A[5 * NX + j] = P[5 * NX + j]
        A[6 * NX + j] = P[6 * NX + j]
    for i in range(NX):
        P[i * NX + 0] = A[i * NX + 0] + a * A[i * NX + 3] - b * A[i * NX + 4] + f06 * A[i * NX + 6]
        P[i * NX + 1] = A[i * NX + 1] + b * A[i * NX + 3] + a * A[i * NX + 4] + f16 * A[i * NX + 6]
        P[i * NX + 2] = A[i * NX + 2] + T * A[i * NX + 5]
        P[i * NX + 3] = c * A[i * NX + 3] - s * A[i * NX + 4] + f36 * A[i * NX + 6]
        P[i * NX + 4] = s * A[i * NX + 3] + c * A[i * NX + 4] + f46 * A[i * NX + 6]
        P[i * NX + 5] = A[i * NX + 5]
        P[i * NX + 6] = A[i * NX + 6]
    for i in range(NX):  # exact symmetry against rounding
        for j in range(i + 1, NX):
            P[j * NX + i] = P[i * NX + j] = 0.5 * (P[i * NX + j] + P[j * NX + i])
    add_q_cv(NX, P, dt, q)
    P[6 * NX + 6] += q_omega * fabs(dt)


cdef int measure(int n, const double* x, const double* site, int use_rr, double* zhat, double* H) noexcept nogil:
    """Predicted plot (range, azimuth, elevation[, range-rate]) of state x seen from site, and its Jacobian."""
    cdef double dx = x[0] - site[0], dy = x[1] - site[1], dz = x[2] - site[2]
    cdef double rho2 = dx * dx + dy * dy
    cdef double rho = sqrt(rho2)
    cdef double r2 = rho2 + dz * dz
    cdef double r = sqrt(r2)
    cdef int i, nz = 4 if use_rr else 3
    if rho < 1e-3 or r < 1.0:
        return -1  # straight overhead: azimuth undefined
    memset(H, 0, nz * n * sizeof(double))
    zhat[0] = r
    zhat[1] = atan2(dx, dy)
    if zhat[1] < 0.0:
        zhat[1] += TWO_PI
    zhat[2] = atan2(dz, rho)
    H[0] = dx / r
    H[1] = dy / r
    H[2] = dz / r
    H[n + 0] = dy / rho2
    H[n + 1] = -dx / rho2
    H[2 * n + 0] = -dx * dz / (r2 * rho)
    H[2 * n + 1] = -dy * dz / (r2 * rho)
    H[2 * n + 2] = rho / r2
    if use_rr:
        zhat[3] = (dx * x[3] + dy * x[4] + dz * x[5]) / r
        H[3 * n + 0] = (x[3] - zhat[3] * dx / r) / r
        H[3 * n + 1] = (x[4] - zhat[3] * dy / r) / r
        H[3 * n + 2] = (x[5] - zhat[3] * dz / r) / r
        H[3 * n + 3] = dx / r
        H[3 * n + 4] = dy / r
        H[3 * n + 5] = dz / r
    return nz


cdef inline int cholesky(int m, double* S) noexcept nogil:
    """In-place lower Cholesky factor of an m x m SPD matrix (upper part left as is); -1 if not PD."""
    cdef int i, j, k
    cdef double acc
    for j in range(m):
        acc = S[j * m + j]
        for k in range(j):
            acc -= S[j * m + k] * S[j * m + k]
        if not acc > 0.0:
            return -1
        S[j * m + j] = sqrt(acc)
        for i in range(j + 1, m):
            acc = S[i * m + j]
            for k in range(j):
                acc -= S[i * m + k] * S[j * m + k]
            S[i * m + j] = acc / S[j * m + j]
    return 0


cdef inline void chol_solve(int m, const double* L, double* b) noexcept nogil:
    """b <- S^-1 b given S's lower Cholesky factor L."""
    cdef int i, k
    cdef double acc
    for i in range(m):
        acc = b[i]
        for k in range(i):
            acc -= L[i * m + k] * b[k]
        b[i] = acc / L[i * m + i]
    for i in range(m - 1, -1, -1):
        acc = b[i]
        for k in range(i + 1, m):
            acc -= L[k * m + i] * b[k]
        b[i] = acc / L[i * m + i]


cdef int innovation(int n, const double* x, const double* P, const double* z, int nz, const double* site,
                    const double* r2, double* nu, double* S, double* H, double* d2, double* logdet,
                    double* PHt) noexcept nogil:
    """Innovation nu, the Cholesky factor of its covariance (in S), H, d² = nu' S^-1 nu, log det S, and
    P H^T (n x nz, in PHt: scratch the caller provides, the gain's numerator)."""
    cdef double w[NZ]
    cdef double zhat[NZ]
    cdef int i, j, k
    cdef double acc
    if measure(n, x, site, nz == 4, zhat, H) < 0:
        return -1
    for i in range(nz):
        nu[i] = z[i] - zhat[i]
    if nu[1] > M_PI:
        nu[1] -= TWO_PI
    elif nu[1] < -M_PI:
        nu[1] += TWO_PI
    # PHt = P H^T (n x nz); S = H PHt + R
    for i in range(n):
        for j in range(nz):
            acc = 0.0
            for k in range(n):
                acc = acc + P[i * n + k] * H[j * n + k]
            PHt[i * nz + j] = acc
    for i in range(nz):
        for j in range(i + 1):
            acc = 0.0
            for k in range(n):
                acc = acc + H[i * n + k] * PHt[k * nz + j]
            S[i * nz + j] = acc
            S[j * nz + i] = acc
        S[i * nz + i] += r2[i]
    if cholesky(nz, S) < 0:
        return -1
    acc = 0.0
    for i in range(nz):
        w[i] = nu[i]
        acc += log(S[i * nz + i])
    logdet[0] = 2.0 * acc
    # d² = |L^-1 nu|²
    acc = 0.0
    for i in range(nz):
        for k in range(i):
            w[i] -= S[i * nz + k] * w[k]
        w[i] /= S[i * nz + i]
        acc += w[i] * w[i]
    d2[0] = acc
    return 0


cdef int ekf_update(int n, double* x, double* P, const double* z, int nz, const double* site,
                    const double* r2, double* d2, double* logdet) noexcept nogil:
    """Extended Kalman update of (x, P) with one plot; -1 (state untouched) if the geometry is degenerate."""
    cdef double nu[NZ]
    cdef double S[NZ * NZ]
    cdef double H[NZ * NX]
    cdef double PHt[NX * NZ]
    cdef double K[NX * NZ]
    cdef double row[NZ]
    cdef int i, j, k
    cdef double acc
    if innovation(n, x, P, z, nz, site, r2, nu, S, H, d2, logdet, PHt) < 0:
        return -1
    # K = PHt S^-1, one row at a time (S symmetric, so solve with the row as right-hand side)
    for i in range(n):
        for j in range(nz):
            row[j] = PHt[i * nz + j]
        chol_solve(nz, S, row)
        for j in range(nz):
            K[i * nz + j] = row[j]
        acc = 0.0
        for j in range(nz):
            acc = acc + row[j] * nu[j]
        x[i] += acc
    # P <- P - K PHt^T, kept symmetric
    for i in range(n):
        for j in range(i, n):
            acc = 0.0
            for k in range(nz):
                acc = acc + K[i * nz + k] * PHt[j * nz + k]
            P[i * n + j] -= acc
            if j != i:
                P[j * n + i] = P[i * n + j]
    return 0


cdef void* grow(void* p, Py_ssize_t* cap, Py_ssize_t need, size_t item) noexcept nogil:
    """p realloc'd to room for need items of item bytes with 50 % headroom (cap updated), or NULL (p and cap
    untouched) if there is no memory. Callers check need <= cap first."""
    cdef Py_ssize_t c = need + need // 2 + 64
    cdef void* q = realloc(p, c * item)
    if q != NULL:
        cap[0] = c
    return q


cdef inline int ibuf_reserve(IntBuf* b, Py_ssize_t need) noexcept nogil:
    cdef int* q
    if need <= b.cap:
        return 0
    q = <int*>grow(b.p, &b.cap, need, sizeof(int))
    if q == NULL:
        return -1
    b.p = q
    return 0


cdef inline int dbuf_reserve(DblBuf* b, Py_ssize_t need) noexcept nogil:
    cdef double* q
    if need <= b.cap:
        return 0
    q = <double*>grow(b.p, &b.cap, need, sizeof(double))
    if q == NULL:
        return -1
    b.p = q
    return 0


cdef inline int uf_find(int* parent, int a) noexcept nogil:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


cdef inline int popcount(unsigned int v) noexcept nogil:
    cdef int c = 0
    while v:
        v &= v - 1
        c += 1
    return c


cdef int square_assign(int n, const double* cost, int* row_to_col, double* work, int* iwork) noexcept nogil:
    """Minimum-cost assignment of a square n x n matrix; work holds 3n doubles, iwork 4n ints."""
    return lap_rect(n, n, cost, row_to_col, iwork, work, work + n, work + 2 * n, iwork + n, iwork + 2 * n,
                    <char*>(iwork + 3 * n), <char*>(iwork + 3 * n) + n)


def solve_assignment(double[:, ::1] cost):
    """Row -> column of the minimum-cost assignment of a square matrix (the kernel GNN uses per cluster)."""
    cdef int n = cost.shape[0]
    if cost.shape[1] != n:
        raise ValueError("cost matrix must be square")
    out = np.zeros(n, dtype=np.int32)
    if n == 0:
        return out
    cdef int[::1] r2c = out
    work = np.zeros(3 * n)
    iwork = np.zeros(4 * n, dtype=np.int32)
    cdef double[::1] w = work
    cdef int[::1] iw = iwork
    cdef int rc
    with nogil:
        rc = square_assign(n, &cost[0, 0], &r2c[0], &w[0], &iw[0])
    if rc < 0:
        raise ValueError("no complete assignment: some row has only infinite costs")
    return out


# --- the tracker -----------------------------------------------------------------------------------------

cdef class Tracker:
    """Central multi-radar tracker over one ENU frame; tracks live in a preallocated struct of arrays.

    Tracker(config, sites_enu[n_sensors, 3], capacity=4096, sigmas=None [n_sensors, 4: range m, azimuth rad,
    elevation rad, range-rate m/s], max_range_m=None [n_sensors]). Feed update() with plot batches and
    sector_swept() with the beam's progress; read tracks(). With config.reorder_window_s > 0, plots and
    sweeps wait that long to be merged in time order (flush() applies them now); tracks() never waits.
    Track numbers start at 1 and are never reused; counters() has every count by name.
    """

    cdef Params prm
    cdef Counters cnt
    cdef readonly object config
    cdef readonly int capacity
    cdef readonly int n_sensors
    cdef int n_live, hi, n_free
    cdef long long next_id
    cdef object _keep, _buffer
    cdef bint direct  # no reorder window: plots and sweeps are applied as they come, the buffer stays empty
    cdef double* sites
    cdef double* sig2
    cdef double* max_range
    cdef long long* tid
    cdef signed char* status
    cdef double* x
    cdef double* P
    cdef double* mu
    cdef double* xc
    cdef double* Pc
    cdef double* psum  # per slot and model: position and velocity variance sums, turn-rate variance (_refresh_sums)
    cdef double* ptrace  # per slot: the three sums of the combined covariance _pos_trace needs
    cdef double* t_upd
    cdef int* mode3a  # identity: the code the IFF evidence establishes, -1 none (_iff_push)
    cdef int* iff_codes  # per slot, a ring of the codes of its last iff_window plots (-1: no code)
    cdef int* iff_len
    cdef int* iff_head
    cdef int* iff_expect  # the identity while its evidence holds it, else IFF_UNKNOWN: what association weighs
    cdef int* hits
    cdef int* misses
    cdef int* opp
    cdef unsigned int* hist
    cdef unsigned int* pending
    cdef int* free_stack
    # live slots in track-id order (new tracks take the highest id, so appending keeps it sorted); an entry
    # whose slot was freed or reused (its id no longer matches) is dropped when met
    cdef int* id_order
    cdef long long* id_order_tid
    cdef int n_order
    # per-slot scratch of the pre-gate and of clustering (capacity sized)
    cdef int* bin_lo
    cdef int* bin_hi
    cdef double* pred_r
    cdef double* win_r
    cdef int* loc_of_slot
    cdef int* bin_start
    cdef int* bin_fill
    # grown on demand, freed in __dealloc__
    cdef IntBuf bin_items, plot_trk, plot_flag, pair_s, pair_j, pair_cl, uf, cl_of_root, cl_start, cl_pairs
    cdef IntBuf slot_of_loc, tloc, ploc, tl, pl, r2c, iwork
    cdef DblBuf pair_c, pair_pen, plot_minpen, trk_minpen, cost, work

    def __init__(self, config: TrackerConfig, sites_enu, int capacity=4096, sigmas=None, max_range_m=None):
        if not isinstance(config, TrackerConfig):
            raise TypeError("config must be a hil.ext.tracker_types.TrackerConfig")
        sites_arr = np.ascontiguousarray(sites_enu, dtype=np.float64)
        if sites_arr.ndim != 2 or sites_arr.shape[1] != 3 or not 1 <= sites_arr.shape[0] <= MAX_SENSORS:
            raise ValueError(f"sites_enu must be float64[n_sensors, 3] with 1..{MAX_SENSORS} sensors")
        if not np.all(np.isfinite(sites_arr)):
            raise ValueError("sites_enu must be finite")
        ns = sites_arr.shape[0]
        if sigmas is None:  # every sensor with SensorDef's default noise
            sd = SensorDef("", (0.0, 0.0, 0.0))
            sigmas = np.tile([sd.sigma_range_m, sd.sigma_azimuth_rad, sd.sigma_elevation_rad,
                              sd.sigma_range_rate_mps], (ns, 1))
        sig_arr = np.ascontiguousarray(sigmas, dtype=np.float64)
        if sig_arr.shape != (ns, 4) or not np.all(sig_arr > 0) or not np.all(np.isfinite(sig_arr)):
            raise ValueError("sigmas must be positive float64[n_sensors, 4] (range m, az rad, el rad, rate m/s)")
        mr_arr = np.full(ns, np.inf) if max_range_m is None else np.ascontiguousarray(max_range_m, dtype=np.float64)
        if mr_arr.shape != (ns,):
            raise ValueError("max_range_m must be float64[n_sensors]")
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.config = config
        self.capacity = capacity
        self.n_sensors = ns
        c = config
        self.prm.n_models = c.n_models
        self.prm.q_cv = c.q_cv_m2ps3
        self.prm.q_ct = c.q_ct_m2ps3
        self.prm.q_omega = c.q_omega_rad2ps3
        # gating uses the combined state under CV: take the larger noise so a turning track still gates
        self.prm.q_gate = max(c.q_cv_m2ps3, c.q_ct_m2ps3) if c.n_models > 1 else c.q_cv_m2ps3
        self.prm.gate3 = c.gate(3)
        self.prm.gate4 = c.gate(4)
        self.prm.rate01 = c.imm_cv_to_ct_per_s
        self.prm.rate10 = c.imm_ct_to_cv_per_s
        self.prm.rate_rev = c.imm_turn_reversal_per_s
        self.prm.init_mu_ct = c.imm_initial_ct
        self.prm.turn_entry_acc = c.turn_entry_g * STANDARD_GRAVITY
        self.prm.turn_entry_sigma_acc = c.turn_entry_sigma_g * STANDARD_GRAVITY
        self.prm.turn_min_speed = c.turn_min_speed_mps
        self.prm.init_speed_sigma = c.init_speed_sigma_mps
        self.prm.init_omega_sigma = c.init_omega_sigma_radps
        self.prm.use_range_rate = 1 if c.use_range_rate else 0
        self.prm.confirm_m = c.confirm_m
        self.prm.confirm_n = c.confirm_n
        self.prm.delete_misses = c.delete_misses
        self.prm.max_pos_var = c.max_position_sigma_m ** 2
        self.prm.iff_missing = c.iff_missing_d2
        self.prm.iff_unexpected = c.iff_unexpected_d2
        self.prm.iff_window = c.iff_window
        self.prm.iff_k = c.iff_k
        self._buffer = ReorderBuffer(c.reorder_window_s)
        self.direct = c.reorder_window_s <= 0.0
        cap = capacity
        keep = {
            "sites": sites_arr.ravel().copy(), "sig2": (sig_arr ** 2).ravel().copy(), "max_range": mr_arr.copy(),
            "tid": np.zeros(cap, np.int64), "status": np.zeros(cap, np.int8),
            "x": np.zeros(cap * MAXM * NX), "P": np.zeros(cap * MAXM * NX * NX), "mu": np.zeros(cap * MAXM),
            "xc": np.zeros(cap * NC), "Pc": np.zeros(cap * NC * NC),
            "psum": np.zeros(cap * MAXM * NPS), "ptrace": np.zeros(cap * NPS), "t_upd": np.zeros(cap),
            "mode3a": np.full(cap, -1, np.int32), "hits": np.zeros(cap, np.int32),
            "iff_codes": np.full(cap * c.iff_window, -1, np.int32), "iff_len": np.zeros(cap, np.int32),
            "iff_head": np.zeros(cap, np.int32), "iff_expect": np.full(cap, IFF_UNKNOWN, np.int32),
            "misses": np.zeros(cap, np.int32), "opp": np.zeros(cap, np.int32),
            "hist": np.zeros(cap, np.uint32), "pending": np.zeros(cap, np.uint32),
            "free_stack": np.arange(cap - 1, -1, -1, dtype=np.int32),
            "id_order": np.zeros(cap, np.int32), "id_order_tid": np.zeros(cap, np.int64),
            "bin_lo": np.zeros(cap, np.int32), "bin_hi": np.zeros(cap, np.int32),
            "pred_r": np.zeros(cap), "win_r": np.zeros(cap), "loc_of_slot": np.full(cap, -1, np.int32),
            "bin_start": np.zeros(N_AZ_BINS + 1, np.int32), "bin_fill": np.zeros(N_AZ_BINS, np.int32),
        }
        self._keep = keep
        self.sites = _dptr(keep["sites"])
        self.sig2 = _dptr(keep["sig2"])
        self.max_range = _dptr(keep["max_range"])
        self.tid = _lptr(keep["tid"])
        self.status = _bptr(keep["status"])
        self.x = _dptr(keep["x"])
        self.P = _dptr(keep["P"])
        self.mu = _dptr(keep["mu"])
        self.xc = _dptr(keep["xc"])
        self.Pc = _dptr(keep["Pc"])
        self.psum = _dptr(keep["psum"])
        self.ptrace = _dptr(keep["ptrace"])
        self.t_upd = _dptr(keep["t_upd"])
        self.mode3a = _iptr(keep["mode3a"])
        self.iff_codes = _iptr(keep["iff_codes"])
        self.iff_len = _iptr(keep["iff_len"])
        self.iff_head = _iptr(keep["iff_head"])
        self.iff_expect = _iptr(keep["iff_expect"])
        self.hits = _iptr(keep["hits"])
        self.misses = _iptr(keep["misses"])
        self.opp = _iptr(keep["opp"])
        self.hist = _uptr(keep["hist"])
        self.pending = _uptr(keep["pending"])
        self.free_stack = _iptr(keep["free_stack"])
        self.id_order = _iptr(keep["id_order"])
        self.id_order_tid = _lptr(keep["id_order_tid"])
        self.n_order = 0
        self.bin_lo = _iptr(keep["bin_lo"])
        self.bin_hi = _iptr(keep["bin_hi"])
        self.pred_r = _dptr(keep["pred_r"])
        self.win_r = _dptr(keep["win_r"])
        self.loc_of_slot = _iptr(keep["loc_of_slot"])
        self.bin_start = _iptr(keep["bin_start"])
        self.bin_fill = _iptr(keep["bin_fill"])
        self.n_free = cap
        self.n_live = 0
        self.hi = 0
        self.next_id = 1

    def __dealloc__(self):
        free(self.bin_items.p)
        free(self.plot_trk.p)
        free(self.plot_flag.p)
        free(self.pair_s.p)
        free(self.pair_j.p)
        free(self.pair_cl.p)
        free(self.uf.p)
        free(self.cl_of_root.p)
        free(self.cl_start.p)
        free(self.cl_pairs.p)
        free(self.slot_of_loc.p)
        free(self.tloc.p)
        free(self.ploc.p)
        free(self.tl.p)
        free(self.pl.p)
        free(self.r2c.p)
        free(self.iwork.p)
        free(self.pair_c.p)
        free(self.pair_pen.p)
        free(self.plot_minpen.p)
        free(self.trk_minpen.p)
        free(self.cost.p)
        free(self.work.p)

    # --- counters ------------------------------------------------------------------------------------

    @property
    def plots_in(self): return self.cnt.plots_in
    @property
    def plots_used(self): return self.cnt.plots_used
    @property
    def bad_plots(self): return self.cnt.bad_plots
    @property
    def late_plots(self): return self.cnt.late_plots
    @property
    def gated_out(self): return self.cnt.gated_out
    @property
    def new_tracks(self): return self.cnt.new_tracks
    @property
    def confirmed(self): return self.cnt.confirmed
    @property
    def deleted(self): return self.cnt.deleted
    @property
    def dropped_full(self): return self.cnt.dropped_full
    @property
    def late_sweeps(self): return self.cnt.late_sweeps
    @property
    def n_tracks(self): return self.n_live
    @property
    def pending_units(self): return len(self._buffer)

    def counters(self):
        """Every counter by name (plots_in, plots_used, bad_plots, late_plots, gated_out, new_tracks, ...)."""
        return dict(self.cnt)

    # --- public API ----------------------------------------------------------------------------------

    def update(self, t_s, sensor, range_m, azimuth_rad, elevation_rad, range_rate_mps, mode3a=None):
        """One batch of plots (1-D arrays, time ordered; NaN range-rate = absent; mode3a -1 = no reply).

        A track takes at most one plot of a batch per sensor. Plots older than the newest plot already
        applied are late: counted in late_plots and dropped. Arrays already float64 (sensor, mode3a int32),
        1-D and C-contiguous are read as they are; a clean, ordered batch with no reorder window goes
        straight to the kernel.
        """
        t = _f64(t_s)
        cdef Py_ssize_t n = cnp.PyArray_DIM(t, 0), j
        r = _f64(range_m)
        az = _f64(azimuth_rad)
        el = _f64(elevation_rad)
        rr = np.full(n, np.nan) if range_rate_mps is None else _f64(range_rate_mps)
        sen = _i32_n(sensor, n)
        m3 = np.full(n, -1, np.int32) if mode3a is None else _i32_n(mode3a, n)
        if not (cnp.PyArray_DIM(r, 0) == cnp.PyArray_DIM(az, 0) == cnp.PyArray_DIM(el, 0) == cnp.PyArray_DIM(rr, 0)
                == n):
            raise ValueError("plot arrays must all have the same length")
        if n == 0:
            return
        self.cnt.plots_in += n
        cdef const double* tp = <const double*> cnp.PyArray_DATA(t)
        cdef const int* sp = <const int*> cnp.PyArray_DATA(sen)
        cdef double released
        cdef int rc = 0, clean = self.direct
        buf = self._buffer
        if clean:
            released = buf.released_s
            for j in range(n):  # nothing bad, late or out of order: nothing to filter or sort
                if (not (0 <= sp[j] < self.n_sensors and isfinite(tp[j])) or tp[j] < released
                        or (j > 0 and tp[j] < tp[j - 1])):
                    clean = 0
                    break
        if not clean:
            self._update_filtered(t, sen, r, az, el, rr, m3)
            return
        if tp[n - 1] > released:
            buf.released_s = tp[n - 1]
        cdef const double* rp = <const double*> cnp.PyArray_DATA(r)
        cdef const double* azp = <const double*> cnp.PyArray_DATA(az)
        cdef const double* elp = <const double*> cnp.PyArray_DATA(el)
        cdef const double* rrp = <const double*> cnp.PyArray_DATA(rr)
        cdef const int* mp = <const int*> cnp.PyArray_DATA(m3)
        with nogil:
            rc = self._runs(n, tp, sp, rp, azp, elp, rrp, mp)
        if rc < 0:
            raise MemoryError("tracker scratch allocation failed")

    def _update_filtered(self, t, sen, r, az, el, rr, m3):
        """update() of a batch with bad, late or unordered plots, or through the reorder window."""
        ok = (sen >= 0) & (sen < self.n_sensors) & np.isfinite(t)
        if not ok.all():
            self.cnt.bad_plots += int((~ok).sum())
            t, r, az, el, rr, sen, m3 = (a[ok] for a in (t, r, az, el, rr, sen, m3))
        buf = self._buffer
        late = t < buf.released_s
        if late.any():
            self.cnt.late_plots += int(late.sum())
            keep = ~late
            t, r, az, el, rr, sen, m3 = (a[keep] for a in (t, r, az, el, rr, sen, m3))
        if t.shape[0] == 0:
            return
        if t.shape[0] > 1 and np.any(np.diff(t) < 0.0):
            order = np.argsort(t, kind="stable")
            t, r, az, el, rr, sen, m3 = (np.ascontiguousarray(a[order]) for a in (t, r, az, el, rr, sen, m3))
        if self.direct:
            buf.released_s = max(buf.released_s, float(t[t.shape[0] - 1]))
            self._apply_plots(t, sen, r, az, el, rr, m3)
            return
        buf.push_plots((t, sen, r, az, el, rr, m3))
        self._release(None)

    def sector_swept(self, int sensor, double t_s, double az_from_rad, double az_to_rad):
        """The beam of sensor swept [az_from, az_to) clockwise by t_s: tracks there without a plot miss."""
        if not 0 <= sensor < self.n_sensors:
            raise ValueError(f"sensor {sensor} out of range 0..{self.n_sensors - 1}")
        buf = self._buffer
        if t_s < buf.released_s:
            self.cnt.late_sweeps += 1
        if self.direct:
            with nogil:
                self._sweep(sensor, t_s, az_from_rad, az_to_rad)
            return
        buf.push_sweep(t_s, (sensor, t_s, az_from_rad, az_to_rad))
        self._release(None)

    def flush(self, t_s=None):
        """Apply every buffered plot and sweep (up to t_s if given) now, whatever the reorder window."""
        self._release(np.inf if t_s is None else float(t_s))

    def tracks(self, t_s=None, bint confirmed_only=False):
        """Snapshot of live tracks (TrackSnapshot of arrays), predicted to t_s if given, ordered by track id.
        confirmed_only: only the confirmed ones (TrackStatus.CONFIRMED), e.g. for fire control, without a numpy
        filter."""
        cdef int n = self.n_live, k = 0, s, e
        cdef double dt
        cdef signed char min_status = ST_CONFIRMED if confirmed_only else ST_TENTATIVE
        self._compact_order()  # id_order now lists the live tracks, each once, by id
        if confirmed_only:
            n = 0
            for e in range(self.n_order):
                n += self.status[self.id_order[e]] == ST_CONFIRMED
        tid, status, state, cov, last, m3, hits = empty_track_columns(n)
        cdef long long* tid_p = <long long*> cnp.PyArray_DATA(tid)
        cdef signed char* st_p = <signed char*> cnp.PyArray_DATA(status)
        cdef double* x_p = <double*> cnp.PyArray_DATA(state)
        cdef double* P_p = <double*> cnp.PyArray_DATA(cov)
        cdef double* last_p = <double*> cnp.PyArray_DATA(last)
        cdef int* m3_p = <int*> cnp.PyArray_DATA(m3)
        cdef int* hits_p = <int*> cnp.PyArray_DATA(hits)
        cdef int predict = t_s is not None
        cdef double t = t_s if t_s is not None else 0.0
        with nogil:
            for e in range(self.n_order):
                s = self.id_order[e]
                if self.status[s] < min_status:
                    continue
                tid_p[k] = self.tid[s]
                st_p[k] = self.status[s]
                memcpy(x_p + k * NC, self.xc + s * NC, NC * sizeof(double))
                memcpy(P_p + k * NC * NC, self.Pc + s * NC * NC, NC * NC * sizeof(double))
                last_p[k] = self.t_upd[s]
                m3_p[k] = self.mode3a[s]
                hits_p[k] = self.hits[s]
                if predict:
                    dt = t - self.t_upd[s]
                    predict_cv(NC, x_p + k * NC, P_p + k * NC * NC, dt, self.prm.q_gate)
                k += 1
        return TrackSnapshot(tid, status, state, cov, last, m3, hits)

    def model_probabilities(self):
        """(track_id int64[n], mu float64[n, n_models]): the IMM's model probabilities (CV, turn left, turn right)."""
        cdef int s
        ids, mus = [], []
        for s in range(self.hi):
            if self.status[s] != ST_FREE:
                ids.append(self.tid[s])
                mus.append([self.mu[s * MAXM + m] for m in range(self.prm.n_models)])
        ids_a = np.array(ids, np.int64)
        order = np.argsort(ids_a)
        return ids_a[order], np.array(mus, dtype=np.float64).reshape(-1, self.prm.n_models)[order]

    # --- Python-side plumbing (per batch, not per plot) --------------------------------------------------

    def _release(self, until):
        for unit in self._buffer.pop_ready(until):
            if unit[0] == "plots":
                self._apply_plots(*unit[1:])
            else:
                self._sweep_py(*unit[1:])

    def _sweep_py(self, int sensor, double t_s, double a0, double a1):
        with nogil:
            self._sweep(sensor, t_s, a0, a1)

    def _apply_plots(self, t, sen, r, az, el, rr, m3):
        cdef const double[::1] tv = t, rv = r, azv = az, elv = el, rrv = rr
        cdef const int[::1] sv = sen, mv = m3
        cdef Py_ssize_t n = tv.shape[0]
        cdef int rc = 0
        with nogil:
            rc = self._runs(n, &tv[0], &sv[0], &rv[0], &azv[0], &elv[0], &rrv[0], &mv[0])
        if rc < 0:
            raise MemoryError("tracker scratch allocation failed")

    # --- the kernel ------------------------------------------------------------------------------------

    cdef int _runs(self, Py_ssize_t n, const double* t, const int* sen, const double* r, const double* az,
                   const double* el, const double* rr, const int* m3) noexcept nogil:
        """One assignment per run of consecutive plots from one sensor (a dwell, or a scan offline)."""
        cdef Py_ssize_t i0 = 0, i1
        while i0 < n:
            i1 = i0 + 1
            while i1 < n and sen[i1] == sen[i0]:
                i1 += 1
            if self._batch(sen[i0], i1 - i0, t + i0, r + i0, az + i0, el + i0, rr + i0, m3 + i0) < 0:
                return -1
            i0 = i1
        return 0

    cdef int _batch(self, int sensor, Py_ssize_t n, const double* t, const double* r, const double* az,
                    const double* el, const double* rr, const int* m3) noexcept nogil:
        cdef const double* site = self.sites + 3 * sensor
        cdef const double* sig2 = self.sig2 + 4 * sensor
        cdef double max_range = self.max_range[sensor]
        cdef Py_ssize_t j, idx, total = 0, npairs = 0
        cdef int s, k, b, nz, lo, hi, nbins = N_AZ_BINS
        cdef double binw = TWO_PI / N_AZ_BINS
        cdef double t0 = INFINITY, t1 = -INFINITY, g, d2
        cdef double z[NZ]
        if ibuf_reserve(&self.plot_trk, n) < 0 or ibuf_reserve(&self.plot_flag, n) < 0:
            return -1
        cdef int* plot_trk = self.plot_trk.p
        cdef int* flag = self.plot_flag.p  # bit 0 valid, bit 1 gated with any track, bit 2 with a confirmed one
        for j in range(n):
            plot_trk[j] = -1
            flag[j] = 0
            # bounds keep every later product finite: 1e8 m is past any radar horizon
            if (isfinite(r[j]) and 0.0 < r[j] < 1e8 and fabs(az[j]) < 1e3 and fabs(el[j]) < 1.5
                    and fabs(t[j]) < 1e12):
                flag[j] = 1
                if t[j] < t0:
                    t0 = t[j]
                if t[j] > t1:
                    t1 = t[j]
            else:
                self.cnt.bad_plots += 1
        if t1 < t0:
            return 0
        # coarse pre-gate: each track covers the azimuth bins (and a range window) where a plot could pass
        # the Mahalanobis gate of any of its models during [t0, t1]. A dwell's few plots are checked against
        # each track's window directly; a big batch goes through a bin index (counting sort) of the windows.
        if n <= SMALL_BATCH:
            for s in range(self.hi):
                if (self.status[s] == ST_FREE
                        or self._pregate(s, site, sig2, max_range, t0, t1, &lo, &hi, n, r, flag) < 0):
                    continue
                for j in range(n):
                    if not flag[j] & 1 or fabs(r[j] - self.pred_r[s]) > self.win_r[s]:
                        continue
                    b = _wrap_bin(<int>floor((az[j] - TWO_PI * floor(az[j] / TWO_PI)) / binw))
                    if hi - lo + 1 < nbins and _wrap_bin(b - lo) > hi - lo:
                        continue
                    if self._try_pair(s, j, t[j], r[j], az[j], el[j], rr[j], m3[j], site, sig2, &npairs) < 0:
                        return -1
        else:
            memset(self.bin_start, 0, (N_AZ_BINS + 1) * sizeof(int))
            for s in range(self.hi):
                self.bin_lo[s] = 1
                self.bin_hi[s] = 0
                if self.status[s] == ST_FREE or self._pregate(s, site, sig2, max_range, t0, t1, &lo, &hi, 0, NULL,
                                                        NULL) < 0:
                    continue
                self.bin_lo[s] = lo
                self.bin_hi[s] = hi
                for k in range(lo, hi + 1):
                    self.bin_start[_wrap_bin(k) + 1] += 1
                total += hi - lo + 1
            for k in range(nbins):
                self.bin_start[k + 1] += self.bin_start[k]
                self.bin_fill[k] = self.bin_start[k]
            if ibuf_reserve(&self.bin_items, total + 1) < 0:
                return -1
            for s in range(self.hi):
                for k in range(self.bin_lo[s], self.bin_hi[s] + 1):
                    b = _wrap_bin(k)
                    self.bin_items.p[self.bin_fill[b]] = s
                    self.bin_fill[b] += 1
            for j in range(n):
                if not flag[j] & 1:
                    continue
                b = _wrap_bin(<int>floor((az[j] - TWO_PI * floor(az[j] / TWO_PI)) / binw))
                for idx in range(self.bin_start[b], self.bin_start[b + 1]):
                    s = self.bin_items.p[idx]
                    if fabs(r[j] - self.pred_r[s]) > self.win_r[s]:
                        continue
                    if self._try_pair(s, j, t[j], r[j], az[j], el[j], rr[j], m3[j], site, sig2, &npairs) < 0:
                        return -1
        if npairs > 0 and self._assign(npairs, n) < 0:
            return -1
        # apply: updates, then initiation from plots no confirmed track could have taken
        for j in range(n):
            if not flag[j] & 1:
                continue
            nz = 4 if (self.prm.use_range_rate and isfinite(rr[j]) and fabs(rr[j]) < 1e5) else 3
            z[0] = r[j]
            z[1] = az[j] - TWO_PI * floor(az[j] / TWO_PI)
            z[2] = el[j]
            z[3] = rr[j]
            s = plot_trk[j]
            if s >= 0:
                self._update(s, sensor, t[j], z, nz, m3[j])
                self.cnt.plots_used += 1
            else:
                if not flag[j] & 2:
                    self.cnt.gated_out += 1
                if not flag[j] & 4:
                    self._initiate(sensor, t[j], z, nz, m3[j])
        return 0

    cdef int _try_pair(self, int s, Py_ssize_t j, double t, double r, double az, double el, double rr, int code,
                       const double* site, const double* sig2, Py_ssize_t* npairs) noexcept nogil:
        """Fine gate of plot j against track s; a pair inside the gate is recorded with its cost d²/gate and its
        IFF cost (iff_penalty / gate). A confirmed track keeps the plot from starting a track (flag bit 2)
        unless its identity disagrees with the plot's code: then the plot may well be another aircraft."""
        cdef double z[NZ]
        cdef int nz = 4 if (self.prm.use_range_rate and isfinite(rr) and fabs(rr) < 1e5) else 3
        cdef double g = self.prm.gate4 if nz == 4 else self.prm.gate3
        cdef double d2, pen
        cdef Py_ssize_t k = npairs[0]
        z[0] = r
        z[1] = az - TWO_PI * floor(az / TWO_PI)
        z[2] = el
        z[3] = rr
        self.cnt.gate_tests += 1
        d2 = self._gate_distance(s, t, z, nz, site, sig2)
        if d2 >= g:
            return 0
        if (ibuf_reserve(&self.pair_s, k + 1) < 0 or ibuf_reserve(&self.pair_j, k + 1) < 0
                or dbuf_reserve(&self.pair_c, k + 1) < 0 or dbuf_reserve(&self.pair_pen, k + 1) < 0):
            return -1
        self.pair_s.p[k] = s
        self.pair_j.p[k] = <int>j
        self.pair_c.p[k] = d2 / g
        pen = iff_penalty(&self.prm, self.iff_expect[s], code) / g
        self.pair_pen.p[k] = pen
        npairs[0] = k + 1
        self.plot_flag.p[j] |= 2
        if self.status[s] == ST_CONFIRMED and pen == 0.0:
            self.plot_flag.p[j] |= 4
        return 0

    cdef int _pregate(self, int s, const double* site, const double* sig2, double max_range, double t0, double t1,
                      int* lo_out, int* hi_out, Py_ssize_t n, const double* r, const int* flag) noexcept nogil:
        """Azimuth bins [lo, hi] and range window (pred_r, win_r) outside which no plot of [t0, t1] can gate
        with track s. Position spreads add as standard deviations (Minkowski), so the bound holds whatever
        the correlations: sd <= sqrt(tr Ppp) + T sqrt(tr Pvv) [+ speed T²/2 sqrt(P_ww) for a turn model],
        and a turn at rate w bends the mean at most |w| speed T²/2 away from the straight line.
        Given the batch's n plots (range r, flag bit 0 valid), returns -1 as soon as the range window holds
        none of them, before the costlier azimuth bound: most tracks are far in range from a dwell's plots."""
        cdef double g = self.prm.gate4, binw = TWO_PI / N_AZ_BINS, span = t1 - t0
        cdef double rmin = INFINITY, rmax = -INFINITY, amin = INFINITY, amax = -INFINITY
        cdef double T, sd, speed, extra, pz, rng, rw, w, az, rho, q
        cdef double trp[MAXG]
        cdef double move[MAXG]
        cdef double px[MAXG]
        cdef double py[MAXG]
        cdef double rho0[MAXG]
        cdef const double* x
        cdef const double* ps
        cdef double om, pw
        cdef int m, k, nm = self.prm.n_models
        cdef int ng = nm + 2 if self._straight(s) else nm
        cdef Py_ssize_t j
        for k in range(ng):  # as _gate_distance: the models, then (flying straight) both turns entered from CV
            if k < nm:
                m = k
                x = self.x + (s * MAXM + m) * NX
                ps = self.psum + (s * MAXM + m) * NPS
                om = x[6]
                pw = ps[2]
            else:
                m = k - nm + 1
                x = self.x + s * MAXM * NX
                ps = self.psum + s * MAXM * NPS
                om = self._entry_rate(s, m, &pw)
            T = fabs(t0 - self.t_upd[s])
            if fabs(t1 - self.t_upd[s]) > T:
                T = fabs(t1 - self.t_upd[s])
            speed = sqrt(x[3] * x[3] + x[4] * x[4] + x[5] * x[5])
            sd = sqrt(ps[0]) + T * sqrt(ps[1])
            extra = 0.0
            q = self.prm.q_cv
            if m > 0:
                q = self.prm.q_ct
                sd += 0.5 * speed * T * T * sqrt(pw)
                extra = 0.5 * fabs(om) * speed * T * T
            trp[k] = sd * sd + q * T * T * T
            move[k] = speed * span + extra
            px[k] = x[0] + (t0 - self.t_upd[s]) * x[3] - site[0]
            py[k] = x[1] + (t0 - self.t_upd[s]) * x[4] - site[1]
            pz = x[2] + (t0 - self.t_upd[s]) * x[5] - site[2]
            rho0[k] = hypot(px[k], py[k])
            rng = sqrt(rho0[k] * rho0[k] + pz * pz)
            rw = sqrt(g * (trp[k] + sig2[0])) + move[k] + 1.0
            if rng - rw < rmin:
                rmin = rng - rw
            if rng + rw > rmax:
                rmax = rng + rw
        self.pred_r[s] = 0.5 * (rmin + rmax)
        self.win_r[s] = 0.5 * (rmax - rmin)
        if n > 0:
            for j in range(n):
                if flag[j] & 1 and not fabs(r[j] - self.pred_r[s]) > self.win_r[s]:
                    break
            else:
                return -1
        for k in range(ng):
            rho = rho0[k] - move[k] - sqrt(g * trp[k])
            if rho <= 1.0 or move[k] / rho > 0.5:
                amin, amax = -INFINITY, INFINITY
                continue
            w = sqrt(g * (trp[k] / (rho * rho) + sig2[1])) + 1.1 * move[k] / rho + 1e-4
            az = atan2(px[k], py[k])
            if az - w < amin:
                amin = az - w
            if az + w > amax:
                amax = az + w
        if rmin > max_range or not (isfinite(rmin) and isfinite(rmax)) or isnan(amin) or isnan(amax):
            return -1  # out of this sensor's reach (or a state gone non-finite, which the next sweep deletes)
        if amax - amin >= TWO_PI:
            lo_out[0], hi_out[0] = 0, N_AZ_BINS - 1
        else:
            lo_out[0] = <int>floor(amin / binw)
            hi_out[0] = <int>floor(amax / binw)
            if hi_out[0] - lo_out[0] + 1 >= N_AZ_BINS:
                lo_out[0], hi_out[0] = 0, N_AZ_BINS - 1
        return 0

    cdef void _refresh_sums(self, int s) noexcept nogil:
        """The covariance sums the pre-gate and the sweep read, after the track's state changed: kept in
        small per-slot blocks so a dwell touches a line or two per track, not its whole covariances."""
        cdef const double* P
        cdef double* ps
        cdef const double* Pc = self.Pc + s * NC * NC
        cdef double* tr = self.ptrace + s * NPS
        cdef int m
        for m in range(MAXM):
            P = self.P + (s * MAXM + m) * NX * NX
            ps = self.psum + (s * MAXM + m) * NPS
            ps[0] = P[0] + P[NX + 1] + P[2 * NX + 2]
            ps[1] = P[3 * NX + 3] + P[4 * NX + 4] + P[5 * NX + 5]
            ps[2] = P[6 * NX + 6]
        # _pos_trace's three sums of the combined covariance, added in the order it adds them
        tr[0] = Pc[0] + Pc[7] + Pc[14]
        tr[1] = Pc[3] + Pc[10] + Pc[17]
        tr[2] = Pc[21] + Pc[28] + Pc[35]

    cdef inline double _entry_rate(self, int s, int j, double* var) noexcept nogil:
        """Turn-entry prior of turn model j (1 left, 2 right) for track s: rate, and its variance in var."""
        cdef const double* xc = self.xc + s * NC
        cdef double speed = fmax(hypot(xc[3], xc[4]), self.prm.turn_min_speed)
        var[0] = (self.prm.turn_entry_sigma_acc / speed) ** 2
        return self.prm.turn_entry_acc / speed if j == 1 else -self.prm.turn_entry_acc / speed

    cdef void _entry(self, int s, const double* xsrc, const double* Psrc, int j, double* xo,
                     double* Po) noexcept nogil:
        """A model's state as it enters turn model j: its kinematics, the turn-entry prior for the rate."""
        cdef int a
        cdef double var
        memcpy(xo, xsrc, NX * sizeof(double))
        memcpy(Po, Psrc, NX * NX * sizeof(double))
        xo[6] = self._entry_rate(s, j, &var)
        for a in range(NX):
            Po[6 * NX + a] = 0.0
            Po[a * NX + 6] = 0.0
        Po[6 * NX + 6] = var

    cdef inline bint _straight(self, int s) noexcept nogil:
        """The IMM holds the track flying straight: a plot is also gated against turns starting now."""
        return self.prm.n_models > 1 and self.mu[s * MAXM] >= 0.5

    cdef double _gate_distance(self, int s, double t, const double* z, int nz, const double* site,
                               const double* sig2) noexcept nogil:
        """Smallest Mahalanobis distance² of a plot to the predictions of the track's models (INFINITY if none).
        While the track flies straight and no model's prediction gates the plot, both turns are also tried as
        entered from the CV state (_entry): the gate then holds the first plots of a turn, which a turn
        model's own state, fitted to straight flight, may not (and the models' own states keep a turn that
        has begun before the IMM has switched)."""
        cdef double xg[NX]
        cdef double Pg[NX * NX]
        cdef double nu[NZ]
        cdef double S[NZ * NZ]
        cdef double H[NZ * NX]
        cdef double PHt[NX * NZ]
        cdef double d2, ld, best = INFINITY, dt = t - self.t_upd[s]
        cdef double g = self.prm.gate4 if nz == 4 else self.prm.gate3
        cdef int m, k, nm = self.prm.n_models
        cdef int ng = nm + 2 if self._straight(s) else nm
        for k in range(ng):
            if k == nm and best < g:
                break
            if k < nm:
                m = k
                memcpy(xg, self.x + (s * MAXM + m) * NX, NX * sizeof(double))
                memcpy(Pg, self.P + (s * MAXM + m) * NX * NX, NX * NX * sizeof(double))
            else:
                m = k - nm + 1
                self._entry(s, self.x + s * MAXM * NX, self.P + s * MAXM * NX * NX, m, xg, Pg)
            if range_gated_out(m > 0, xg, Pg, dt, self.prm.q_ct if m > 0 else self.prm.q_cv, site, z[0], sig2[0], g):
                continue  # d² >= g on the range alone: spare the full prediction and innovation
            if m == 0:
                predict_cv(NX, xg, Pg, dt, self.prm.q_cv, self.prm.init_omega_sigma ** 2)
            else:
                predict_ct(xg, Pg, dt, self.prm.q_ct, self.prm.q_omega)
            if innovation(NX, xg, Pg, z, nz, site, sig2, nu, S, H, &d2, &ld, PHt) == 0 and d2 < best:
                best = d2
        return best

    cdef int _assign(self, Py_ssize_t npairs, Py_ssize_t n) noexcept nogil:
        """GNN: connected clusters of gated (track, plot) pairs, each solved on its own with JV."""
        cdef Py_ssize_t k, q
        cdef int s, j, ntl = 0, nodes, a, b, ncl = 0, c, nt, np_, N, i, col
        if ibuf_reserve(&self.slot_of_loc, npairs) < 0:
            return -1
        for k in range(npairs):
            s = self.pair_s.p[k]
            if self.loc_of_slot[s] < 0:
                self.loc_of_slot[s] = ntl
                self.slot_of_loc.p[ntl] = s
                ntl += 1
        nodes = ntl + <int>n
        if (dbuf_reserve(&self.trk_minpen, ntl) < 0 or dbuf_reserve(&self.plot_minpen, n) < 0
                or ibuf_reserve(&self.uf, nodes) < 0 or ibuf_reserve(&self.cl_of_root, nodes) < 0
                or ibuf_reserve(&self.pair_cl, npairs) < 0 or ibuf_reserve(&self.cl_start, nodes + 1) < 0
                or ibuf_reserve(&self.cl_pairs, npairs) < 0 or ibuf_reserve(&self.tloc, ntl) < 0
                or ibuf_reserve(&self.ploc, n) < 0 or ibuf_reserve(&self.tl, ntl) < 0
                or ibuf_reserve(&self.pl, n) < 0):
            self._reset_loc(ntl)
            return -1
        cdef int* uf = self.uf.p
        for a in range(nodes):
            uf[a] = a
            self.cl_of_root.p[a] = -1
        for a in range(ntl):
            self.tloc.p[a] = -1
        for a in range(<int>n):
            self.ploc.p[a] = -1
        # each track's and each plot's smallest IFF cost among its gated pairs (see the cost matrix below)
        for a in range(ntl):
            self.trk_minpen.p[a] = INFINITY
        for a in range(<int>n):
            self.plot_minpen.p[a] = INFINITY
        for k in range(npairs):
            a = self.loc_of_slot[self.pair_s.p[k]]
            self.trk_minpen.p[a] = fmin(self.trk_minpen.p[a], self.pair_pen.p[k])
            self.plot_minpen.p[self.pair_j.p[k]] = fmin(self.plot_minpen.p[self.pair_j.p[k]], self.pair_pen.p[k])
        for k in range(npairs):
            a = uf_find(uf, self.loc_of_slot[self.pair_s.p[k]])
            b = uf_find(uf, ntl + self.pair_j.p[k])
            if a != b:
                uf[a] = b
        for k in range(npairs):
            a = uf_find(uf, self.loc_of_slot[self.pair_s.p[k]])
            if self.cl_of_root.p[a] < 0:
                self.cl_of_root.p[a] = ncl
                ncl += 1
            self.pair_cl.p[k] = self.cl_of_root.p[a]
        for c in range(ncl + 1):
            self.cl_start.p[c] = 0
        for k in range(npairs):
            self.cl_start.p[self.pair_cl.p[k] + 1] += 1
        for c in range(ncl):
            self.cl_start.p[c + 1] += self.cl_start.p[c]
        # counting sort of pairs by cluster (uf reused as the fill cursor)
        for c in range(ncl):
            uf[c] = self.cl_start.p[c]
        for k in range(npairs):
            c = self.pair_cl.p[k]
            self.cl_pairs.p[uf[c]] = <int>k
            uf[c] += 1
        self.cnt.clusters += ncl
        for c in range(ncl):
            a = self.cl_start.p[c]
            b = self.cl_start.p[c + 1]
            if b - a == 1:
                k = self.cl_pairs.p[a]
                self.plot_trk.p[self.pair_j.p[k]] = self.pair_s.p[k]
                continue
            nt = 0
            np_ = 0
            for q in range(a, b):
                k = self.cl_pairs.p[q]
                i = self.loc_of_slot[self.pair_s.p[k]]
                if self.tloc.p[i] < 0:
                    self.tloc.p[i] = nt
                    self.tl.p[nt] = self.pair_s.p[k]
                    nt += 1
                j = self.pair_j.p[k]
                if self.ploc.p[j] < 0:
                    self.ploc.p[j] = np_
                    self.pl.p[np_] = j
                    np_ += 1
            N = nt + np_
            if N > BIG_CLUSTER:
                self.cnt.big_clusters += 1
            if (dbuf_reserve(&self.cost, N * N) < 0 or dbuf_reserve(&self.work, 3 * N) < 0
                    or ibuf_reserve(&self.iwork, 4 * N) < 0 or ibuf_reserve(&self.r2c, N) < 0):
                self._reset_loc(ntl)
                return -1
            # rows: tracks then one dummy row per plot (plot starts a track); columns: plots then one dummy
            # column per track (track misses); a gated pair costs d²/gate, leaving both unassigned costs 1.
            # IFF adds the part of a pair's disagreement that the track or the plot could avoid with another
            # gated pairing (beyond the smaller of their best IFF costs): where neither has a better-matching
            # alternative, as in a cluster of one pair (above), position alone decides
            for q in range(N * N):
                self.cost.p[q] = FORBIDDEN
            for i in range(nt):
                self.cost.p[i * N + np_ + i] = 0.5
            for j in range(np_):
                self.cost.p[(nt + j) * N + j] = 0.5
                for i in range(nt):
                    self.cost.p[(nt + j) * N + np_ + i] = 0.0
            for q in range(a, b):
                k = self.cl_pairs.p[q]
                i = self.tloc.p[self.loc_of_slot[self.pair_s.p[k]]]
                j = self.ploc.p[self.pair_j.p[k]]
                self.cost.p[i * N + j] = self.pair_c.p[k] + (self.pair_pen.p[k] - fmin(
                    self.trk_minpen.p[self.loc_of_slot[self.pair_s.p[k]]], self.plot_minpen.p[self.pair_j.p[k]]))
            square_assign(N, self.cost.p, self.r2c.p, self.work.p, self.iwork.p)
            for i in range(nt):
                col = self.r2c.p[i]
                if col < np_ and self.cost.p[i * N + col] < FORBIDDEN:
                    self.plot_trk.p[self.pl.p[col]] = self.tl.p[i]
            for i in range(nt):
                self.tloc.p[self.loc_of_slot[self.tl.p[i]]] = -1
            for j in range(np_):
                self.ploc.p[self.pl.p[j]] = -1
        self._reset_loc(ntl)
        return 0

    cdef void _reset_loc(self, int ntl) noexcept nogil:
        cdef int i
        for i in range(ntl):
            self.loc_of_slot[self.slot_of_loc.p[i]] = -1

    cdef void _update(self, int s, int sensor, double t, const double* z, int nz, int m3) noexcept nogil:
        cdef const double* site = self.sites + 3 * sensor
        cdef const double* sig2 = self.sig2 + 4 * sensor
        cdef double* x0 = self.x + s * MAXM * NX
        cdef double* P0 = self.P + s * MAXM * NX * NX
        cdef double dt = t - self.t_upd[s]
        cdef double d2, ld
        if self.prm.n_models == 1:
            predict_cv(NX, x0, P0, dt, self.prm.q_cv, self.prm.init_omega_sigma ** 2)
            ekf_update(NX, x0, P0, z, nz, site, sig2, &d2, &ld)
        else:
            self._imm_step(s, dt, z, nz, site, sig2)
        self._combine(s)
        self._refresh_sums(s)
        self.t_upd[s] = t
        self.pending[s] |= (1u << sensor)
        self.hits[s] += 1
        self._iff_push(s, m3)

    cdef void _iff_push(self, int s, int code) noexcept nogil:
        """Add a plot's code (< 0: none) to track s's evidence. Its identity changes only to an answer (a code,
        or no code) seen in k of the last n plots, and only once its own has fallen below k there; ties go to
        the answer seen most recently. Association weighs the identity while the evidence still holds it."""
        cdef int n = self.prm.iff_window, k = self.prm.iff_k, m = self.iff_len[s], a, b, v, c
        cdef int* ring = self.iff_codes + s * n
        cdef int have = 0, best, n_best
        if code < 0:
            code = -1
        ring[self.iff_head[s]] = code
        self.iff_head[s] += 1
        if self.iff_head[s] == n:
            self.iff_head[s] = 0
        if m < n:
            m += 1
            self.iff_len[s] = m
        if code == self.mode3a[s] == self.iff_expect[s]:
            # the usual plot: it agrees with an identity its evidence holds, which one more vote cannot change
            return
        for a in range(m):
            have += ring[a] == self.mode3a[s]
        best, n_best = self.mode3a[s], have
        for a in range(m):  # newest first: the ring's slots before head, then from the end
            v = ring[(self.iff_head[s] - 1 - a + n) % n]
            c = 0
            for b in range(m):
                c += ring[b] == v
            if c > n_best:
                best, n_best = v, c
        if have < k <= n_best:
            self.mode3a[s], have = best, n_best
        self.iff_expect[s] = self.mode3a[s] if have >= k else IFF_UNKNOWN

    cdef void _imm_step(self, int s, double dt, const double* z, int nz, const double* site,
                        const double* sig2) noexcept nogil:
        """One IMM cycle: mix, predict each model to the plot, update each, reweight by likelihood.
        Models: 0 CV, 1 turn left (entered at a positive turn rate), 2 turn right. The chain moves CV to
        either turn at half the CV-to-turn rate, a turn back to CV or into the opposite sense (a reversal).
        What another model brings into a turn model is its position and velocity with the turn-entry
        prior for the rate: +-entry acceleration / horizontal speed, with its spread (see
        TrackerConfig.turn_entry_g). So the CV model's lack of a turn rate does not pull a turn model to
        straight flight, and the unused sense is re-seeded beside the track instead of drifting off."""
        cdef double* xs = self.x + s * MAXM * NX
        cdef double* Ps = self.P + s * MAXM * NX * NX
        cdef double* mu = self.mu + s * MAXM
        cdef double adt = fabs(dt)
        cdef double p01 = 1.0 - exp(-self.prm.rate01 * adt)
        cdef double rout = self.prm.rate10 + self.prm.rate_rev
        cdef double pout = 1.0 - exp(-rout * adt), p10 = 0.0, prev = 0.0
        cdef double Pi[MAXM][MAXM]
        cdef double cbar[MAXM]
        cdef double wmix[MAXM][MAXM]
        cdef double xm[MAXM][NX]
        cdef double Pm[MAXM][NX * NX]
        cdef double ll[MAXM]
        cdef double d[NX]
        cdef double xsrc[MAXM][NX]
        cdef double Psrc[MAXM][NX * NX]
        cdef const double* xi[MAXM]
        cdef const double* Pii[MAXM]
        cdef double d2, ld, llmax, tot
        cdef int i, j, a, b
        cdef int ok[MAXM]
        if rout > 0.0:
            p10 = pout * self.prm.rate10 / rout
            prev = pout * self.prm.rate_rev / rout
        Pi[0][0] = 1.0 - p01
        Pi[0][1] = Pi[0][2] = 0.5 * p01
        Pi[1][0] = Pi[2][0] = p10
        Pi[1][1] = Pi[2][2] = 1.0 - pout
        Pi[1][2] = Pi[2][1] = prev
        for j in range(MAXM):
            cbar[j] = Pi[0][j] * mu[0] + Pi[1][j] * mu[1] + Pi[2][j] * mu[2]
            for i in range(MAXM):
                # a model nothing can reach (zero rates, or a zero first probability) keeps its own state
                wmix[i][j] = Pi[i][j] * mu[i] / cbar[j] if cbar[j] > 1e-300 else (1.0 if i == j else 0.0)
        for j in range(MAXM):
            for i in range(MAXM):
                if j > 0 and i != j:  # entering turn j from model i
                    self._entry(s, xs + i * NX, Ps + i * NX * NX, j, xsrc[i], Psrc[i])
                    xi[i] = xsrc[i]
                    Pii[i] = Psrc[i]
                else:
                    xi[i] = xs + i * NX
                    Pii[i] = Ps + i * NX * NX
            for a in range(NX):
                xm[j][a] = wmix[0][j] * xi[0][a] + wmix[1][j] * xi[1][a] + wmix[2][j] * xi[2][a]
            for a in range(NX * NX):
                Pm[j][a] = 0.0
            for i in range(MAXM):
                if wmix[i][j] == 0.0:
                    continue
                for a in range(NX):
                    d[a] = xi[i][a] - xm[j][a]
                for a in range(NX):
                    for b in range(NX):
                        Pm[j][a * NX + b] += wmix[i][j] * (Pii[i][a * NX + b] + d[a] * d[b])
        predict_cv(NX, xm[0], Pm[0], dt, self.prm.q_cv, self.prm.init_omega_sigma ** 2)
        for j in range(1, MAXM):
            predict_ct(xm[j], Pm[j], dt, self.prm.q_ct, self.prm.q_omega)
        llmax = -INFINITY
        for j in range(MAXM):
            ok[j] = ekf_update(NX, xm[j], Pm[j], z, nz, site, sig2, &d2, &ld) == 0
            ll[j] = -0.5 * (d2 + ld) if ok[j] else -INFINITY
            if ll[j] > llmax:
                llmax = ll[j]
        if llmax == -INFINITY:
            for j in range(MAXM):  # no usable geometry: keep the predictions
                ll[j] = 0.0
            llmax = 0.0
        tot = 0.0
        for j in range(MAXM):
            mu[j] = cbar[j] * exp(ll[j] - llmax)
            if mu[j] < 1e-6:
                mu[j] = 1e-6
            tot += mu[j]
        for j in range(MAXM):
            mu[j] /= tot
            memcpy(xs + j * NX, xm[j], NX * sizeof(double))
            memcpy(Ps + j * NX * NX, Pm[j], NX * NX * sizeof(double))

    cdef void _combine(self, int s) noexcept nogil:
        """Moment-matched combined 6-D state of the track's models."""
        cdef double* xs = self.x + s * MAXM * NX
        cdef double* Ps = self.P + s * MAXM * NX * NX
        cdef double* mu = self.mu + s * MAXM
        cdef double* xc = self.xc + s * NC
        cdef double* Pc = self.Pc + s * NC * NC
        cdef int m, a, b, nm = self.prm.n_models
        cdef double d[NC]
        for a in range(NC):
            xc[a] = 0.0
            for m in range(nm):
                xc[a] += mu[m] * xs[m * NX + a]
        for a in range(NC * NC):
            Pc[a] = 0.0
        for m in range(nm):
            for a in range(NC):
                d[a] = xs[m * NX + a] - xc[a]
            for a in range(NC):
                for b in range(NC):
                    Pc[a * NC + b] += mu[m] * (Ps[m * NX * NX + a * NX + b] + d[a] * d[b])

    cdef void _initiate(self, int sensor, double t, const double* z, int nz, int m3) noexcept nogil:
        """A tentative track from one plot: position from the plot, velocity from its range-rate (if any)."""
        cdef const double* site = self.sites + 3 * sensor
        cdef const double* sig2 = self.sig2 + 4 * sensor
        cdef int s, m, a, b, k
        cdef double sa = sin(z[1]), ca = cos(z[1]), se = sin(z[2]), ce = cos(z[2]), r = z[0]
        cdef double J[9]
        cdef double u[3]
        cdef double x[NX]
        cdef double P[NX * NX]
        cdef double acc, vr = 0.0, sv2 = self.prm.init_speed_sigma * self.prm.init_speed_sigma, srr2, p_turn
        if self.n_free == 0:
            self.cnt.dropped_full += 1
            return
        self.n_free -= 1
        s = self.free_stack[self.n_free]
        if s >= self.hi:
            self.hi = s + 1
        u[0] = ce * sa
        u[1] = ce * ca
        u[2] = se
        # columns: d/d range, d/d azimuth, d/d elevation of the ENU position
        J[0] = u[0]
        J[3] = u[1]
        J[6] = u[2]
        J[1] = r * ce * ca
        J[4] = -r * ce * sa
        J[7] = 0.0
        J[2] = -r * se * sa
        J[5] = -r * se * ca
        J[8] = r * ce
        memset(P, 0, sizeof(P))
        for a in range(3):
            x[a] = site[a] + r * u[a]
            for b in range(3):
                acc = 0.0
                for k in range(3):
                    acc = acc + J[a * 3 + k] * sig2[k] * J[b * 3 + k]
                P[a * NX + b] = acc
        if nz == 4:
            vr = z[3]
            srr2 = sig2[3]
        else:
            srr2 = sv2
        for a in range(3):
            x[3 + a] = vr * u[a]
            for b in range(3):
                P[(3 + a) * NX + 3 + b] = sv2 * ((1.0 if a == b else 0.0) - u[a] * u[b]) + srr2 * u[a] * u[b]
        x[6] = 0.0
        P[6 * NX + 6] = self.prm.init_omega_sigma * self.prm.init_omega_sigma
        for m in range(MAXM):
            memcpy(self.x + (s * MAXM + m) * NX, x, NX * sizeof(double))
            memcpy(self.P + (s * MAXM + m) * NX * NX, P, NX * NX * sizeof(double))
        if self.prm.n_models == 1:
            self.mu[s * MAXM] = 1.0
            self.mu[s * MAXM + 1] = self.mu[s * MAXM + 2] = 0.0
        else:  # kept off 0 and 1 as the IMM's update keeps every probability (the mixing divides by them)
            p_turn = fmin(fmax(self.prm.init_mu_ct, 2e-6), 1.0 - 1e-6)
            self.mu[s * MAXM] = 1.0 - p_turn
            self.mu[s * MAXM + 1] = self.mu[s * MAXM + 2] = 0.5 * p_turn
        self._combine(s)
        self._refresh_sums(s)
        self.tid[s] = self.next_id
        self.next_id += 1
        self.status[s] = ST_TENTATIVE
        self.t_upd[s] = t
        self.hits[s] = 1
        self.misses[s] = 0
        self.opp[s] = 0
        self.hist[s] = 0
        self.pending[s] = 1u << sensor
        self.mode3a[s] = -1
        self.iff_len[s] = 0
        self.iff_head[s] = 0
        self._iff_push(s, m3)
        self.n_live += 1
        self.cnt.new_tracks += 1
        if self.n_order == self.capacity:
            self._compact_order()
        self.id_order[self.n_order] = s
        self.id_order_tid[self.n_order] = self.tid[s]
        self.n_order += 1

    cdef void _compact_order(self) noexcept nogil:
        """Drop the id-order entries of deleted tracks, or of slots a newer track has taken (listed further on):
        n_live entries stay, in track-id order."""
        cdef int e, s, kept = 0
        for e in range(self.n_order):
            s = self.id_order[e]
            if self.status[s] != ST_FREE and self.tid[s] == self.id_order_tid[e]:
                self.id_order[kept] = s
                self.id_order_tid[kept] = self.id_order_tid[e]
                kept += 1
        self.n_order = kept

    cdef void _delete(self, int s) noexcept nogil:
        self.status[s] = ST_FREE
        self.free_stack[self.n_free] = s
        self.n_free += 1
        self.n_live -= 1
        self.cnt.deleted += 1

    cdef void _sweep(self, int sensor, double t, double a0, double a1) noexcept nogil:
        """Hit/miss bookkeeping of every track the beam of sensor just swept; confirmation and deletion."""
        cdef const double* site = self.sites + 3 * sensor
        cdef double max_range = self.max_range[sensor]
        cdef int full = (a1 - a0) >= TWO_PI - 1e-9
        cdef double width = a1 - a0
        cdef double dt, px, py, pz, azt, off
        cdef unsigned int bit = 1u << sensor, nmask
        cdef int s, hit, nh
        cdef double* xs
        width = width - TWO_PI * floor(width / TWO_PI)
        nmask = (1u << self.prm.confirm_n) - 1u
        for s in range(self.hi):
            if self.status[s] == ST_FREE:
                continue
            xs = self.xc + s * NC
            dt = t - self.t_upd[s]
            px = xs[0] + dt * xs[3] - site[0]
            py = xs[1] + dt * xs[4] - site[1]
            pz = xs[2] + dt * xs[5] - site[2]
            if not full:
                azt = atan2(px, py)
                off = azt - a0
                off = off - TWO_PI * floor(off / TWO_PI)
                if off >= width:
                    continue
            if sqrt(px * px + py * py + pz * pz) > max_range:
                continue
            hit = (self.pending[s] & bit) != 0
            self.pending[s] &= ~bit
            self.hist[s] = (self.hist[s] << 1) | (<unsigned int>hit)
            if hit:
                self.misses[s] = 0
            else:
                self.misses[s] += 1
            if not _pos_trace(self.ptrace + s * NPS, dt, self.prm.q_gate) <= self.prm.max_pos_var:  # NaN too
                self._delete(s)
                continue
            if self.status[s] == ST_TENTATIVE:
                self.opp[s] += 1
                nh = popcount(self.hist[s] & nmask)
                if nh >= self.prm.confirm_m:
                    self.status[s] = ST_CONFIRMED
                    self.cnt.confirmed += 1
                elif self.opp[s] >= self.prm.confirm_n or nh + self.prm.confirm_n - self.opp[s] < self.prm.confirm_m:
                    self._delete(s)
            elif self.misses[s] >= self.prm.delete_misses:
                self._delete(s)


cdef inline double iff_penalty(const Params* prm, int expect, int code) noexcept nogil:
    """Association cost (distance² units) of a plot with code (< 0: none) for a track that shows expect."""
    if code < 0:
        code = -1
    if expect == IFF_UNKNOWN or code == expect:
        return 0.0
    return prm.iff_missing if code < 0 else prm.iff_unexpected


cdef inline int _wrap_bin(int k) noexcept nogil:
    k = k % N_AZ_BINS
    return k + N_AZ_BINS if k < 0 else k


cdef inline double _pos_trace(const double* tr, double dt, double q) noexcept nogil:
    """Trace of the position block of a combined covariance predicted dt ahead under CV with noise q, from
    its sums tr (Tracker._refresh_sums): tr_pp + 2 dt tr_pv + dt² tr_vv + q |dt|³."""
    cdef double a = fabs(dt)
    return tr[0] + 2.0 * dt * tr[1] + dt * dt * tr[2] + q * a * a * a


cdef double* _dptr(object arr):
    cdef double[::1] v = arr
    return &v[0]


cdef long long* _lptr(object arr):
    cdef long long[::1] v = arr
    return &v[0]


cdef int* _iptr(object arr):
    cdef int[::1] v = arr
    return &v[0]


cdef unsigned int* _uptr(object arr):
    cdef unsigned int[::1] v = arr
    return &v[0]


cdef signed char* _bptr(object arr):
    cdef signed char[::1] v = arr
    return &v[0]


cdef object _f64(object x):
    """x as a float64 1-D C-contiguous array: itself when it already is one."""
    if fits(x, cnp.NPY_FLOAT64, 1):
        return x
    return np.ascontiguousarray(x, dtype=np.float64).reshape(-1)


cdef object _i32_n(object x, Py_ssize_t n):
    """x (an array or a scalar for every plot) as int32[n]: itself when it already is one."""
    if fits(x, cnp.NPY_INT32, 1) and cnp.PyArray_DIM(x, 0) == n:
        return x
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x), (n,)), dtype=np.int32)
