# cython: language_level=3
"""Declarations of the fire-control kernel: threat evaluation, intercept solution, envelope, Pk, assignment."""

cdef enum:
    # RefusalReason codes (hil.ext.firecontrol_types.RefusalReason: firecontrol.pyx checks they agree)
    R_NONE = 0
    R_INVALID_TRACK = 1
    R_FRIENDLY = 2
    R_NOT_CONFIRMED = 3
    R_NO_FIRE_ZONE = 4
    R_NOT_A_THREAT = 5
    R_ALREADY_ENGAGED = 6
    R_SHOTS_EXHAUSTED = 7
    R_LAUNCHER_NOT_ARMED = 8
    R_LAUNCHER_NOT_READY = 9
    R_NO_ROUNDS = 10
    R_NO_CHANNEL = 11
    R_UNREACHABLE = 12
    R_TOF = 13
    R_OUT_OF_RANGE = 14
    R_ALTITUDE = 15
    R_SECTOR = 16
    R_TOO_LATE = 17
    R_INTERCEPT_IN_NO_FIRE_ZONE = 18
    R_LOW_PK = 19
    R_OUTRANKED = 20
    R_NO_LAUNCHER = 21
    R_PROTECTED_NEAR_INTERCEPT = 22
    R_NEUTRAL = 23
    R_KILL_ASSESSMENT = 24

cdef struct Launcher:
    double x, y, z
    double speed, delay, slew_rate      # m/s, s, rad/s (0: no slew time)
    double min_r, max_r, min_alt, max_alt, max_tof
    double sector_centre, sector_half   # rad; sector_half >= pi: all round
    double sin_c, cos_c, cos_half       # the sector centre's unit vector (east, north) and cos(sector_half)
    double pk_base
    int channels
    double seeker_range, protect_r, lethal  # m: the seeker's search range S, the protection radius, lethal radius

cdef struct Asset:
    double x, y, z, radius, value

cdef struct Zone:
    double cx, cy, r, r2, zmin, zmax

cdef struct Params:
    double horizon, miss_scale, t_ref, basket2, aspect_pen, tof_pen, min_pk
    int slew_iters, shots_per_engagement, max_shots, launches_per_launcher
    double atan_c[10]  # hil.ext.firecontrol_types.SLEW_ATAN_COEFFS
    # protection (hil.ext.firecontrol_types docstring): safety_sigmas, the default velocity variance, launch timing
    # margin
    double sigmas, vel_var, timing
    # bounds over every launcher for the per-track prefilter: the largest S, S/u and protection radius, the
    # latest intercept time of a feasible pair (delay + a half-turn of slew + max_tof) and that plus S/u
    double seeker_max, h_max, protect_max, t_int_max, t_end_max

cdef struct Protect:  # the protected (friendly or neutral, valid) tracks of one evaluation
    int n
    const int* index          # their rows in the inputs, in input order
    const double* st          # every row's state (rows x 6)
    const double* pos_var     # every row's position variance
    const double* vel_var     # every row's velocity variance; NULL: Params.vel_var for all
    const double* sigma_end   # per protected track: predicted sigma at Params.t_end_max
    const double* speed       # per protected track: |v|
    int* near                 # scratch: the protected tracks (positions in index) near the track being solved
    int n_near

# --- geometry ------------------------------------------------------------------------------------------
cdef double intercept_tof(double rx, double ry, double rz, double vx, double vy, double vz,
                          double speed, double delay) noexcept nogil
cdef double angle_between(double s, double c, const double* coeffs) noexcept nogil
cdef int in_zone(double x, double y, double z, const Zone* zones, int nz) noexcept nogil
cdef int path_in_zone(const double* a, const double* b, double half, double widen, const Zone* zones,
                      int nz) noexcept nogil
cdef double seg_seg_dist2(const double* p1, const double* d1, const double* p2, const double* d2) noexcept nogil
cdef void threat_of(const double* x, const Asset* assets, int na, const Params* p,
                    double* score, double* t_cpa, double* d_cpa, double* t_asset, int* asset) noexcept nogil
cdef int solve_pair(const Launcher* la, const double* x, double f_track, double speed, double t_asset,
                    double pos_var, double vel_var, const Zone* zones, int nz, const Params* p, const Protect* pr,
                    double* t_out, double* tof_out, double* pk_out, int* prot_out) noexcept nogil

# --- assignment (maximise the expected threat score destroyed) -------------------------------------------
cdef struct Scratch:  # one block of working memory, grown on demand and reused from call to call
    char* p
    Py_ssize_t cap

cdef int greedy_mmr(int n_l, int m, const int* cand, const double* score, const double* pk,
                    const signed char* code, int* left, int* cap, double* q, int* out_t, int* out_l) noexcept nogil
cdef int lap_shots(Scratch* w, int n_l, int m, int n_slots, const int* cand, const int* cap, const double* score,
                   const double* pk, const signed char* code, int* out_t, int* out_l) noexcept nogil
cdef int greedy_shots(Scratch* w, int n_l, int m, const int* cand, const int* left, const int* cap,
                      const double* score, const double* pk, const signed char* code, int* out_t,
                      int* out_l) noexcept nogil
