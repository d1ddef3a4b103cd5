# cython: language_level=3
# distutils: extra_compile_args = -ffp-contract=off
"""The tracks fire control sees, picked from a track snapshot in one pass: hil.host.host.Host.fire_control_view's
hot part, compiled (its plain numpy twin is ext/reference/track_view.py; tests/kernels/test_track_view.py holds
the two to the same answer, bit for bit).

From every live track (status, Mode 3/A code, state, covariance), with the scenario's friendly and neutral codes
and the radius within which an unidentified track holds a confirmed one:
- friendly: its code is a friendly one; neutral: a neutral one and not a friendly one; protected: either;
- fire control sees every confirmed or protected track, in snapshot order;
- a confirmed track with an unidentified one (not confirmed, no code) within near_m goes to fire control as
  TENTATIVE (held); held_by names, in snapshot rows, the first such track (the lowest row);
- per track seen: the trace of its position covariance and of its velocity covariance.

Each float operation is numpy's in the reference, in the same order and without fused multiply-add.
"""

cimport numpy as cnp
from libc.math cimport fabs

from hil.ext.arrays cimport as_array, empty1, empty2, empty_track_columns, lower_bound

import numpy as np

from hil.ext.tracker_types import TrackSnapshot, TrackStatus

cnp.import_array()

cdef signed char CONFIRMED = <signed char> int(TrackStatus.CONFIRMED)
cdef signed char TENTATIVE = <signed char> int(TrackStatus.TENTATIVE)
DEF NC = 6
DEF SORTED_FROM = 4096  # confirmed x unidentified pairs beyond which the search goes through the east order


cdef inline bint near(const double* x, Py_ssize_t i, Py_ssize_t j, double near_m, double near2) noexcept nogil:
    """Track j within near_m of track i: east-west first, then the distance (the reference's test, in its order)."""
    cdef double dx = x[i * NC] - x[j * NC], dy, dz
    if not (fabs(dx) <= near_m):
        return False
    dy = x[i * NC + 1] - x[j * NC + 1]
    dz = x[i * NC + 2] - x[j * NC + 2]
    return dx * dx + dy * dy + dz * dz <= near2


