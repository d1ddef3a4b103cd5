# cython: language_level=3
# distutils: extra_compile_args = -ffp-contract=off
"""The fire command's request, compiled: the launcher link's last step before a fire goes on the wire (hil.drivers.
launcher_link.LauncherLink.fire_now), in one call instead of a dozen Python steps on the fire path.

fire_request(track_id, azimuth_rad, elevation_rad, range_m, tgo_s, seq, ...) is, byte for byte,
    modbus_rtu.write_multiple_request(FIRE_BLOCK, registers.fire_block(track_id, *aim, seq))
with the aim as its plain twin (hil.ext.reference.fire_command, the launcher link's Python before this kernel)
reckons it, or None where the aim cannot be sent: azimuth in centidegrees clockwise from north (0..35999, the
azimuth taken modulo a turn as Python's % takes it), elevation in centidegrees within the register's limits, range
in metres and time to go in centiseconds within 0..65535, each rounded half to even as Python's round() rounds;
then the block FIRE_TRACK..FIRE_SEQ and FIRE_CHECK (CRC-16/MODBUS over the six registers, big-endian), as the
function-16 request PDU. tests/kernels/test_fire_command.py holds the two to the same bytes.

fire_orders(...) is the host's last step before that (hil.host.host.Host.decide): each assignment of a fire-control
decision checked by the host's own interlock and turned into a fire order's fields, in one call. Per assignment k, in
order, a tuple (k, track row, launcher row, track id, interlock, plot time, plot row, t0 host ns, t0 uncertainty ns,
aim (east, north, up m), time to go s):
- interlock: 0 fire; else the index of the host's refusal in HOST_INTERLOCKS (hil.ext.firecontrol_types): a track
  or launcher row out of range (track id and launcher then -1, nothing else read), a friendly, a neutral, or a
  track not confirmed, tested in that order; a refused assignment's other fields are zero;
- plot time: the track's newest plot (last_update_s); plot row: the last of this iteration's plots taken at that
  time (-1: none, the host then looks it up in its memory), with its t0 (the plot's host time in s times 1e9,
  truncated) and its radar's clock uncertainty (truncated; NO_T0 when either is not finite, or
  beyond NO_T0 ns or 9.2e18 ns either way);
- time to go: launch delay, then the slew from the launcher's rest azimuth (the sector centre) at its slew rate
  (none at a rate of 0), then the time of flight, summed in that order.
Its plain twin (hil.ext.reference.fire_command.fire_orders) is the host's Python before this kernel; the kernel
tests hold the two to the same tuples.
"""

from libc.math cimport M_PI, atan2, fabs, fmod, isfinite, rint
from libc.stdint cimport uint8_t, uint16_t

cimport numpy as cnp

from hil.ext.arrays cimport as_array, fits, upper_bound

import numpy as np

from hil.ext.tracker_types import TrackStatus

cnp.import_array()

cdef signed char CONFIRMED = <signed char> int(TrackStatus.CONFIRMED)
cdef long long NO_T0 = 1LL << 62  # hil.host.host.NO_T0: no t0 (a plot before its radar's first time-sync answer)

cdef double RAD_TO_DEG = 180.0 / M_PI  # math.degrees' factor (CPython's radToDeg)
cdef double TURN = 2.0 * M_PI


cdef inline double py_mod(double x, double m) noexcept nogil:
    """x % m as Python computes it for floats, m > 0 (CPython's float_rem)."""
    cdef double r = fmod(x, m)
    if r != 0.0:
        if r < 0.0:
            r += m
    else:
        r = 0.0
    return r


