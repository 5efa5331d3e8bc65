# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The passes of a training step around the cells: dropout's masks and products, the softmax cross-entropy and its
gradient, the embedding's gradient, Adam's update and the squared norm that clipping reads.  Each is one pass
over its arrays, where NumPy makes one per operation (Adam: twelve).  Every element's or row's arithmetic is
its own, each sum runs in a fixed order, and the embedding's columns are each summed by one thread in row
order, so the bits never depend on the thread count.  Each function checks the shapes and indices it relies
on before its loops.

NumPy twins: ``rnnfast.layers.dropout.keep_mask``, ``rnnfast.layers.basic.TimeSoftmaxWithLoss`` and
``scatter_add_rows``, ``rnnfast.train.optim.Adam`` and ``rnnfast.train.clip``; which arrays come here is
decided in ``rnnfast._core.training_passes``."""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log, sqrt
from libc.stdint cimport uint64_t

import numpy as np

from all_steps cimport scatter_rows
from gate_math cimport exp_
from threads cimport team
from dropout_mask cimport kept_value

cdef enum:
    # Elements per block of the squared norm: each block is summed in order, then the blocks in order.
    NORM_BLOCK = 4096
    LANES = 16  # running sums of a block (``_lane_sum``)
    # Elements per thread below which a team costs more than it saves (a wake-up is a few microseconds;
    # a thread passes over ~1e3 elements per microsecond here).
    MIN_ELEMENTS_PER_THREAD = 16384

CONSTANTS = {"norm_block": NORM_BLOCK, "min_elements_per_thread": MIN_ELEMENTS_PER_THREAD}


cdef inline int _team(Py_ssize_t elements, int num_threads) noexcept nogil:
    """Threads for a pass over ``elements``: ``threads.team`` with a task per MIN_ELEMENTS_PER_THREAD."""
    return team(elements // MIN_ELEMENTS_PER_THREAD, num_threads)


def dropout_keep(uint64_t key, uint64_t threshold, double scale, floating[::1] out, int num_threads):
    """``out[i] = scale`` where the top 24 bits of ``splitmix64(key + i)`` are at least ``threshold``, else 0:
    inverted dropout's mask, each element's draw its own counter's."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef floating kept = <floating>scale
    if n == 0:
        return
    cdef floating* o = &out[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=_team(n, num_threads)):
        o[i] = kept_value(key, <uint64_t>i, threshold, kept)


cdef int _same_sizes(str arrays, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2) except -1:
    if n1 != n0 or n2 != n0:
        raise ValueError(f"{arrays} have {n0}, {n1}, {n2} elements; expected the same number")
    return 0


def dropout_times(uint64_t key, uint64_t threshold, double scale, const floating[::1] x, floating[::1] out,
                  int num_threads):
    """``out = x * mask``, ``dropout_keep``'s mask drawn as it goes and not stored: the layer's forward and, from
    the same key, its backward, where writing the mask and reading it back cost more than drawing it twice."""
    cdef Py_ssize_t i, n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"dropout_times: x has {n} elements, out {out.shape[0]}; expected the same number")
    if n == 0:
        return
    cdef floating kept = <floating>scale
    cdef const floating* xp = &x[0]
    cdef floating* o = &out[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=_team(n, num_threads)):
        o[i] = xp[i] * kept_value(key, <uint64_t>i, threshold, kept)


def times(const floating[::1] a, const floating[::1] b, floating[::1] out, int num_threads):
    """``out = a * b``, element by element (dropout's backward)."""
    cdef Py_ssize_t i, n = a.shape[0]
    _same_sizes("times: a, b, out", n, b.shape[0], out.shape[0])
    if n == 0:
        return
    cdef const floating* ap = &a[0]
    cdef const floating* bp = &b[0]
    cdef floating* o = &out[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=_team(n, num_threads)):
        o[i] = ap[i] * bp[i]


cdef enum:
    # Elements per task of a pass over several arrays (``adam_update``): every array cut into tasks of at most
    # this many, all shared by one team, so that no array gets a parallel region (and a wait) of its own.
    TASK_ELEMENTS = 16384


cdef object _tasks(list arrays, Py_ssize_t size):
    """``(array, start, end)`` rows, ``size`` elements at most each, covering every array in order."""
    cdef Py_ssize_t k, i, n, count = 0, t = 0
    for a in arrays:
        count += (a.shape[0] + size - 1) // size
    tasks = np.empty((count, 3), dtype=np.intp)
    cdef Py_ssize_t[:, ::1] rows = tasks
    for k in range(len(arrays)):
        n = arrays[k].shape[0]
        for i in range(0, n, size):
            rows[t, 0], rows[t, 1], rows[t, 2] = k, i, min(i + size, n)
            t += 1
    return tasks


cdef int _one_dtype(str name, list arrays) except -1:
    for a in arrays:
        if a.dtype != arrays[0].dtype or a.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name}: arrays of {a.dtype} and {arrays[0].dtype}; expected one of float32, float64")
    return 0