cdef inline bint in_codes(int code, const int* codes, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        if codes[k] == code:
            return True
    return False


def fire_control_rows(snapshot, friendly_codes, neutral_codes, double near_m):
    """(tracks, pos_var_m2, friendly, neutral, vel_var_m2s2, held, protected_rows): the TrackSnapshot fire control
    sees (confirmed or protected rows of snapshot, held ones TENTATIVE), its per-row identity inputs, held (int64
    [h, 2]: each held row seen, in order, and the snapshot row of the unidentified track holding it) and
    protected_rows (int64: the snapshot rows with a friendly or neutral code, in order). Both are nearly always
    empty: the host asks len() of them, not numpy, on the fire path."""
    tid_a = as_array(snapshot.track_id, np.int64, cnp.NPY_INT64, 1)
    st_a = as_array(snapshot.status, np.int8, cnp.NPY_INT8, 1)
    x_a = as_array(snapshot.state, np.float64, cnp.NPY_FLOAT64, 2, (-1, NC))
    P_a = as_array(snapshot.cov, np.float64, cnp.NPY_FLOAT64, 3, (-1, NC, NC))
    last_a = as_array(snapshot.last_update_s, np.float64, cnp.NPY_FLOAT64, 1)
    m3_a = as_array(snapshot.mode3a, np.int32, cnp.NPY_INT32, 1)
    hits_a = as_array(snapshot.hits, np.int32, cnp.NPY_INT32, 1)
    fc_a = as_array(friendly_codes, np.int32, cnp.NPY_INT32, 1)
    nc_a = as_array(neutral_codes, np.int32, cnp.NPY_INT32, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray> tid_a, 0)
    if (cnp.PyArray_DIM(<cnp.ndarray> st_a, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> x_a, 0) != n
            or cnp.PyArray_DIM(<cnp.ndarray> x_a, 1) != NC or cnp.PyArray_DIM(<cnp.ndarray> P_a, 0) != n
            or cnp.PyArray_DIM(<cnp.ndarray> P_a, 1) != NC or cnp.PyArray_DIM(<cnp.ndarray> P_a, 2) != NC
            or cnp.PyArray_DIM(<cnp.ndarray> last_a, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> m3_a, 0) != n
            or cnp.PyArray_DIM(<cnp.ndarray> hits_a, 0) != n):
        raise ValueError(f"a track snapshot of {n} tracks needs every column with {n} rows (state [n, 6], "
                         f"cov [n, 6, 6])")
    cdef const long long* tid = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> tid_a)
    cdef const signed char* st = <const signed char*> cnp.PyArray_DATA(<cnp.ndarray> st_a)
    cdef const double* x = <const double*> cnp.PyArray_DATA(<cnp.ndarray> x_a)
    cdef const double* P = <const double*> cnp.PyArray_DATA(<cnp.ndarray> P_a)
    cdef const double* last = <const double*> cnp.PyArray_DATA(<cnp.ndarray> last_a)
    cdef const int* m3 = <const int*> cnp.PyArray_DATA(<cnp.ndarray> m3_a)
    cdef const int* hits = <const int*> cnp.PyArray_DATA(<cnp.ndarray> hits_a)
    cdef const int* fcodes = <const int*> cnp.PyArray_DATA(<cnp.ndarray> fc_a)
    cdef const int* ncodes = <const int*> cnp.PyArray_DATA(<cnp.ndarray> nc_a)
    cdef Py_ssize_t n_f = cnp.PyArray_DIM(<cnp.ndarray> fc_a, 0), n_n = cnp.PyArray_DIM(<cnp.ndarray> nc_a, 0)

    protected_a = empty1(n, cnp.NPY_BOOL)
    cdef cnp.npy_bool* prot = <cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> protected_a)
    friendly_all_a = empty1(n, cnp.NPY_BOOL)
    cdef cnp.npy_bool* fr_all = <cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> friendly_all_a)
    cdef Py_ssize_t i, j, m = 0, k, n_confirmed = 0, n_unidentified = 0, n_protected = 0, n_held = 0
    cdef bint friendly
    with nogil:
        for i in range(n):
            friendly = m3[i] >= 0 and in_codes(m3[i], fcodes, n_f)
            fr_all[i] = friendly
            prot[i] = friendly or (m3[i] >= 0 and in_codes(m3[i], ncodes, n_n))
            n_protected += prot[i] != 0
            if st[i] == CONFIRMED or prot[i] != 0:
                m += 1
            if st[i] == CONFIRMED:
                n_confirmed += 1
            elif m3[i] < 0:
                n_unidentified += 1
    # many tracks (300 targets and their clutter): the unidentified ones in east order, each confirmed track looking
    # only at those within near_m east of it, instead of at every track
    cdef bint by_east = n_confirmed * n_unidentified > SORTED_FROM
    cdef const double* east = NULL
    cdef const long long* east_row = NULL
    cdef Py_ssize_t lo, best
    cdef double from_east, to_east, slack
    if by_east:
        rows_a = np.flatnonzero((np.asarray(st_a) != CONFIRMED) & (np.asarray(m3_a) < 0))
        x_east = np.asarray(x_a)[rows_a, 0]
        order = np.argsort(x_east, kind="stable")
        east_a = np.ascontiguousarray(x_east[order], dtype=np.float64)
        east_row_a = np.ascontiguousarray(rows_a[order], dtype=np.int64)
        east = <const double*> cnp.PyArray_DATA(<cnp.ndarray> east_a)
        east_row = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> east_row_a)

    tid_o, st_o, x_o, P_o, last_o, m3_o, hits_o = empty_track_columns(m)
    pos_var_o = empty1(m, cnp.NPY_FLOAT64)
    vel_var_o = empty1(m, cnp.NPY_FLOAT64)
    friendly_o = empty1(m, cnp.NPY_BOOL)
    neutral_o = empty1(m, cnp.NPY_BOOL)
    held_o = empty1(m, cnp.NPY_INT64)
    cdef long long* tid_p = <long long*> cnp.PyArray_DATA(<cnp.ndarray> tid_o)
    cdef signed char* st_p = <signed char*> cnp.PyArray_DATA(<cnp.ndarray> st_o)
    cdef double* x_p = <double*> cnp.PyArray_DATA(<cnp.ndarray> x_o)
    cdef double* P_p = <double*> cnp.PyArray_DATA(<cnp.ndarray> P_o)
    cdef double* last_p = <double*> cnp.PyArray_DATA(<cnp.ndarray> last_o)
    cdef int* m3_p = <int*> cnp.PyArray_DATA(<cnp.ndarray> m3_o)
    cdef int* hits_p = <int*> cnp.PyArray_DATA(<cnp.ndarray> hits_o)
    cdef double* pv_p = <double*> cnp.PyArray_DATA(<cnp.ndarray> pos_var_o)
    cdef double* vv_p = <double*> cnp.PyArray_DATA(<cnp.ndarray> vel_var_o)
    cdef cnp.npy_bool* fr_p = <cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> friendly_o)
    cdef cnp.npy_bool* ne_p = <cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> neutral_o)
    cdef long long* held_p = <long long*> cnp.PyArray_DATA(<cnp.ndarray> held_o)
    cdef const double* Pi
    cdef double near2 = near_m * near_m
    with nogil:
        k = 0
        for i in range(n):
            if st[i] != CONFIRMED and prot[i] == 0:
                continue
            tid_p[k] = tid[i]
            st_p[k] = st[i]
            for j in range(NC):
                x_p[k * NC + j] = x[i * NC + j]
            for j in range(NC * NC):
                P_p[k * NC * NC + j] = P[i * NC * NC + j]
            last_p[k] = last[i]
            m3_p[k] = m3[i]
            hits_p[k] = hits[i]
            Pi = P + i * NC * NC
            pv_p[k] = Pi[0] + Pi[NC + 1] + Pi[2 * NC + 2]
            vv_p[k] = Pi[3 * NC + 3] + Pi[4 * NC + 4] + Pi[5 * NC + 5]
            fr_p[k] = fr_all[i]
            ne_p[k] = prot[i] != 0 and fr_all[i] == 0
            held_p[k] = -1
            if st[i] == CONFIRMED and by_east:
                # a window a little wider than near_m east and west (the exact test below decides), its lowest row
                slack = 1e-9 * (fabs(x[i * NC]) + near_m) + 1e-9
                from_east, to_east = x[i * NC] - near_m - slack, x[i * NC] + near_m + slack
                lo = lower_bound(east, n_unidentified, from_east)
                best = -1
                while lo < n_unidentified and east[lo] <= to_east:
                    j = east_row[lo]
                    lo += 1
                    if (best < 0 or j < best) and near(x, i, j, near_m, near2):
                        best = j
                if best >= 0:
                    held_p[k] = best
                    st_p[k] = TENTATIVE
                    n_held += 1
            elif st[i] == CONFIRMED:
                for j in range(n):  # the first unidentified track near it holds it
                    if st[j] != CONFIRMED and m3[j] < 0 and near(x, i, j, near_m, near2):
                        held_p[k] = j
                        st_p[k] = TENTATIVE
                        n_held += 1
                        break
            k += 1
    held_pairs_a = empty2(n_held, 2, cnp.NPY_INT64)
    protected_rows_a = empty1(n_protected, cnp.NPY_INT64)
    cdef long long* pairs = <long long*> cnp.PyArray_DATA(<cnp.ndarray> held_pairs_a)
    cdef long long* prot_rows = <long long*> cnp.PyArray_DATA(<cnp.ndarray> protected_rows_a)
    with nogil:
        j = 0
        for k in range(m):
            if held_p[k] >= 0:
                pairs[2 * j], pairs[2 * j + 1] = k, held_p[k]
                j += 1
        j = 0
        for i in range(n):
            if prot[i] != 0:
                prot_rows[j] = i
                j += 1
    tracks = TrackSnapshot(tid_o, st_o, x_o, P_o, last_o, m3_o, hits_o)
    return tracks, pos_var_o, friendly_o, neutral_o, vel_var_o, held_pairs_a, protected_rows_a


