# cython: language_level=3
"""Declarations of the tracking kernel: filter steps, gating, Jonker–Volgenant assignment, the track store."""

cdef enum:
    NX = 7           # model state: x y z vx vy vz omega (omega only moves the coordinated-turn model)
    NC = 6           # combined state reported to users
    NZ = 4           # range, azimuth, elevation, range-rate
    MAXM = 3         # models in the IMM: 0 constant velocity, 1 coordinated turn left, 2 right
    MAXG = 5         # states a plot is gated against: the models, and both turns entered from CV (_gate_distance)
    NPS = 4          # stride of the per-slot covariance sums (3 used: a block of 4 stays aligned)
    MAX_SENSORS = 32
    N_AZ_BINS = 1024
    IFF_UNKNOWN = -2  # a track's recent plots establish no identity: IFF does not weigh in its association

cdef enum:  # a slot's status; the last two are hil.ext.tracker_types.TrackStatus (tracker.pyx checks they agree)
    ST_FREE = 0       # no track in this slot
    ST_TENTATIVE = 1
    ST_CONFIRMED = 2

cdef struct Params:
    int n_models
    double q_cv, q_ct, q_omega, q_gate
    double gate3, gate4
    double rate01, rate10, rate_rev, init_mu_ct
    double turn_entry_acc, turn_entry_sigma_acc, turn_min_speed
    double init_speed_sigma, init_omega_sigma
    int use_range_rate
    int confirm_m, confirm_n, delete_misses
    double max_pos_var
    double iff_missing, iff_unexpected  # association cost (distance²) of a plot whose code disagrees
    int iff_window, iff_k  # a track's identity: an answer seen in k of its last window plots

cdef struct Counters:
    long long plots_in, plots_used, bad_plots, late_plots, gated_out, gate_tests
    long long new_tracks, confirmed, deleted, dropped_full, late_sweeps, clusters, big_clusters

cdef struct IntBuf:
    int* p
    Py_ssize_t cap

cdef struct DblBuf:
    double* p
    Py_ssize_t cap

# --- filter steps on one state (all sizes fixed; n is the row stride: NX for models, NC combined) -------
cdef void predict_cv(int n, double* x, double* P, double dt, double q, double omega_var=*) noexcept nogil
cdef void predict_ct(double* x, double* P, double dt, double q, double q_omega) noexcept nogil
cdef int measure(int n, const double* x, const double* site, int use_rr, double* zhat, double* H) noexcept nogil
cdef int innovation(int n, const double* x, const double* P, const double* z, int nz, const double* site,
                    const double* r2, double* nu, double* S, double* H, double* d2, double* logdet,
                    double* PHt) noexcept nogil
cdef int ekf_update(int n, double* x, double* P, const double* z, int nz, const double* site,
                    const double* r2, double* d2, double* logdet) noexcept nogil

# --- assignment -------------------------------------------------------------------------------------------
cdef int square_assign(int n, const double* cost, int* row_to_col, double* work, int* iwork) noexcept nogil
