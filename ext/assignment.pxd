# cython: language_level=3
"""Minimum-cost assignment shared by the kernels (tracker: plots to tracks per cluster; fire control: tracks to
launcher slots). Inline, so each kernel compiles its own copy of the one source."""

from libc.math cimport INFINITY


cdef inline int lap_rect(int nr, int nc, const double* cost, int* col4row, int* row4col, double* u, double* v,
                         double* shortest, int* path, int* remaining, char* row_seen, char* col_seen) noexcept nogil:
    """Minimum-cost assignment of every row of a dense nr x nc matrix (nr <= nc) to distinct columns: one
    shortest augmenting path per row (Dijkstra on reduced costs, Jonker–Volgenant style), duals u, v kept.
    Returns 0, or -1 if some row cannot be assigned (never with finite costs)."""
    cdef int cur, i, j, it, idx, sink, n_rem, tmp
    cdef double min_val, lowest, r
    for i in range(nr):
        u[i] = 0.0
        col4row[i] = -1
    for j in range(nc):
        v[j] = 0.0
        row4col[j] = -1
    for cur in range(nr):
        for j in range(nc):
            shortest[j] = INFINITY
            path[j] = -1
            col_seen[j] = 0
            remaining[j] = nc - 1 - j
        for i in range(nr):
            row_seen[i] = 0
        n_rem = nc
        min_val = 0.0
        i = cur
        sink = -1
        while sink == -1:
            row_seen[i] = 1
            lowest = INFINITY
            idx = -1
            for it in range(n_rem):
                j = remaining[it]
                r = min_val + cost[i * nc + j] - u[i] - v[j]
                if r < shortest[j]:
                    path[j] = i
                    shortest[j] = r
                # prefer a free column on ties: the path ends sooner
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest = shortest[j]
                    idx = it
            if idx < 0 or lowest == INFINITY:
                return -1
            min_val = lowest
            j = remaining[idx]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            col_seen[j] = 1
            n_rem -= 1
            remaining[idx] = remaining[n_rem]
        u[cur] += min_val
        for i in range(nr):
            if row_seen[i] and i != cur:
                u[i] += min_val - shortest[col4row[i]]
        for j in range(nc):
            if col_seen[j]:
                v[j] -= min_val - shortest[j]
        j = sink
        while True:  # flip the path
            i = path[j]
            row4col[j] = i
            tmp = col4row[i]
            col4row[i] = j
            j = tmp
            if i == cur:
                break
    return 0