cdef inline uint16_t crc16_modbus(const uint8_t* data, int n) noexcept nogil:
    """CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF), as hil.drivers.modbus_rtu.crc16."""
    cdef uint16_t crc = 0xFFFF
    cdef int i, b
    for i in range(n):
        crc ^= data[i]
        for b in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def fire_request(long long track_id, double azimuth_rad, double elevation_rad, double range_m, double tgo_s,
                 int seq, int block_address, int el_min_cdeg, int el_max_cdeg, int range_max_m):
    """The request PDU writing one fire block, or None when the aim cannot be sent (the module docstring)."""
    cdef double az, el, rng, tgo
    cdef uint16_t regs[7]
    cdef uint8_t pdu[20]
    cdef int k
    if not (isfinite(azimuth_rad) and isfinite(elevation_rad) and isfinite(range_m) and isfinite(tgo_s)):
        return None
    az = rint(py_mod(azimuth_rad, TURN) * RAD_TO_DEG * 100.0)
    if az >= 36000.0:
        az -= 36000.0
    el = rint(elevation_rad * RAD_TO_DEG * 100.0)
    rng = rint(range_m)
    tgo = rint(tgo_s * 100.0)
    if not (el_min_cdeg <= el <= el_max_cdeg and 0.0 <= rng <= range_max_m and 0.0 <= tgo <= 65535.0):
        return None
    regs[0] = <uint16_t>(track_id & 0xFFFF)
    regs[1] = <uint16_t>az
    regs[2] = <uint16_t>el
    regs[3] = <uint16_t>rng
    regs[4] = <uint16_t>tgo
    regs[5] = <uint16_t>seq
    for k in range(6):
        pdu[6 + 2 * k] = regs[k] >> 8
        pdu[7 + 2 * k] = regs[k] & 0xFF
    regs[6] = crc16_modbus(pdu + 6, 12)
    pdu[18] = regs[6] >> 8
    pdu[19] = regs[6] & 0xFF
    pdu[0] = 16  # write multiple registers
    pdu[1] = (block_address >> 8) & 0xFF
    pdu[2] = block_address & 0xFF
    pdu[3] = 0
    pdu[4] = 7
    pdu[5] = 14
    return (<char*>pdu)[:20]


cdef object index_column(object x):
    """Row indices as they come: int32 as fire control's Assignments hold them, read in place; anything else as
    int64 (never narrowed: a plug-in's row beyond int32 must stay out of range, not wrap onto a track)."""
    if fits(x, cnp.NPY_INT32, 1):
        return x
    try:
        return as_array(x, np.int64, cnp.NPY_INT64, 1)
    except OverflowError:  # a row beyond int64: out of range, refused as such (clamped, never wrapped)
        return np.array([min(max(int(v), -1), 2**62) for v in x], np.int64)


cdef inline long long truncated(double x) noexcept nogil:
    return <long long> x