def confirmed_news(snapshot, double since_s):
    """(confirmed, id_sum, updated): how many tracks of snapshot are confirmed, the sum of their ids, and whether
    any of them took a plot at since_s or later (its last_update_s)."""
    tid_a = as_array(snapshot.track_id, np.int64, cnp.NPY_INT64, 1)
    st_a = as_array(snapshot.status, np.int8, cnp.NPY_INT8, 1)
    last_a = as_array(snapshot.last_update_s, np.float64, cnp.NPY_FLOAT64, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray> tid_a, 0), i, count = 0
    if cnp.PyArray_DIM(<cnp.ndarray> st_a, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> last_a, 0) != n:
        raise ValueError(f"a track snapshot of {n} tracks needs every column with {n} rows")
    cdef const long long* tid = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> tid_a)
    cdef const signed char* st = <const signed char*> cnp.PyArray_DATA(<cnp.ndarray> st_a)
    cdef const double* last = <const double*> cnp.PyArray_DATA(<cnp.ndarray> last_a)
    cdef long long id_sum = 0
    cdef bint updated = False
    with nogil:
        for i in range(n):
            if st[i] == CONFIRMED:
                count += 1
                id_sum += tid[i]
                updated = updated or last[i] >= since_s
    return count, id_sum, updated


