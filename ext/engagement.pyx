# cython: language_level=3
# distutils: extra_compile_args = -ffp-contract=off
"""Interceptor fly-out kernel: every round in flight stepped in C, the rare moments that need Python handed back.

The plant's engagement model (hil.plant.engagement) keeps the rounds' records, the seeker's search, the kill
draw and the no-fire zones; this kernel flies them. Per step of step_s and per round, in launch order:
proportional navigation on the aim point or, once something is acquired, on its truth (interpolated between
the samples every truth_step_s as Truth.state_tuple does), the acceleration limit, the speed held, the aim
point passed, the closest approach, the end of the search window and of max_tof_s. Each operation is the
Python reference's, on the same doubles in the same order and compiled without contraction (no fused
multiply-add): the rounds fly bit for bit as EngagementModel(compiled=False) flies them.

Flyout.advance(t_to) runs until the clock reaches t_to or a round needs the model (it then returns what it
needs, the round being `current`): SEARCH, a round in its search window with nothing acquired at `event_t_s`
(the model searches, then calls searched() and advances again: the round's step goes on from there);
DETONATE, the closest approach to what it acquired, `event_tau_s` into the step at `event_t_s`, the miss
vector `event_miss`; SELF_DESTRUCT, at `event_t_s` where the round is (lost lock, max_tof_s, the window closed
empty). Both ends leave the round's state as the reference's would be when it ends; the model finishes the
round and calls remove().
"""

from libc.math cimport INFINITY, cos, isfinite, isnan, sqrt
from libc.stdlib cimport free, realloc
from libc.string cimport memmove

cdef enum:
    C_FLOWN = 0
    C_SEARCH = 1
    C_DETONATE = 2
    C_SELF_DESTRUCT = 3

# what Flyout.advance returns
FLOWN, SEARCH, DETONATE, SELF_DESTRUCT = C_FLOWN, C_SEARCH, C_DETONATE, C_SELF_DESTRUCT


cdef struct Round:
    double px, py, pz, vx, vy, vz
    double aim_x, aim_y, aim_z
    double launch_s, fly_s, max_tof_s
    double speed_mps, max_acc_mps2, seeker_range_m
    double cos_half_angle  # the basket's cone
    double miss_distance_m, past_aim_m, search_from_s
    Py_ssize_t acquired
    bint passed_aim, closing
    double shown_miss_m, shown_past_aim_m  # what the round's record holds (write_back skips what is unchanged)
    bint shown_passed_aim, shown_closing


cdef inline double py_max(double a, double b) noexcept nogil:
    """Python's max(a, b): b only when b > a (so NaNs and signed zeros come out as the reference's)."""
    return b if b > a else a


cdef inline double py_min(double a, double b) noexcept nogil:
    """Python's min(a, b): b only when b < a."""
    return b if b < a else a


cdef inline void truth_state(const double* states, Py_ssize_t n_times, double truth_step_s, Py_ssize_t row,
                             double t_s, double* out) noexcept nogil:
    """Truth.state_tuple(row, t_s): the state interpolated between the samples either side (the earlier one
    where the later is past the object's end). states is [n_objects, n_times, 6] row-major."""
    cdef Py_ssize_t last = n_times - 1, k, j
    cdef double u = py_min(py_max(t_s / truth_step_s, 0.0), <double> last)
    k = <Py_ssize_t> u
    if last - 1 < k:
        k = last - 1
    cdef double w = u - <double> k, v
    cdef const double* a = states + (row * n_times + k) * 6
    cdef const double* b = a + 6
    if isnan(b[0]):
        for j in range(6):
            out[j] = a[j]
        return
    v = 1.0 - w
    for j in range(6):
        out[j] = v * a[j] + w * b[j]


cdef inline void guidance(const Round* m, double nav, double rx, double ry, double rz, double wx, double wy,
                          double wz, double vx, double vy, double vz, double* acc) noexcept nogil:
    """Proportional navigation on the line of sight r (relative velocity w), limited to the airframe's lateral
    acceleration: EngagementModel._guidance."""
    cdef double r2 = rx * rx + ry * ry + rz * rz
    cdef double ox, oy, oz, closing, k, ax, ay, az, norm
    if r2 < 1e-6:
        acc[0] = 0.0
        acc[1] = 0.0
        acc[2] = 0.0
        return
    ox = (ry * wz - rz * wy) / r2
    oy = (rz * wx - rx * wz) / r2
    oz = (rx * wy - ry * wx) / r2
    closing = -(rx * wx + ry * wy + rz * wz) / sqrt(r2)
    k = nav * py_max(closing, m.speed_mps * 0.5) / m.speed_mps
    ax = k * (oy * vz - oz * vy)
    ay = k * (oz * vx - ox * vz)
    az = k * (ox * vy - oy * vx)
    norm = sqrt(ax * ax + ay * ay + az * az)
    if norm > m.max_acc_mps2:
        ax, ay, az = ax * m.max_acc_mps2 / norm, ay * m.max_acc_mps2 / norm, az * m.max_acc_mps2 / norm
    acc[0] = ax
    acc[1] = ay
    acc[2] = az