cdef int _same_lengths(list ps, list gs, list ms, list vs) except -1:
    if not len(gs) == len(ms) == len(vs) == len(ps):
        raise ValueError(f"adam_update: {len(ps)}, {len(gs)}, {len(ms)}, {len(vs)} arrays of p, g, m, v; "
                         f"expected as many of each")
    for k in range(len(ps)):
        n = ps[k].shape[0]
        if gs[k].shape[0] != n or ms[k].shape[0] != n or vs[k].shape[0] != n:
            raise ValueError(f"adam_update: p, g, m, v [{k}] have {n}, {gs[k].shape[0]}, {ms[k].shape[0]}, "
                             f"{vs[k].shape[0]} elements; expected the same number")
    return 0


def adam_update(list ps, list gs, list ms, list vs, double beta1, double beta2, double step, double eps,
                int num_threads):
    """In place, for each parameter k (1-D C-contiguous arrays of one float dtype): ``m += (1-beta1)(g - m)``,
    ``v += (1-beta2)(g*g - v)``, ``p -= step * m / (sqrt(v) + eps)``; all of them in one parallel region."""
    _same_lengths(ps, gs, ms, vs)
    if not ps:
        return
    _one_dtype("adam_update", ps + gs + ms + vs)
    if ps[0].dtype == np.float32:
        _adam[float](ps, gs, ms, vs, beta1, beta2, step, eps, num_threads, <float>0)
    else:
        _adam[double](ps, gs, ms, vs, beta1, beta2, step, eps, num_threads, <double>0)


cdef int _adam(list ps, list gs, list ms, list vs, double beta1, double beta2, double step, double eps,
               int num_threads, floating kind) except -1:
    cdef Py_ssize_t count = len(ps), k, t, i, total = 0
    cdef floating[::1] view
    cdef const floating[::1] cview
    cdef Py_ssize_t[:, ::1] where = np.zeros((count, 4), dtype=np.intp)  # each array's address
    for k in range(count):
        view = ps[k]
        cview = gs[k]
        total += view.shape[0]
        if view.shape[0] == 0:
            continue
        where[k, 0] = <Py_ssize_t>&view[0]
        where[k, 1] = <Py_ssize_t>&cview[0]
        view = ms[k]
        where[k, 2] = <Py_ssize_t>&view[0]
        view = vs[k]
        where[k, 3] = <Py_ssize_t>&view[0]
    cdef Py_ssize_t[:, ::1] tasks = _tasks(ps, TASK_ELEMENTS)
    cdef floating c1 = <floating>(1 - beta1), c2 = <floating>(1 - beta2), s = <floating>step, e = <floating>eps
    cdef floating gi, mi, vi
    cdef floating* pp
    cdef const floating* gp
    cdef floating* mp
    cdef floating* vp
    for t in prange(tasks.shape[0], nogil=True, schedule="static", num_threads=_team(total, num_threads)):
        k = tasks[t, 0]
        pp = <floating*>where[k, 0]
        gp = <const floating*>where[k, 1]
        mp = <floating*>where[k, 2]
        vp = <floating*>where[k, 3]
        for i in range(tasks[t, 1], tasks[t, 2]):
            gi = gp[i]
            mi = mp[i] + c1 * (gi - mp[i])
            vi = vp[i] + c2 * (gi * gi - vp[i])
            mp[i] = mi
            vp[i] = vi
            pp[i] = pp[i] - s * (mi / (sqrt(vi) + e))
    return 0