cdef enum:  # a round's state as engagement_counts reads it (hil.host.host.HostRound.state)
    ROUND_FLYING = 0        # launched: in the air until its planned intercept, then landed
    ROUND_UNCONFIRMED = 1   # sent, its answer lost: possibly in the air until a read-back settles it
    ROUND_NOT_LAUNCHED = 2  # settled: it never left


cdef inline Py_ssize_t row_of(long long tid, const long long* ids, Py_ssize_t n, bint ascending) noexcept nogil:
    """The last row holding track id tid (-1 none): by bisection when the ids ascend strictly, else by a scan."""
    cdef Py_ssize_t lo, k
    if ascending:
        lo = lower_bound(ids, n, tid)
        return lo if lo < n and ids[lo] == tid else -1
    for k in range(n - 1, -1, -1):
        if ids[k] == tid:
            return k
    return -1


def engagement_counts(track_id, last_update_s, double t_s, pending_track, round_track, round_launcher, round_state,
                      round_intercept_s, round_look_end_s, Py_ssize_t n_launchers):
    """(in_flight int32[n], shots_fired int32[n], assessing bool[n], channels_in_use int32[n_launchers]): what fire
    control is told of the host's own rounds, per track row (track_id, last_update_s: the rows fire control sees) and
    per launcher (hil.host.host.Host.engagement_inputs, whose plain-Python loop is the reference).

    pending_track: the track of each order decided and not yet answered (in flight). Per round: its track, launcher
    (0 <= launcher < n_launchers), state (0 flying, 1 unconfirmed, 2 not launched), planned intercept and the end of
    its kill-assessment look (run s). A round not launched counts for nothing. One in the air (unconfirmed, or before
    its intercept) holds its launcher's guidance channel and is in flight at its track; every launched round is a shot
    at its track; after the intercept its track is assessed until the look ends, and after that while the track has
    not been seen since the intercept (last_update_s <= intercept). A track id on several rows counts on the last."""
    tid_a = as_array(track_id, np.int64, cnp.NPY_INT64, 1)
    last_a = as_array(last_update_s, np.float64, cnp.NPY_FLOAT64, 1)
    pend_a = as_array(pending_track, np.int64, cnp.NPY_INT64, 1)
    rt_a = as_array(round_track, np.int64, cnp.NPY_INT64, 1)
    rl_a = as_array(round_launcher, np.int32, cnp.NPY_INT32, 1)
    rs_a = as_array(round_state, np.int8, cnp.NPY_INT8, 1)
    ri_a = as_array(round_intercept_s, np.float64, cnp.NPY_FLOAT64, 1)
    re_a = as_array(round_look_end_s, np.float64, cnp.NPY_FLOAT64, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray> tid_a, 0), m = cnp.PyArray_DIM(<cnp.ndarray> rt_a, 0)
    cdef Py_ssize_t n_p = cnp.PyArray_DIM(<cnp.ndarray> pend_a, 0)
    if cnp.PyArray_DIM(<cnp.ndarray> last_a, 0) != n:
        raise ValueError(f"last_update_s needs {n} rows, as track_id has")
    if (cnp.PyArray_DIM(<cnp.ndarray> rl_a, 0) != m or cnp.PyArray_DIM(<cnp.ndarray> rs_a, 0) != m
            or cnp.PyArray_DIM(<cnp.ndarray> ri_a, 0) != m or cnp.PyArray_DIM(<cnp.ndarray> re_a, 0) != m):
        raise ValueError(f"every round column needs {m} rows, as round_track has")
    cdef const long long* tid = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> tid_a)
    cdef const double* last = <const double*> cnp.PyArray_DATA(<cnp.ndarray> last_a)
    cdef const long long* pend = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> pend_a)
    cdef const long long* r_track = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> rt_a)
    cdef const int* r_launcher = <const int*> cnp.PyArray_DATA(<cnp.ndarray> rl_a)
    cdef const signed char* r_state = <const signed char*> cnp.PyArray_DATA(<cnp.ndarray> rs_a)
    cdef const double* r_intercept = <const double*> cnp.PyArray_DATA(<cnp.ndarray> ri_a)
    cdef const double* r_look_end = <const double*> cnp.PyArray_DATA(<cnp.ndarray> re_a)
    cdef Py_ssize_t i, k
    for i in range(m):
        if not 0 <= r_launcher[i] < n_launchers:
            raise ValueError(f"round {i}: launcher {r_launcher[i]} is not one of the {n_launchers}")
    in_flight_a = empty1(n, cnp.NPY_INT32)
    shots_a = empty1(n, cnp.NPY_INT32)
    assessing_a = empty1(n, cnp.NPY_BOOL)
    channels_a = empty1(n_launchers, cnp.NPY_INT32)
    cdef int* in_flight = <int*> cnp.PyArray_DATA(<cnp.ndarray> in_flight_a)
    cdef int* shots = <int*> cnp.PyArray_DATA(<cnp.ndarray> shots_a)
    cdef cnp.npy_bool* assessing = <cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> assessing_a)
    cdef int* channels = <int*> cnp.PyArray_DATA(<cnp.ndarray> channels_a)
    cdef bint ascending = True, airborne
    with nogil:
        for k in range(n):
            in_flight[k] = 0
            shots[k] = 0
            assessing[k] = 0
            if k > 0 and tid[k] <= tid[k - 1]:
                ascending = False
        for k in range(n_launchers):
            channels[k] = 0
        for i in range(n_p):
            k = row_of(pend[i], tid, n, ascending)
            if k >= 0:
                in_flight[k] += 1
        for i in range(m):
            if r_state[i] == ROUND_NOT_LAUNCHED:
                continue
            airborne = r_state[i] == ROUND_UNCONFIRMED or t_s < r_intercept[i]
            if airborne:
                channels[r_launcher[i]] += 1
            k = row_of(r_track[i], tid, n, ascending)
            if k < 0:
                continue
            shots[k] += 1
            if airborne:
                in_flight[k] += 1
            elif t_s < r_look_end[i] or last[k] <= r_intercept[i]:
                assessing[k] = 1
    return in_flight_a, shots_a, assessing_a, channels_a