cdef class Flyout:
    """The rounds in flight, in launch order (the model's `flying`), and the clock they were flown to."""

    cdef Round* rounds
    cdef Py_ssize_t n, cap
    cdef const double[:, :, ::1] states  # truth's samples [object, time, (x, y, z, vx, vy, vz)]
    cdef const double[::1] start_s, end_s  # truth's: end_s is read live (a kill ends an object mid-step)
    cdef double truth_step_s, step_s, nav
    cdef public bint screen_searches  # rule out empty baskets here (else every search goes to the model)
    cdef public double max_speed_mps  # Truth.max_speed_mps, for the bound on the next search
    cdef public double t_s  # the clock: every round is flown to it (between advance calls)
    cdef double t1  # the end of the step being flown
    cdef bint mid_step  # a step was handed back to the model part way
    cdef bint resume_searched  # the current round searched: its step goes on after the search
    cdef bint awaiting_search  # a SEARCH handed back, searched() not yet called
    cdef bint awaiting_removal  # a round ended, remove() not yet called
    cdef Py_ssize_t next_round
    cdef readonly Py_ssize_t current  # the round an event is about
    cdef readonly double event_t_s, event_tau_s
    cdef double mx, my, mz

    def __cinit__(self) -> None:
        self.rounds = NULL
        self.n = 0
        self.cap = 0

    def __dealloc__(self) -> None:
        free(self.rounds)

    def __init__(self, states, start_s, end_s, double truth_step_s, double step_s, double navigation_constant,
                 double t_s=0.0) -> None:
        self.states = states
        self.start_s = start_s
        self.end_s = end_s
        if self.states.shape[1] < 2 or self.states.shape[2] != 6:
            raise ValueError("truth states must be [n_objects, n_times >= 2, 6]")
        if self.start_s.shape[0] != self.states.shape[0] or self.end_s.shape[0] != self.states.shape[0]:
            raise ValueError("truth start_s and end_s need one entry per object")
        self.truth_step_s = truth_step_s
        self.step_s = step_s
        self.nav = navigation_constant
        self.t_s = t_s
        self.screen_searches = False
        self.max_speed_mps = INFINITY
        self.mid_step = False
        self.resume_searched = False
        self.awaiting_search = False
        self.awaiting_removal = False
        self.next_round = 0
        self.current = -1

    def __len__(self) -> int:
        return self.n

    def add(self, double fly_s, double launch_s, double max_tof_s, double speed_mps, double max_acc_mps2,
            double seeker_range_m, double seeker_half_angle_rad, pos, vel, aim) -> None:
        """A round launched: it flies after the ones before it."""
        cdef Round* grown
        cdef Round* m
        if self.n == self.cap:
            grown = <Round*> realloc(self.rounds, (2 * self.cap + 4) * sizeof(Round))
            if grown == NULL:
                raise MemoryError()
            self.rounds = grown
            self.cap = 2 * self.cap + 4
        m = &self.rounds[self.n]
        m.px, m.py, m.pz = pos
        m.vx, m.vy, m.vz = vel
        m.aim_x, m.aim_y, m.aim_z = aim
        m.launch_s, m.fly_s, m.max_tof_s = launch_s, fly_s, max_tof_s
        m.speed_mps, m.max_acc_mps2, m.seeker_range_m = speed_mps, max_acc_mps2, seeker_range_m
        m.cos_half_angle = cos(seeker_half_angle_rad)
        m.miss_distance_m = INFINITY
        m.past_aim_m = 0.0
        m.search_from_s = -INFINITY
        m.acquired = -1
        m.passed_aim = False
        m.closing = False
        m.shown_miss_m, m.shown_past_aim_m, m.shown_passed_aim, m.shown_closing = INFINITY, 0.0, False, False
        self.n += 1

    def remove(self, Py_ssize_t i) -> None:
        """Round i ended: it flies no more (the ones after it keep their order)."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        memmove(&self.rounds[i], &self.rounds[i + 1], (self.n - i - 1) * sizeof(Round))
        self.n -= 1
        if self.mid_step and i < self.next_round:
            self.next_round -= 1
        if i == self.current:
            self.awaiting_removal = False
            self.current = -1

    def write_back(self, list rounds) -> None:
        """Each round's flight so far into the records of the rounds in flight (rounds[i] is round i): pos, vel,
        miss_distance_m, passed_aim, past_aim_m and closing, as the reference keeps them."""
        cdef Py_ssize_t i
        cdef Round* m
        cdef object r
        if len(rounds) != self.n:
            raise ValueError(f"{len(rounds)} records for {self.n} rounds in flight")
        for i in range(self.n):
            m = &self.rounds[i]
            r = rounds[i]
            r.pos = (m.px, m.py, m.pz)
            r.vel = (m.vx, m.vy, m.vz)
            if m.miss_distance_m != m.shown_miss_m:
                r.miss_distance_m = m.shown_miss_m = m.miss_distance_m
            if m.past_aim_m != m.shown_past_aim_m:
                r.past_aim_m = m.shown_past_aim_m = m.past_aim_m
            if m.passed_aim != m.shown_passed_aim:
                r.passed_aim = m.shown_passed_aim = m.passed_aim
            if m.closing != m.shown_closing:
                r.closing = m.shown_closing = m.closing

    @property
    def event_miss(self) -> tuple:
        """The miss vector (acquired object minus round) at the closest approach of a DETONATE."""
        return (self.mx, self.my, self.mz)

    def searched(self, Py_ssize_t acquired, double search_from_s) -> None:
        """What the current round's search found (its truth row, -1: nothing) and when it may search next."""
        if not self.awaiting_search:
            raise RuntimeError("searched() without a SEARCH to answer")
        if not -1 <= acquired < self.states.shape[0]:
            raise IndexError(acquired)
        self.rounds[self.current].acquired = acquired
        self.rounds[self.current].search_from_s = search_from_s
        self.awaiting_search = False

    def advance(self, double t_to) -> int:
        """Fly every round to t_to in steps of step_s (the last one lands on t_to), up to the first round that
        needs the model: FLOWN when the clock reached t_to, else SEARCH, DETONATE or SELF_DESTRUCT."""
        if self.awaiting_search or self.awaiting_removal:
            raise RuntimeError("advance() before the last SEARCH was answered or the ended round removed")
        with nogil:
            what = self.run(t_to)
        self.awaiting_search = what == C_SEARCH
        self.awaiting_removal = what == C_DETONATE or what == C_SELF_DESTRUCT
        return what

    cdef int run(self, double t_to) noexcept nogil:
        cdef int what
        while True:
            if not self.mid_step:
                if not self.t_s < t_to - 1e-9:
                    self.t_s = py_max(self.t_s, t_to)
                    self.current = -1
                    return C_FLOWN
                # the last step lands on t_to exactly, so summed steps do not drift from the caller's clock
                self.t1 = t_to if t_to - self.t_s <= self.step_s + 1e-9 else self.t_s + self.step_s
                self.next_round = 0
                self.mid_step = True
            while self.next_round < self.n:
                what = self.fly(self.next_round, self.resume_searched)
                self.resume_searched = what == C_SEARCH
                if what != C_FLOWN:
                    self.current = self.next_round
                    return what
                self.next_round += 1
            self.t_s = self.t1
            self.mid_step = False

    cdef int fly(self, Py_ssize_t i, bint searched) noexcept nogil:
        """Round i over the step [t_s, t1): EngagementModel._advance (from after the search when searched)."""
        cdef Round* m = &self.rounds[i]
        cdef double t0 = self.t_s, t1 = self.t1
        cdef double ts, t_end, dt, px, py, pz, vx, vy, vz, rx, ry, rz, wx, wy, wz, vv, rv, tau, scale
        cdef double acc[3]
        cdef double target[6]
        cdef Py_ssize_t row
        if t1 <= m.fly_s:
            return C_FLOWN
        ts = py_max(t0, m.fly_s)  # the motor may light inside this step
        t_end = py_min(t1, m.launch_s + m.max_tof_s)
        dt = t_end - ts
        px, py, pz = m.px, m.py, m.pz
        vx, vy, vz = m.vx, m.vy, m.vz
        if not searched:
            if dt <= 0.0:
                self.event_t_s = ts
                return C_SELF_DESTRUCT
            if m.acquired < 0 and ts >= m.search_from_s and self.in_window(m) and not (
                    self.screen_searches and self.basket_empty(m, ts)):
                self.event_t_s = ts
                return C_SEARCH
        if m.acquired >= 0:
            row = m.acquired
            if not (self.start_s[row] <= ts and ts < self.end_s[row]):
                self.event_t_s = ts
                return C_SELF_DESTRUCT  # lost lock: no re-selection
            truth_state(&self.states[0, 0, 0], self.states.shape[1], self.truth_step_s, row, ts, target)
            rx, ry, rz = target[0] - px, target[1] - py, target[2] - pz
            wx, wy, wz = target[3] - vx, target[4] - vy, target[5] - vz
            m.miss_distance_m = py_min(m.miss_distance_m, sqrt(rx * rx + ry * ry + rz * rz))
            vv = wx * wx + wy * wy + wz * wz
            rv = rx * wx + ry * wy + rz * wz
            if rv < 0.0 and vv > 0.0:
                tau = -rv / vv
                if tau < dt:  # the closest approach falls in this step (relative motion taken as straight)
                    return self.detonate(ts, tau, rx + wx * tau, ry + wy * tau, rz + wz * tau)
                m.closing = True
            elif m.closing:
                return self.detonate(ts, 0.0, rx, ry, rz)  # the range opened at the step's start
            guidance(m, self.nav, rx, ry, rz, wx, wy, wz, vx, vy, vz, acc)
        else:
            rx, ry, rz = m.aim_x - px, m.aim_y - py, m.aim_z - pz
            if not m.passed_aim and rx * vx + ry * vy + rz * vz <= 0.0:
                m.passed_aim = True
            if m.passed_aim:
                # the aim is behind: fly straight on (steering back at a point would only circle it)
                acc[0] = acc[1] = acc[2] = 0.0
                m.past_aim_m += m.speed_mps * dt
            else:
                guidance(m, self.nav, rx, ry, rz, -vx, -vy, -vz, vx, vy, vz, acc)
        vx, vy, vz = vx + acc[0] * dt, vy + acc[1] * dt, vz + acc[2] * dt
        scale = m.speed_mps / py_max(sqrt(vx * vx + vy * vy + vz * vz), 1e-9)
        m.vx, m.vy, m.vz = vx * scale, vy * scale, vz * scale
        m.px, m.py, m.pz = px + m.vx * dt, py + m.vy * dt, pz + m.vz * dt
        if (m.acquired < 0 and m.passed_aim and m.past_aim_m >= m.seeker_range_m) or \
                t_end >= m.launch_s + m.max_tof_s:
            self.event_t_s = t_end  # the search window closed empty, or max_tof_s
            return C_SELF_DESTRUCT
        return C_FLOWN

    cdef inline bint in_window(self, const Round* m) noexcept nogil:
        """Inside the search window: within seeker range of the aim point, up to seeker range past it."""
        cdef double rx, ry, rz
        if m.passed_aim:
            return m.past_aim_m < m.seeker_range_m
        rx, ry, rz = m.aim_x - m.px, m.aim_y - m.py, m.aim_z - m.pz
        return rx * rx + ry * ry + rz * rz <= m.seeker_range_m * m.seeker_range_m

    cdef bint basket_empty(self, Round* m, double ts) noexcept nogil:
        """True when the seeker's basket at ts is empty beyond doubt: every live object outside the range or the
        cone by margins (1e-9) far above what rounding can move (the model's numpy search sums and divides in
        another order). Then m.search_from_s is what EngagementModel._nothing_in_reach_until makes it, bar
        rounding: that bound keeps 1 m and 0.1 % of the closing speed in hand. False: the model searches."""
        cdef Py_ssize_t row
        cdef double obj[6]
        cdef double start, rx, ry, rz, dist, until
        cdef double bx = m.vx / m.speed_mps, by = m.vy / m.speed_mps, bz = m.vz / m.speed_mps
        cdef double reach = m.seeker_range_m * (1.0 + 1e-9), cos_min = m.cos_half_angle - 1e-9
        cdef double nearest = INFINITY, later = INFINITY
        cdef bint live = False, unplaced = False
        for row in range(self.states.shape[0]):
            start = self.start_s[row]
            if start > ts:
                later = py_min(later, start)
                continue
            if not (start <= ts and ts < self.end_s[row]):
                continue
            live = True
            truth_state(&self.states[0, 0, 0], self.states.shape[1], self.truth_step_s, row, ts, obj)
            rx, ry, rz = obj[0] - m.px, obj[1] - m.py, obj[2] - m.pz
            dist = sqrt(rx * rx + ry * ry + rz * rz)
            if dist <= reach and (rx * bx + ry * by + rz * bz) / py_max(dist, 1e-9) >= cos_min:
                return False
            if isnan(dist):
                unplaced = True  # between samples as it enters truth: no position yet, so no bound
            elif dist < nearest:
                nearest = dist
        if not live:
            m.search_from_s = later
        elif unplaced or not isfinite(nearest):
            m.search_from_s = ts
        else:
            until = ts + (nearest - m.seeker_range_m - 1.0) / ((m.speed_mps + self.max_speed_mps) * 1.001 + 1.0)
            m.search_from_s = py_min(until, later)
        return True

    cdef inline int detonate(self, double ts, double tau, double cx, double cy, double cz) noexcept nogil:
        self.event_t_s = ts
        self.event_tau_s = tau
        self.mx, self.my, self.mz = cx, cy, cz
        return C_DETONATE