cdef inline double _lane_sum(const floating* a, Py_ssize_t n, bint squares) noexcept nogil:
    """The sum of ``a`` (or of its squares) in float64: element i goes to lane i % LANES, each lane summed in
    order, then the lanes in order -- a fixed order that SIMD registers can keep (one running sum waited four
    cycles per element on its own additions)."""
    cdef double lanes[LANES]
    cdef double total = 0, v
    cdef Py_ssize_t i, l, c, whole = n - n % LANES
    for l in range(LANES):
        lanes[l] = 0
    for c in range(whole // LANES):
        for l in range(LANES):
            v = a[c * LANES + l]
            lanes[l] += v * v if squares else v
    for i in range(whole, n):
        v = a[i]
        lanes[i - whole] += v * v if squares else v
    for l in range(LANES):
        total += lanes[l]
    return total


def sum_of_squares(list gs, int num_threads):
    """The sum of ``g * g`` in float64 of each array (1-D C-contiguous, one float dtype): each block of NORM_BLOCK
    elements (``_lane_sum``), then the blocks in order; all arrays in one parallel region."""
    if not gs:
        return []
    _one_dtype("sum_of_squares", gs)
    if gs[0].dtype == np.float32:
        return _sums_of_squares[float](gs, num_threads, <float>0)
    return _sums_of_squares[double](gs, num_threads, <double>0)


cdef list _sums_of_squares(list gs, int num_threads, floating kind):
    cdef Py_ssize_t count = len(gs), k, t, total = 0
    cdef const floating[::1] view
    cdef Py_ssize_t[::1] where = np.zeros(count, dtype=np.intp)
    for k in range(count):
        view = gs[k]
        total += view.shape[0]
        if view.shape[0] > 0:
            where[k] = <Py_ssize_t>&view[0]
    cdef Py_ssize_t[:, ::1] tasks = _tasks(gs, NORM_BLOCK)
    cdef double[::1] partial = np.zeros(tasks.shape[0])
    for t in prange(tasks.shape[0], nogil=True, schedule="static", num_threads=_team(total, num_threads)):
        partial[t] = _lane_sum(<const floating*>where[tasks[t, 0]] + tasks[t, 1], tasks[t, 2] - tasks[t, 1], True)
    cdef double[::1] sums = np.zeros(count)
    for t in range(tasks.shape[0]):  # each array's blocks in order (the tasks are)
        sums[tasks[t, 0]] += partial[t]
    return list(sums)


cdef int _check_rows(str name, Py_ssize_t rows, Py_ssize_t V, const Py_ssize_t[::1] targets, Py_ssize_t ignore,
                     Py_ssize_t out_rows, Py_ssize_t out_V) except -1:
    """The softmax passes' shapes and targets (each row's target in 0..V-1 or ``ignore``): they index with them."""
    cdef Py_ssize_t r
    if out_rows != rows or out_V != V or targets.shape[0] != rows:
        raise ValueError(f"{name}: ({rows}, {V}) rows, ({out_rows}, {out_V}) out and {targets.shape[0]} targets; "
                         f"expected the same rows and width")
    for r in range(rows):
        if targets[r] != ignore and not 0 <= targets[r] < V:
            raise ValueError(f"{name}: targets[{r}] = {targets[r]}; expected 0..{V - 1} or {ignore}")
    return 0


def softmax_cross_entropy(const floating[:, ::1] scores, const Py_ssize_t[::1] targets, Py_ssize_t ignore,
                          floating[:, ::1] probs, int num_threads):
    """Row r: ``probs[r] = softmax(scores[r])``; returns the sum over the rows whose target is not ``ignore`` of
    ``-log softmax(scores[r])[target]``, in float64 (rows in order)."""
    cdef Py_ssize_t rows = scores.shape[0], V = scores.shape[1], r, j, t
    _check_rows("softmax_cross_entropy", rows, V, targets, ignore, probs.shape[0], probs.shape[1])
    if rows == 0 or V == 0:
        return 0.0
    cdef double[::1] losses = np.zeros(rows)
    cdef const floating* s
    cdef floating* p
    cdef floating top, inv
    cdef double total = 0, z
    for r in prange(rows, nogil=True, schedule="static", num_threads=_team(rows * V, num_threads)):
        s = &scores[0, 0] + r * V
        p = &probs[0, 0] + r * V
        top = s[0]
        for j in range(1, V):
            top = s[j] if s[j] > top else top
        for j in range(V):
            p[j] = exp_(s[j] - top)
        z = _lane_sum(p, V, False)
        inv = <floating>(1.0 / z)
        for j in range(V):
            p[j] = p[j] * inv
        t = targets[r]
        if t != ignore:
            losses[r] = log(z) - (s[t] - top)
    for r in range(rows):
        total += losses[r]
    return total


def softmax_cross_entropy_backward(const floating[:, ::1] probs, const Py_ssize_t[::1] targets, Py_ssize_t ignore,
                                   double scale, floating[:, ::1] out, int num_threads):
    """The gradient at the scores: ``out[r] = scale * (probs[r] - onehot(target))``, zero where the target is
    ``ignore``."""
    cdef Py_ssize_t rows = probs.shape[0], V = probs.shape[1], r, j, t
    _check_rows("softmax_cross_entropy_backward", rows, V, targets, ignore, out.shape[0], out.shape[1])
    cdef floating k = <floating>scale, one = 1, zero = 0
    cdef const floating* p
    cdef floating* o
    if rows == 0 or V == 0:
        return
    for r in prange(rows, nogil=True, schedule="static", num_threads=_team(rows * V, num_threads)):
        p = &probs[0, 0] + r * V
        o = &out[0, 0] + r * V
        t = targets[r]
        if t == ignore:
            for j in range(V):
                o[j] = zero
        else:
            for j in range(V):
                o[j] = p[j]
            o[t] = o[t] - one
            for j in range(V):
                o[j] = o[j] * k


def scatter_add_rows(floating[:, ::1] out, const Py_ssize_t[::1] ids, const floating[:, ::1] rows, int num_threads):
    """``out[ids[i]] += rows[i]`` for every i in order.  Threads take column blocks: each column is summed by one
    thread, rows in order."""
    cdef Py_ssize_t n = ids.shape[0], D = out.shape[1], i
    if rows.shape[0] != n or rows.shape[1] != D:
        raise ValueError(f"scatter_add_rows: rows has shape ({rows.shape[0]}, {rows.shape[1]}); expected ({n}, {D})")
    for i in range(n):
        if not 0 <= ids[i] < out.shape[0]:
            raise ValueError(f"scatter_add_rows: ids[{i}] = {ids[i]}; expected 0..{out.shape[0] - 1}")
    if n == 0 or D == 0:
        return
    with nogil:
        scatter_rows(n, D, &ids[0], &rows[0, 0], &out[0, 0], _team(n * D, num_threads))
