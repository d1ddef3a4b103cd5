# cython: language_level=3
"""Hot-path radar link decoder: stuffed frames in any chunking -> checked -> CAT048 plots in a PlotBatch.

Plots never become Python objects: they are written straight into the caller's PlotBatch columns (through
their data pointers, checked on every call: a call costs well under a microsecond plus the bytes' decoding).
The rare rest (non-ASTERIX frames, CAT034 messages, raw payloads when recording) comes back as Python
objects. The batch functions below do what a radar link does with a batch after decoding (plot times from
the board's clock, the first and last board stamps, runs of equal plot times for the recording) in C, at a
fraction of a microsecond where numpy needs several per call. The numpy/pure-Python twins are in
hil.ext.reference.decode; tests prove they agree, bit for bit.
"""

cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.math cimport NAN, asin, isnan, rint
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memset

from hil.ext.arrays cimport empty1

import numpy as np

cnp.import_array()

from hil.drivers import asterix as _ax
from hil.drivers.framing import KNOWN_TYPES, Frame

COUNTER_NAMES = (
    "frames_ok", "crc", "length", "escape", "unknown_type", "bytes_discarded", "seq_gaps", "frames_lost",
    "seq_resets", "asterix_ok", "truncated", "unknown_category", "out_of_range", "unsupported_item",
    "missing_item", "plots_ok", "plots_dropped", "duplicates",
)

cdef enum:
    FLAG = 0x7E
    ESCAPE = 0x7D
    HEADER_LEN = 11
    MIN_CONTENT = 13
    SEQ_RESET_GAP = 0x8000
    TOD_WRAP = 86400 * 128
    EV_NONE = 0
    EV_FRAME = 1
    EV_ASTERIX = 2
    K_FIXED = 0
    K_EXTENDED = 1
    K_REPETITIVE = 2
    K_EXPLICIT = 3
    K_COMPOUND = 4
    # FRN indices (0-based) of the items the host reads
    I048_010 = 0
    I048_140 = 1
    I048_040 = 3
    I048_070 = 4
    I048_110 = 18
    I048_120 = 19
    I034_010 = 0
    I034_000 = 1
    I034_030 = 2
    I034_020 = 3
    I034_041 = 4

# the counters a radar link reports as rejected (hil.drivers.radar_link.REJECT_KEYS), in rejected_total
cdef int[9] REJECT_SLOTS = [C_CRC, C_LENGTH, C_ESCAPE, C_UNKNOWN_TYPE, C_TRUNCATED, C_UNKNOWN_CATEGORY,
                            C_OUT_OF_RANGE, C_UNSUPPORTED_ITEM, C_MISSING_ITEM]
cdef uint16_t CRC_TABLE[256]
cdef bint KNOWN[256]
cdef ItemSpec UAP048[MAX_UAP]
cdef ItemSpec UAP034[MAX_UAP]
cdef int UAP048_LEN = len(_ax.UAP[48])
cdef int UAP034_LEN = len(_ax.UAP[34])
cdef double RHO_LSB_M = _ax.RHO_LSB_M
cdef double THETA_LSB_RAD = _ax.THETA_LSB_RAD
cdef double HEIGHT_LSB_M = _ax.HEIGHT_LSB_M
cdef double SECTOR_LSB_RAD = _ax.SECTOR_LSB_RAD
cdef double TOD_LSB_S = _ax.TOD_LSB_S


cdef void _fill_uap(ItemSpec* table, list uap) except *:
    cdef int i, j
    assert len(uap) <= MAX_UAP
    for i, (_name, kind, spec) in enumerate(uap):
        table[i].kind = kind
        table[i].size = 0
        table[i].nsub = 0
        if kind == K_COMPOUND:
            assert len(spec) <= MAX_SUB
            table[i].nsub = len(spec)
            for j, (sk, ss) in enumerate(spec):
                table[i].sub_kind[j] = sk
                table[i].sub_size[j] = ss
        else:
            table[i].size = spec


def _init_tables():
    """Fill the C tables from the Python ones, so the UAP layout is written down only in drivers/asterix.py."""
    cdef int i, crc, bit
    for i in range(256):
        crc = i << 8
        for bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        CRC_TABLE[i] = crc & 0xFFFF
        KNOWN[i] = i in KNOWN_TYPES
    _fill_uap(UAP048, _ax.UAP[48])
    _fill_uap(UAP034, _ax.UAP[34])


