# cython: language_level=3
"""Declarations of the hot-path radar link decoder (framing + CAT048 into struct-of-arrays plot buffers)."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t

cdef enum:
    MAX_CONTENT = 1037          # type + seq + t_us + 1024 payload + crc
    BUF_SIZE = 1040
    MAX_SERVICE = 160           # > the CAT034 records a 1024-byte payload can hold (7 bytes each at least)
    MAX_UAP = 28
    MAX_SUB = 8
    N_COUNTERS = 18
    RECENT_FRAMES = 32          # frames remembered by (seq, board time) to recognise one that comes again

# counter slots; the ASTERIX reject codes are their own counter slots
cdef enum:
    C_FRAMES_OK = 0
    C_CRC
    C_LENGTH
    C_ESCAPE
    C_UNKNOWN_TYPE
    C_BYTES_DISCARDED
    C_SEQ_GAPS
    C_FRAMES_LOST
    C_SEQ_RESETS
    C_ASTERIX_OK
    C_TRUNCATED
    C_UNKNOWN_CATEGORY
    C_OUT_OF_RANGE
    C_UNSUPPORTED_ITEM
    C_MISSING_ITEM
    C_PLOTS_OK
    C_PLOTS_DROPPED
    C_DUPLICATES

cdef struct ItemSpec:
    int kind                    # FIXED, EXTENDED, REPETITIVE, EXPLICIT, COMPOUND (as in drivers/asterix.py)
    int size
    int nsub
    int sub_kind[MAX_SUB]       # -1: spare subfield
    int sub_size[MAX_SUB]

cdef struct Service:
    int sac
    int sic
    int message_type
    double tod_s
    double sector_azimuth_rad
    double rotation_period_s
    int64_t board_t_us

cdef uint16_t crc16_ccitt(const uint8_t* data, Py_ssize_t n) noexcept nogil
cdef int skip_item(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end, const ItemSpec* spec,
                   Py_ssize_t* stop) noexcept nogil
cdef int split_record(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end, const ItemSpec* uap, int uap_len,
                      Py_ssize_t* item_pos, Py_ssize_t* next_pos) noexcept nogil
cdef double elevation(double height_m, double range_m, double site_z_m) noexcept nogil


cdef class LinkDecoder:
    cdef uint8_t buf[BUF_SIZE]
    cdef Py_ssize_t blen
    cdef bint in_frame, escaped, overlong, pending_clear
    cdef int last_seq
    cdef int recent_seq[RECENT_FRAMES]
    cdef uint64_t recent_t_us[RECENT_FRAMES]
    cdef int recent_pos
    cdef public int sensor
    cdef public double site_z_m
    cdef public bint keep_asterix
    cdef int64_t c[N_COUNTERS]
    cdef Service services[MAX_SERVICE]
    cdef int n_services
    cdef int event
    cdef int ev_type
    cdef int ev_seq
    cdef uint64_t ev_t_us
    cdef const uint8_t* ev_payload
    cdef Py_ssize_t ev_len
    # OUT: the data of the caller's PlotBatch columns, bound at the start of each feed() call
    cdef double* o_t_s
    cdef int32_t* o_sensor
    cdef double* o_range_m
    cdef double* o_azimuth_rad
    cdef double* o_elevation_rad
    cdef double* o_range_rate_mps
    cdef int32_t* o_mode3a
    cdef int64_t* o_board_t_us
    cdef int64_t* o_host_rx_ns
    cdef Py_ssize_t out_n
    cdef Py_ssize_t out_cap

    cdef Py_ssize_t scan(self, const uint8_t* data, Py_ssize_t n, Py_ssize_t pos, int64_t host_rx_ns) noexcept nogil
    cdef void close_frame(self, int64_t host_rx_ns) noexcept nogil
    cdef void reject(self, int reason, Py_ssize_t nbytes) noexcept nogil
    cdef int decode_asterix(self, const uint8_t* d, Py_ssize_t n, int64_t t_us, bint framed,
                            int64_t host_rx_ns) noexcept nogil
    cdef int plot(self, const uint8_t* d, const Py_ssize_t* item_pos, int64_t t_us, bint framed,
                  int64_t host_rx_ns, int64_t* dropped) noexcept nogil
    cdef int _bind(self, batch) except -1
    cdef list _events(self, int64_t host_rx_ns)
    cdef int service(self, const uint8_t* d, const Py_ssize_t* item_pos, int64_t t_us, bint framed) noexcept nogil