def fire_orders(track_index, launcher_index, intercept_enu, time_of_flight_s, track_id, status, friendly, neutral,
                last_update_s, fresh_plot_times, fresh_t_abs_s, double fresh_uncertainty_ns, fresh_uncertainties_ns,
                sites):
    """Each assignment's interlock and fire order fields (the module docstring). fresh_plot_times (run s, in time
    order) and fresh_t_abs_s (host s): this iteration's plots; fresh_uncertainties_ns: one per plot, or None when
    fresh_uncertainty_ns holds for all. sites: float64 [launchers, 5]: east m, north m, sector centre deg, slew rate
    deg/s, launch delay s."""
    ti_a, li_a = index_column(track_index), index_column(launcher_index)
    aim_a = as_array(intercept_enu, np.float64, cnp.NPY_FLOAT64, 2, (-1, 3))
    tof_a = as_array(time_of_flight_s, np.float64, cnp.NPY_FLOAT64, 1)
    tid_a = as_array(track_id, np.int64, cnp.NPY_INT64, 1)
    st_a = as_array(status, np.int8, cnp.NPY_INT8, 1)
    fr_a = as_array(friendly, np.bool_, cnp.NPY_BOOL, 1)
    ne_a = as_array(neutral, np.bool_, cnp.NPY_BOOL, 1)
    last_a = as_array(last_update_s, np.float64, cnp.NPY_FLOAT64, 1)
    times_a = as_array(fresh_plot_times, np.float64, cnp.NPY_FLOAT64, 1)
    t_abs_a = as_array(fresh_t_abs_s, np.float64, cnp.NPY_FLOAT64, 1)
    unc_a = None if fresh_uncertainties_ns is None else as_array(fresh_uncertainties_ns, np.float64,
                                                                  cnp.NPY_FLOAT64, 1)
    sites_a = as_array(sites, np.float64, cnp.NPY_FLOAT64, 2, (-1, 5))
    cdef Py_ssize_t m = cnp.PyArray_DIM(<cnp.ndarray> ti_a, 0), n = cnp.PyArray_DIM(<cnp.ndarray> tid_a, 0)
    cdef Py_ssize_t n_plots = cnp.PyArray_DIM(<cnp.ndarray> times_a, 0)
    cdef Py_ssize_t n_l = cnp.PyArray_DIM(<cnp.ndarray> sites_a, 0)
    if (cnp.PyArray_NDIM(<cnp.ndarray> ti_a) != 1 or cnp.PyArray_NDIM(<cnp.ndarray> li_a) != 1
            or cnp.PyArray_DIM(<cnp.ndarray> li_a, 0) != m or cnp.PyArray_DIM(<cnp.ndarray> aim_a, 0) != m
            or cnp.PyArray_DIM(<cnp.ndarray> aim_a, 1) != 3 or cnp.PyArray_DIM(<cnp.ndarray> tof_a, 0) != m):
        raise ValueError(f"an assignment of {m} rows needs launcher_index, intercept_enu ([{m}, 3]) and "
                         f"time_of_flight_s with {m} rows, and the rows 1-D")
    if (cnp.PyArray_DIM(<cnp.ndarray> st_a, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> fr_a, 0) != n
            or cnp.PyArray_DIM(<cnp.ndarray> ne_a, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> last_a, 0) != n):
        raise ValueError(f"{n} tracks need status, friendly, neutral and last_update_s with {n} rows")
    if cnp.PyArray_DIM(<cnp.ndarray> sites_a, 1) != 5:
        raise ValueError("sites must be [launchers, 5]")
    if cnp.PyArray_DIM(<cnp.ndarray> t_abs_a, 0) != n_plots or (
            unc_a is not None and cnp.PyArray_DIM(<cnp.ndarray> unc_a, 0) != n_plots):
        raise ValueError(f"{n_plots} plot times need as many host times (and uncertainties, when given)")
    cdef const int* ti32 = NULL
    cdef const int* li32 = NULL
    cdef const long long* ti64 = NULL
    cdef const long long* li64 = NULL
    if cnp.PyArray_TYPE(<cnp.ndarray> ti_a) == cnp.NPY_INT32:
        ti32 = <const int*> cnp.PyArray_DATA(<cnp.ndarray> ti_a)
    else:
        ti64 = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> ti_a)
    if cnp.PyArray_TYPE(<cnp.ndarray> li_a) == cnp.NPY_INT32:
        li32 = <const int*> cnp.PyArray_DATA(<cnp.ndarray> li_a)
    else:
        li64 = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> li_a)
    cdef const double* aim_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> aim_a)
    cdef const double* tof_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> tof_a)
    cdef const long long* tid_p = <const long long*> cnp.PyArray_DATA(<cnp.ndarray> tid_a)
    cdef const signed char* st_p = <const signed char*> cnp.PyArray_DATA(<cnp.ndarray> st_a)
    cdef const cnp.npy_bool* fr_p = <const cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> fr_a)
    cdef const cnp.npy_bool* ne_p = <const cnp.npy_bool*> cnp.PyArray_DATA(<cnp.ndarray> ne_a)
    cdef const double* last_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> last_a)
    cdef const double* times_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> times_a)
    cdef const double* t_abs_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> t_abs_a)
    cdef const double* unc_p = NULL
    if unc_a is not None:
        unc_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> unc_a)
    cdef const double* site_p = <const double*> cnp.PyArray_DATA(<cnp.ndarray> sites_a)
    cdef Py_ssize_t k, lo, row
    cdef long long ti, li, tid, t0_ns, unc_ns
    cdef int why
    cdef double plot_t, u, t0_s, turn, slew_s, tgo_s
    cdef const double* site
    cdef const double* aim
    out = []
    for k in range(m):
        ti = ti32[k] if ti32 != NULL else ti64[k]
        li = li32[k] if li32 != NULL else li64[k]
        if not (0 <= ti < n and 0 <= li < n_l):
            out.append((k, ti, -1, -1, 1, 0.0, -1, 0, 0, (0.0, 0.0, 0.0), 0.0))
            continue
        tid = tid_p[ti]
        why = 2 if fr_p[ti] else 3 if ne_p[ti] else 4 if st_p[ti] != CONFIRMED else 0
        if why:
            out.append((k, ti, li, tid, why, 0.0, -1, 0, 0, (0.0, 0.0, 0.0), 0.0))
            continue
        plot_t = last_p[ti]
        lo = upper_bound(times_p, n_plots, plot_t)  # the first plot after plot_t
        row = lo - 1 if lo > 0 and times_p[lo - 1] == plot_t else -1
        t0_ns, unc_ns = 0, NO_T0
        if row >= 0:
            u = fresh_uncertainty_ns if unc_p == NULL else unc_p[row]
            t0_s = t_abs_p[row] * 1e9
            if isfinite(u) and fabs(u) < <double> NO_T0 and isfinite(t0_s) and fabs(t0_s) < 9.2e18:
                t0_ns, unc_ns = truncated(t0_s), truncated(u)
        aim = aim_p + 3 * k
        site = site_p + 5 * li
        turn = fabs(py_mod(atan2(aim[0] - site[0], aim[1] - site[1]) * RAD_TO_DEG - site[2] + 180.0, 360.0) - 180.0)
        slew_s = turn / site[3] if site[3] > 0 else 0.0
        tgo_s = site[4] + slew_s + tof_p[k]
        out.append((k, ti, li, tid, 0, plot_t, row, t0_ns, unc_ns, (aim[0], aim[1], aim[2]), tgo_s))
    return out