_init_tables()


cdef uint16_t crc16_ccitt(const uint8_t* data, Py_ssize_t n) noexcept nogil:
    cdef uint16_t crc = 0xFFFF
    cdef Py_ssize_t i
    for i in range(n):
        crc = <uint16_t>((crc << 8) ^ CRC_TABLE[(crc >> 8) ^ data[i]])
    return crc


cdef double elevation(double height_m, double range_m, double site_z_m) noexcept nogil:
    """Same expression as hil.drivers.plot_batch.elevation_from_height."""
    cdef double s
    if isnan(height_m):
        return NAN
    if range_m > 0.0:
        s = (height_m - site_z_m) / range_m
        if s > 1.0:
            s = 1.0
        elif s < -1.0:
            s = -1.0
        return asin(s)
    return 0.0


cdef inline Py_ssize_t fx_end(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """Position just past the FX-extended field at pos (each octet's low bit asks for one more: an FSPEC, a
    compound item's primary subfield, an extended item); -1 if it runs past end. Mirrors asterix.py _fx_bits."""
    while pos < end:
        pos += 1
        if not d[pos - 1] & 1:
            return pos
    return -1


cdef int skip_item(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end, const ItemSpec* spec,
                   Py_ssize_t* stop_out) noexcept nogil:
    """Sets stop_out past the item at pos; 0 or a reject code. Mirrors drivers/asterix.py _item_end."""
    cdef Py_ssize_t stop, p, prim_end
    cdef int k, bit, idx
    if spec.kind == K_FIXED:
        stop = pos + spec.size
    elif spec.kind == K_EXTENDED:
        stop = fx_end(d, pos, end)
        if stop < 0:
            return C_TRUNCATED
    elif spec.kind == K_REPETITIVE:
        if pos >= end:
            return C_TRUNCATED
        stop = pos + 1 + d[pos] * spec.size
    elif spec.kind == K_EXPLICIT:
        if pos >= end or d[pos] < 1:
            return C_TRUNCATED
        stop = pos + d[pos]
    else:
        prim_end = fx_end(d, pos, end)
        if prim_end < 0:
            return C_TRUNCATED
        stop = prim_end
        k = 0
        for p in range(pos, prim_end):
            for bit in range(7):
                if d[p] & (0x80 >> bit):
                    idx = k + bit
                    if idx >= spec.nsub or spec.sub_kind[idx] < 0:
                        return C_UNSUPPORTED_ITEM
                    if spec.sub_kind[idx] == K_FIXED:
                        stop += spec.sub_size[idx]
                    else:
                        if stop >= end:
                            return C_TRUNCATED
                        stop += 1 + d[stop] * spec.sub_size[idx]
            k += 7
    if stop > end:
        return C_TRUNCATED
    stop_out[0] = stop
    return 0


cdef int split_record(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end, const ItemSpec* uap, int uap_len,
                      Py_ssize_t* item_pos, Py_ssize_t* next_pos) noexcept nogil:
    """Item start positions (-1 = absent) of the record at pos; 0 or a reject code. Mirrors split_record."""
    cdef Py_ssize_t fspec = pos, fspec_end = fx_end(d, pos, end), p, stop
    cdef int i, k, bit, frn, rc
    if fspec_end < 0:
        return C_TRUNCATED
    pos = fspec_end
    for i in range(uap_len):
        item_pos[i] = -1
    k = 0
    for p in range(fspec, fspec_end):
        for bit in range(7):
            if d[p] & (0x80 >> bit):
                frn = k + bit
                if frn >= uap_len:
                    return C_UNSUPPORTED_ITEM
                item_pos[frn] = pos
                rc = skip_item(d, pos, end, &uap[frn], &stop)
                if rc:
                    return rc
                pos = stop
        k += 7
    next_pos[0] = pos
    return 0


cdef inline int64_t tod_board_us(int64_t tod128) noexcept nogil:
    return (tod128 * 1000000) // 128


cdef char* column(object batch, str name, int typenum, Py_ssize_t length) except NULL:
    """The data pointer of one PlotBatch column: a writable, aligned, native-order, contiguous 1-D ndarray of
    typenum with `length` rows (any length when -1)."""
    arr = getattr(batch, name)
    cdef cnp.ndarray a
    if not cnp.PyArray_Check(arr):
        raise ValueError(f"PlotBatch.{name} is not a numpy array")
    a = <cnp.ndarray>arr
    if (cnp.PyArray_NDIM(a) != 1 or not cnp.PyArray_EquivTypenums(cnp.PyArray_TYPE(a), typenum)
            or not cnp.PyArray_ISCARRAY(a)):
        raise ValueError(f"PlotBatch.{name} must be a writable contiguous 1-D {cnp.PyArray_DescrFromType(typenum)} "
                         f"array, not {a.dtype} in {a.ndim} dimension(s)")
    if length >= 0 and cnp.PyArray_DIM(a, 0) != length:
        raise ValueError("PlotBatch columns differ in length")
    return cnp.PyArray_BYTES(a)


cdef Py_ssize_t valid_rows(object batch, str name) except -1:
    """batch.n, checked against the length of the column `name`."""
    cdef Py_ssize_t n = batch.n
    cdef Py_ssize_t cap = len(getattr(batch, name))
    if not 0 <= n <= cap:
        raise ValueError(f"PlotBatch.n = {n} outside its capacity {cap}")
    return n


cdef inline int64_t board_to_host(int64_t board_us, int64_t ref_ns, double offset_ns, double scale) noexcept nogil:
    """hil.drivers.timesync.ClockSync.board_to_host_ns as numpy computes it, given its reference, offset and
    1 + drift: the same float64 operations in the same order, int64 sums that wrap as numpy's do (done unsigned,
    where C defines the wrap)."""
    cdef int64_t rel = <int64_t>(<uint64_t>board_us * 1000u - <uint64_t>ref_ns)
    return <int64_t>(<uint64_t>ref_ns + <uint64_t><int64_t>rint((<double>rel - offset_ns) / scale))


def map_board_times(batch, int64_t ref_ns, double offset_ns, double drift):
    """t_s of the batch's plots (rows [0, n)) from their board stamps, through a clock mapping:
    host_ns = ref_ns + rint((board_t_us * 1000 - ref_ns - offset_ns) / (1 + drift)), t_s = host_ns / 1e9.
    Exactly ClockSync.board_to_host_ns(batch.board_t_us[:n]) / 1e9 for that ClockSync's parameters.
    Returns board_time_span(batch) (None when the batch is empty): the radar link's poll needs both, one call."""
    cdef Py_ssize_t n = valid_rows(batch, "t_s"), i
    cdef double* t_s = <double*>column(batch, "t_s", cnp.NPY_FLOAT64, -1)
    cdef const int64_t* board = <const int64_t*>column(batch, "board_t_us", cnp.NPY_INT64, len(batch.t_s))
    cdef double scale = 1.0 + drift
    with nogil:
        for i in range(n):
            t_s[i] = <double>board_to_host(board[i], ref_ns, offset_ns, scale) / 1e9
    return _span(board, n)


cdef object _span(const int64_t* board, Py_ssize_t n):
    """(earliest, last) of n board stamps; None when n is 0."""
    cdef Py_ssize_t i
    cdef int64_t lo
    if n == 0:
        return None
    lo = board[0]
    for i in range(1, n):
        if board[i] < lo:
            lo = board[i]
    return lo, board[n - 1]


def board_to_host_s(int64_t board_us, int64_t ref_ns, double offset_ns, double drift):
    """One board stamp through the same mapping as map_board_times: host seconds."""
    return <double>board_to_host(board_us, ref_ns, offset_ns, 1.0 + drift) / 1e9


def receive_times(batch):
    """t_s of the batch's plots (rows [0, n)) as their receive times: host_rx_ns / 1e9. Returns
    board_time_span(batch) (None when the batch is empty), as map_board_times does."""
    cdef Py_ssize_t n = valid_rows(batch, "t_s"), i
    cdef double* t_s = <double*>column(batch, "t_s", cnp.NPY_FLOAT64, -1)
    cdef const int64_t* rx = <const int64_t*>column(batch, "host_rx_ns", cnp.NPY_INT64, len(batch.t_s))
    cdef const int64_t* board = <const int64_t*>column(batch, "board_t_us", cnp.NPY_INT64, len(batch.t_s))
    with nogil:
        for i in range(n):
            t_s[i] = <double>rx[i] / 1e9
    return _span(board, n)


def board_time_span(batch):
    """(earliest, last row's) board_t_us of the batch's plots; the batch must hold at least one."""
    cdef Py_ssize_t n = valid_rows(batch, "board_t_us")
    cdef const int64_t* board = <const int64_t*>column(batch, "board_t_us", cnp.NPY_INT64, -1)
    if n == 0:
        raise ValueError("board_time_span of an empty PlotBatch")
    return _span(board, n)


def time_runs(batch):
    """The batch's plot times (rows [0, n)) as runs of equal values in order: [[t_s, count], ...] (a frame's
    plots share its time; the recording keeps these, and JSON keeps every bit of a float)."""
    cdef Py_ssize_t n = valid_rows(batch, "t_s"), a = 0, b
    cdef const double* t_s = <const double*>column(batch, "t_s", cnp.NPY_FLOAT64, -1)
    cdef list out = []
    for b in range(1, n + 1):
        if b == n or t_s[b] != t_s[b - 1]:
            out.append([t_s[a], b - a])
            a = b
    return out


def run_times(batch, double start_s):
    """(t_run, latest_rx_ns, in_order) of the batch's plots (rows [0, n)), in one pass for the host's fire path:
    t_run float64[n] = t_s - start_s (the run time of each plot, numpy's subtraction), latest_rx_ns the latest
    host_rx_ns (0 when empty), in_order whether no plot time is below the one before it (numpy's
    not (t[1:] < t[:-1]).any(): a NaN breaks no order)."""
    cdef Py_ssize_t n = valid_rows(batch, "t_s"), i
    cdef const double* t_s = <const double*>column(batch, "t_s", cnp.NPY_FLOAT64, -1)
    cdef const int64_t* rx = <const int64_t*>column(batch, "host_rx_ns", cnp.NPY_INT64, len(batch.t_s))
    out_a = empty1(n, cnp.NPY_FLOAT64)
    cdef double* out = <double*>cnp.PyArray_DATA(<cnp.ndarray>out_a)
    cdef int64_t latest = 0
    cdef bint in_order = True
    with nogil:
        for i in range(n):
            out[i] = t_s[i] - start_s
            if i == 0 or rx[i] > latest:
                latest = rx[i]
            if i > 0 and t_s[i] < t_s[i - 1]:
                in_order = False
    return out_a, latest, in_order


cdef class LinkDecoder:
    """Stream decoder of one radar link: feed(bytes, host_rx_ns, batch) -> rare events; plots land in batch.

    sensor: written into every plot; site_z_m: the radar's height in the local ENU frame (for elevation);
    keep_asterix: also hand back each ASTERIX payload as AsterixPayload (for recording).
    Rejects are counted (counters), never raised; an ASTERIX payload is taken whole or not at all.
    """

    def __init__(self, int sensor=0, double site_z_m=0.0, bint keep_asterix=False):
        self.sensor = sensor
        self.site_z_m = site_z_m
        self.keep_asterix = keep_asterix
        self.blen = 0
        self.in_frame = self.escaped = self.overlong = self.pending_clear = False
        self.last_seq = -1
        self.recent_pos = 0
        for i in range(RECENT_FRAMES):
            self.recent_seq[i] = -1
        memset(self.c, 0, sizeof(self.c))
        self.n_services = 0
        self.event = EV_NONE

    @property
    def counters(self):
        return {name: self.c[i] for i, name in enumerate(COUNTER_NAMES)}

    @property
    def seq_resets(self):
        """counters["seq_resets"], without building the dict."""
        return self.c[C_SEQ_RESETS]

    @property
    def rejected_total(self):
        """The sum of every reject counter and plots_dropped: when it changes, counters has something to report."""
        cdef int i
        cdef int64_t total = self.c[C_PLOTS_DROPPED]
        for i in REJECT_SLOTS:
            total += self.c[i]
        return total

    cdef void reject(self, int reason, Py_ssize_t nbytes) noexcept nogil:
        self.c[reason] += 1
        self.c[C_BYTES_DISCARDED] += nbytes

    cdef Py_ssize_t scan(self, const uint8_t* data, Py_ssize_t n, Py_ssize_t pos, int64_t host_rx_ns) noexcept nogil:
        """Consume data[pos:n]; returns where it stopped (n, or just after a frame that made an event)."""
        cdef uint8_t b
        if self.pending_clear:
            self.blen = 0
            self.escaped = self.overlong = self.pending_clear = False
        while pos < n:
            b = data[pos]
            pos += 1
            if b == FLAG:
                if self.in_frame and (self.blen or self.escaped or self.overlong):
                    self.close_frame(host_rx_ns)
                    if self.event != EV_NONE:
                        self.in_frame = self.pending_clear = True
                        return pos
                self.in_frame = True
                self.blen = 0
                self.escaped = self.overlong = False
            elif not self.in_frame or self.overlong:
                self.c[C_BYTES_DISCARDED] += 1
            elif self.escaped:
                self.buf[self.blen] = b ^ 0x20
                self.blen += 1
                self.escaped = False
            elif b == ESCAPE:
                self.escaped = True
            else:
                self.buf[self.blen] = b
                self.blen += 1
            if self.in_frame and not self.overlong and self.blen > MAX_CONTENT:
                # Garbage must not grow without bound: drop it and wait for the next flag.
                self.reject(C_LENGTH, self.blen)
                self.overlong = True
                self.blen = 0
        return pos

    cdef void close_frame(self, int64_t host_rx_ns) noexcept nogil:
        cdef Py_ssize_t n = self.blen
        cdef uint16_t got
        cdef int seq, gap, i
        cdef uint64_t t_us = 0
        if self.overlong:
            return
        if self.escaped:
            self.reject(C_ESCAPE, n + 1)
            return
        if n < MIN_CONTENT:
            self.reject(C_LENGTH, n)
            return
        got = <uint16_t>((self.buf[n - 2] << 8) | self.buf[n - 1])
        if got != crc16_ccitt(self.buf, n - 2):
            self.reject(C_CRC, n)
            return
        if not KNOWN[self.buf[0]]:
            self.reject(C_UNKNOWN_TYPE, n)
            return
        seq = self.buf[1] | (self.buf[2] << 8)
        for i in range(8):
            t_us |= (<uint64_t>self.buf[3 + i]) << (8 * i)
        for i in range(RECENT_FRAMES):
            if self.recent_seq[i] == seq and self.recent_t_us[i] == t_us:
                # a frame taken in a moment ago, again (a link that repeats itself): counted, not decoded twice,
                # and not a board that restarted its counter (that one's clock starts over too)
                self.c[C_DUPLICATES] += 1
                self.c[C_BYTES_DISCARDED] += n
                return
        self.recent_seq[self.recent_pos] = seq
        self.recent_t_us[self.recent_pos] = t_us
        self.recent_pos = (self.recent_pos + 1) % RECENT_FRAMES
        if self.last_seq >= 0:
            gap = (seq - self.last_seq - 1) & 0xFFFF
            if gap >= SEQ_RESET_GAP:
                self.c[C_SEQ_RESETS] += 1
            elif gap:
                self.c[C_SEQ_GAPS] += 1
                self.c[C_FRAMES_LOST] += gap
        self.last_seq = seq
        self.c[C_FRAMES_OK] += 1
        self.ev_type = self.buf[0]
        self.ev_seq = seq
        self.ev_t_us = t_us
        self.ev_payload = self.buf + HEADER_LEN
        self.ev_len = n - MIN_CONTENT
        if self.ev_type == 0x01:
            self.decode_asterix(self.ev_payload, self.ev_len, <int64_t>t_us, True, host_rx_ns)
            if self.keep_asterix or self.n_services:
                self.event = EV_ASTERIX
        else:
            self.event = EV_FRAME

    cdef int decode_asterix(self, const uint8_t* d, Py_ssize_t n, int64_t t_us, bint framed,
                            int64_t host_rx_ns) noexcept nogil:
        """All blocks of one payload into the OUT columns; on any reject, nothing of it is kept."""
        cdef Py_ssize_t n0 = self.out_n, pos = 0, end, rp, next_pos
        cdef Py_ssize_t item_pos[MAX_UAP]
        cdef int rc = 0, cat, length
        cdef int64_t dropped = 0
        self.n_services = 0
        while pos < n:
            if n - pos < 3:
                rc = C_TRUNCATED
                break
            cat = d[pos]
            length = (d[pos + 1] << 8) | d[pos + 2]
            end = pos + length
            if length < 3 or end > n:
                rc = C_TRUNCATED
                break
            if cat != 48 and cat != 34:
                rc = C_UNKNOWN_CATEGORY
                break
            rp = pos + 3
            while rp < end:
                if cat == 48:
                    rc = split_record(d, rp, end, UAP048, UAP048_LEN, item_pos, &next_pos)
                    if not rc:
                        rc = self.plot(d, item_pos, t_us, framed, host_rx_ns, &dropped)
                else:
                    rc = split_record(d, rp, end, UAP034, UAP034_LEN, item_pos, &next_pos)
                    if not rc:
                        rc = self.service(d, item_pos, t_us, framed)
                if rc:
                    break
                rp = next_pos
            if rc:
                break
            pos = end
        if rc:
            self.out_n = n0
            self.n_services = 0
            self.c[rc] += 1
            return rc
        self.c[C_ASTERIX_OK] += 1
        self.c[C_PLOTS_OK] += self.out_n - n0
        self.c[C_PLOTS_DROPPED] += dropped
        return 0

    cdef int plot(self, const uint8_t* d, const Py_ssize_t* item_pos, int64_t t_us, bint framed,
                  int64_t host_rx_ns, int64_t* dropped) noexcept nogil:
        cdef Py_ssize_t p, i
        cdef int64_t tod
        cdef int v
        cdef double rng, h = NAN, rr = NAN
        if item_pos[I048_010] < 0 or item_pos[I048_140] < 0 or item_pos[I048_040] < 0:
            return C_MISSING_ITEM
        p = item_pos[I048_140]
        tod = (<int64_t>d[p] << 16) | (d[p + 1] << 8) | d[p + 2]
        if tod >= TOD_WRAP:
            return C_OUT_OF_RANGE
        if self.out_n >= self.out_cap:
            dropped[0] += 1
            return 0
        i = self.out_n
        p = item_pos[I048_040]
        rng = ((d[p] << 8) | d[p + 1]) * RHO_LSB_M
        self.o_range_m[i] = rng
        self.o_azimuth_rad[i] = ((d[p + 2] << 8) | d[p + 3]) * THETA_LSB_RAD
        p = item_pos[I048_110]
        if p >= 0:
            v = ((d[p] << 8) | d[p + 1]) & 0x3FFF
            h = (v - 0x4000 if v & 0x2000 else v) * HEIGHT_LSB_M
        self.o_elevation_rad[i] = elevation(h, rng, self.site_z_m)
        p = item_pos[I048_120]
        if p >= 0 and d[p] & 0x80:
            v = ((d[p + 1] << 8) | d[p + 2]) & 0x03FF
            rr = v - 0x400 if v & 0x200 else v
        self.o_range_rate_mps[i] = rr
        p = item_pos[I048_070]
        self.o_mode3a[i] = (((d[p] << 8) | d[p + 1]) & 0x0FFF) if p >= 0 else -1
        self.o_t_s[i] = NAN
        self.o_sensor[i] = self.sensor
        self.o_board_t_us[i] = t_us if framed else tod_board_us(tod)
        self.o_host_rx_ns[i] = host_rx_ns
        self.out_n = i + 1
        return 0

    cdef int service(self, const uint8_t* d, const Py_ssize_t* item_pos, int64_t t_us, bint framed) noexcept nogil:
        cdef Py_ssize_t p
        cdef int64_t tod
        cdef int mtype
        cdef Service* s
        if item_pos[I034_010] < 0 or item_pos[I034_000] < 0 or item_pos[I034_030] < 0:
            return C_MISSING_ITEM
        mtype = d[item_pos[I034_000]]
        if mtype < 1 or mtype > 4:
            return C_OUT_OF_RANGE
        p = item_pos[I034_030]
        tod = (<int64_t>d[p] << 16) | (d[p + 1] << 8) | d[p + 2]
        if tod >= TOD_WRAP:
            return C_OUT_OF_RANGE
        s = &self.services[self.n_services]
        self.n_services += 1
        p = item_pos[I034_010]
        s.sac = d[p]
        s.sic = d[p + 1]
        s.message_type = mtype
        s.tod_s = tod * TOD_LSB_S
        p = item_pos[I034_020]
        s.sector_azimuth_rad = d[p] * SECTOR_LSB_RAD if p >= 0 else NAN
        p = item_pos[I034_041]
        s.rotation_period_s = ((d[p] << 8) | d[p + 1]) / 128.0 if p >= 0 else NAN
        s.board_t_us = t_us if framed else tod_board_us(tod)
        return 0

    cdef int _bind(self, batch) except -1:
        """IN: batch, a hil.drivers.plot_batch.PlotBatch; checks its columns and binds them as OUT (for one call:
        the caller holds the batch, the batch its columns)."""
        self.o_t_s = <double*>column(batch, "t_s", cnp.NPY_FLOAT64, -1)
        self.out_cap = len(batch.t_s)
        self.o_sensor = <int32_t*>column(batch, "sensor", cnp.NPY_INT32, self.out_cap)
        self.o_range_m = <double*>column(batch, "range_m", cnp.NPY_FLOAT64, self.out_cap)
        self.o_azimuth_rad = <double*>column(batch, "azimuth_rad", cnp.NPY_FLOAT64, self.out_cap)
        self.o_elevation_rad = <double*>column(batch, "elevation_rad", cnp.NPY_FLOAT64, self.out_cap)
        self.o_range_rate_mps = <double*>column(batch, "range_rate_mps", cnp.NPY_FLOAT64, self.out_cap)
        self.o_mode3a = <int32_t*>column(batch, "mode3a", cnp.NPY_INT32, self.out_cap)
        self.o_board_t_us = <int64_t*>column(batch, "board_t_us", cnp.NPY_INT64, self.out_cap)
        self.o_host_rx_ns = <int64_t*>column(batch, "host_rx_ns", cnp.NPY_INT64, self.out_cap)
        self.out_n = valid_rows(batch, "t_s")
        return 0

    cdef list _events(self, int64_t host_rx_ns):
        """The Python objects of the event left by the last frame (GIL held; rare)."""
        cdef list out = []
        cdef int i
        cdef Service* s
        payload = (<const char*>self.ev_payload)[:self.ev_len] if self.ev_len > 0 else b""
        if self.event == EV_FRAME:
            out.append(Frame(self.ev_type, self.ev_seq, self.ev_t_us, payload))
        else:
            if self.keep_asterix:
                out.append(_ax.AsterixPayload(host_rx_ns, payload))
            for i in range(self.n_services):
                s = &self.services[i]
                msg = _ax.Cat034Message(s.sac, s.sic, s.message_type, s.tod_s, s.sector_azimuth_rad,
                                        s.rotation_period_s)
                out.append(_ax.ServiceEvent(s.board_t_us, host_rx_ns, msg))
            self.n_services = 0
        self.event = EV_NONE
        return out

    def feed(self, data, int64_t host_rx_ns, batch):
        """Decode a chunk of link bytes received at host_rx_ns; plots are appended to batch (batch.n grows).

        Returns the non-plot events in order: Frame (non-ASTERIX frames), ServiceEvent (CAT034) and,
        with keep_asterix, AsterixPayload. Plots beyond the batch capacity are dropped and counted.
        """
        cdef const uint8_t[::1] view
        cdef const uint8_t* p
        cdef Py_ssize_t pos = 0, n
        cdef list events = []
        if PyBytes_CheckExact(data):  # what every transport returns: no buffer to acquire
            p = <const uint8_t*>PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
        else:
            view = data
            n = view.shape[0]
            p = &view[0] if n > 0 else self.buf
        self._bind(batch)
        try:
            while pos < n:
                with nogil:
                    pos = self.scan(p, n, pos, host_rx_ns)
                if self.event != EV_NONE:
                    events += self._events(host_rx_ns)
        finally:
            batch.n = self.out_n
        return events

    def feed_datagram(self, data, int64_t host_rx_ns, batch):
        """One UDP datagram of raw ASTERIX blocks (no framing); board_t_us is each record's I140 time of day."""
        cdef const uint8_t[::1] d = data
        cdef Py_ssize_t n = d.shape[0]
        cdef const uint8_t* p = &d[0] if n > 0 else self.buf
        self._bind(batch)
        with nogil:
            self.decode_asterix(p, n, 0, False, host_rx_ns)
        batch.n = self.out_n
        self.ev_payload = p
        self.ev_len = n
        self.event = EV_ASTERIX
        return self._events(host_rx_ns)