def confirmed_refusals(track_index, launcher_index, reason, protected_index, track_id, status, sorted_keys,
                       sorted_rows, recent_keys, recent_rows, long long key_tracks):
    """(rows, launcher, code, protected, keys, at, plain): one decision's refusals (track row, launcher row or -1,
    reason code, protected track row or -1) of the confirmed tracks (status) only, in order, each with its refusal key
    ((track id * 65536 + launcher + 1) * 256 + reason: ids below key_tracks, 65,534 launchers, 256 reasons) and the row
    the host counts it on (at; -1: none yet), found in sorted_keys (ascending, with sorted_rows) or else among the recent keys (recent_rows).
    plain: a refused confirmed track's id is outside 0 .. key_tracks - 1, which a key cannot hold: then every at is -1
    (and the keys mean nothing). hil.host.host.Host._note_refusals' hot part; its numpy twin is
    ext/reference/track_view.py's."""
    ti_a = as_array(track_index, np.int32, cnp.NPY_INT32, 1)
    li_a = as_array(launcher_index, np.int32, cnp.NPY_INT32, 1)
    why_a = as_array(reason, np.int8, cnp.NPY_INT8, 1)
    prot_a = as_array(protected_index, np.int32, cnp.NPY_INT32, 1)
    tid_a = as_array(track_id, np.int64, cnp.NPY_INT64, 1)
    st_a = as_array(status, np.int8, cnp.NPY_INT8, 1)
    sk_a = as_array(sorted_keys, np.int64, cnp.NPY_INT64, 1)
    sr_a = as_array(sorted_rows, np.int64, cnp.NPY_INT64, 1)
    rk_a = as_array(recent_keys, np.int64, cnp.NPY_INT64, 1)
    rr_a = as_array(recent_rows, np.int64, cnp.NPY_INT64, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray> ti_a, 0), n_t = cnp.PyArray_DIM(<cnp.ndarray> tid_a, 0)
    cdef Py_ssize_t n_s = cnp.PyArray_DIM(<cnp.ndarray> sk_a, 0), n_r = cnp.PyArray_DIM(<cnp.ndarray> rk_a, 0)
    if (cnp.PyArray_DIM(<cnp.ndarray> li_a, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> why_a, 0) != n
            or cnp.PyArray_DIM(<cnp.ndarray> prot_a, 0) != n):
        raise ValueError(f"every refusal column needs {n} rows, as track_index has")
    if cnp.PyArray_DIM(<cnp.ndarray> st_a, 0) != n_t:
        raise ValueError(f"status needs {n_t} rows, as track_id has")
    if cnp.PyArray_DIM(<cnp.ndarray> sr_a, 0) != n_s or cnp.PyArray_DIM(<cnp.ndarray> rr_a, 0) != n_r:
        raise ValueError("sorted_rows and recent_rows need a row per key")
    cdef const int* ti = <const int*> cnp.PyArray_DATA(<cnp.ndarray> ti_a)
    cdef const int* li = <const int*> cnp.PyArray_DATA(<cnp.ndarray> li_a)
    cdef const signed char* why = <const signed char*> cnp.PyArray_DATA(<cnp.ndarray> why_a)
    cdef const int* prot = <const int*> cnp.PyArray_DATA(<cnp.ndarray> prot_a)
    cdef const long long* tid = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> tid_a)
    cdef const signed char* st = <const signed char*> cnp.PyArray_DATA(<cnp.ndarray> st_a)
    cdef const long long* sk = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> sk_a)
    cdef const long long* sr = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> sr_a)
    cdef const long long* rk = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> rk_a)
    cdef const long long* rr = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> rr_a)
    cdef Py_ssize_t i, j, m = 0, k
    for i in range(n):
        if not 0 <= ti[i] < n_t:
            raise ValueError(f"refusal {i} names track row {ti[i]} of {n_t}")
        if not -1 <= prot[i] < n_t:
            raise ValueError(f"refusal {i} names protected track row {prot[i]} of {n_t}")
        m += st[ti[i]] == CONFIRMED
    rows_a, launcher_a, code_a = empty1(m, cnp.NPY_INT64), empty1(m, cnp.NPY_INT64), empty1(m, cnp.NPY_INT64)
    protected_a, keys_a, at_a = empty1(m, cnp.NPY_INT64), empty1(m, cnp.NPY_INT64), empty1(m, cnp.NPY_INT64)
    cdef long long* rows = <long long*> cnp.PyArray_DATA(<cnp.ndarray> rows_a)
    cdef long long* launcher = <long long*> cnp.PyArray_DATA(<cnp.ndarray> launcher_a)
    cdef long long* code = <long long*> cnp.PyArray_DATA(<cnp.ndarray> code_a)
    cdef long long* protected = <long long*> cnp.PyArray_DATA(<cnp.ndarray> protected_a)
    cdef long long* keys = <long long*> cnp.PyArray_DATA(<cnp.ndarray> keys_a)
    cdef long long* at = <long long*> cnp.PyArray_DATA(<cnp.ndarray> at_a)
    cdef bint plain = False
    cdef long long t
    with nogil:
        k = 0
        for i in range(n):
            if st[ti[i]] != CONFIRMED:
                continue
            t = tid[ti[i]]
            plain = plain or t < 0 or t >= key_tracks
            rows[k], launcher[k], code[k], protected[k] = ti[i], li[i], why[i], prot[i]
            # the key in int64 arithmetic, wrapping as numpy's does (only a plain count reads such a key)
            keys[k] = <long long> ((<unsigned long long> t * 65536ULL + <unsigned long long> (li[i] + 1)) * 256ULL
                                   + <unsigned long long> why[i])
            k += 1
        for k in range(m):
            at[k] = -1
            if plain:
                continue
            j = lower_bound(sk, n_s, keys[k])
            if j < n_s and sk[j] == keys[k]:
                at[k] = sr[j]
                continue
            for j in range(n_r):
                if rk[j] == keys[k]:
                    at[k] = rr[j]
                    break
    return rows_a, launcher_a, code_a, protected_a, keys_a, at_a, plain
