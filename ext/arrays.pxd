# cython: language_level=3
"""Array plumbing of the kernels' def wrappers: use an input as it is when it already fits, allocate outputs
without a call into numpy's Python layer (each such call costs about a microsecond on the host path); and the
bisections the kernels search their sorted columns with."""

cimport numpy as cnp


cdef inline bint fits(object x, int typenum, int ndim):
    """x is an ndarray (not a subclass) of typenum and ndim, C-contiguous, aligned and in native byte order:
    a kernel can read it through its data pointer as it is."""
    cdef cnp.ndarray a
    if not cnp.PyArray_CheckExact(x):
        return False
    a = <cnp.ndarray> x
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_NDIM(a) == ndim and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_ISBEHAVED_RO(a))


cdef inline object as_array(object x, object dtype, int typenum, int ndim, tuple shape=None):
    """x as a kernel reads it: as it is when it fits, else a C-contiguous copy of dtype (reshaped to shape, when
    given: a plug-in's empty state may come as np.array([])). numpy's Python layer is imported only then: the
    import statement costs on every call, and the host's arrays fit."""
    if fits(x, typenum, ndim):
        return x
    import numpy as np

    x = np.ascontiguousarray(x, dtype=dtype)
    return x if shape is None else x.reshape(shape)


ctypedef fused sorted_key:
    double
    long long


cdef inline Py_ssize_t lower_bound(const sorted_key* keys, Py_ssize_t n, sorted_key value) noexcept nogil:
    """The first of n ascending keys not below value (n when none is)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t upper_bound(const sorted_key* keys, Py_ssize_t n, sorted_key value) noexcept nogil:
    """The first of n ascending keys above value (n when none is): Python's bisect_right."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if value < keys[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline object empty1(Py_ssize_t n, int typenum):
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return cnp.PyArray_EMPTY(1, dims, typenum, 0)


cdef inline object empty2(Py_ssize_t n0, Py_ssize_t n1, int typenum):
    cdef cnp.npy_intp dims[2]
    dims[0] = n0
    dims[1] = n1
    return cnp.PyArray_EMPTY(2, dims, typenum, 0)


cdef inline object empty3(Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2, int typenum):
    cdef cnp.npy_intp dims[3]
    dims[0] = n0
    dims[1] = n1
    dims[2] = n2
    return cnp.PyArray_EMPTY(3, dims, typenum, 0)


cdef inline tuple empty_track_columns(Py_ssize_t n):
    """The columns of an n-track TrackSnapshot (hil.ext.tracker_types), uninitialised: track_id int64, status int8,
    state float64 [n, 6], cov float64 [n, 6, 6], last_update_s float64, mode3a int32, hits int32."""
    return (empty1(n, cnp.NPY_INT64), empty1(n, cnp.NPY_INT8), empty2(n, 6, cnp.NPY_FLOAT64),
            empty3(n, 6, 6, cnp.NPY_FLOAT64), empty1(n, cnp.NPY_FLOAT64), empty1(n, cnp.NPY_INT32),
            empty1(n, cnp.NPY_INT32))
