# cython: language_level=3
"""Vanilla RNN: the element-wise part of a step; the driver (``kernels.pyx``) does the rest.

NumPy twin: ``rnnfast/reference/rnn.py`` (the specification).

    h_t = act(x_t @ Wx + b + h_{t-1} @ Wh),   act = tanh or relu

Buffers (``StepBuffers``): ``act`` (T, N, H) enters holding x @ Wx + b and leaves holding h_t (before the
padding rule); ``hst`` (T+1, N, H); backward writes ``dGx`` (= ``dGh``), carrying ``dh`` back.
"""
from cython cimport floating

from gate_math cimport copy, tanh_inplace
from microkernel cimport SliverCache
from step_tiles cimport (StepBuffers, Tiling, batch_row, forward_recurrent_product, row_block_key, slot, step_row,
                         tile_bounds)
from strips cimport StreamBuffers, row_product


cdef inline void _relu_inplace(floating* a, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating zero = 0
    for j in range(m):  # max(a, 0) as NumPy's: NaN stays NaN (so not `a > 0 ? a : 0`)
        a[j] = zero if a[j] <= zero else a[j]


cdef inline void rnn_forward_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b, floating* act,
                                  SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t H = s.H, n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef floating* a_t = act + step_row(s, t) * H
    cdef const floating* h_prev = <const floating*>b.hst + slot(s, t) * H
    cdef floating* h_next = <floating*>b.hst + slot(s, t + 1) * H
    forward_recurrent_product(s, n0, n1, j0, j1, 0, 1, h_prev, H, <const floating*>b.Wh,
                              <const floating*>b.panels, a_t, slivers, row_block_key(s, t, tile))
    for n in range(n0, n1):  # the rows still running
        if b.relu:
            _relu_inplace(a_t + n * H + j0, j1 - j0)
        else:
            tanh_inplace(a_t + n * H + j0, j1 - j0)
        copy(h_next + n * H + j0, a_t + n * H + j0, j1 - j0)


cdef inline void rnn_backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                         floating* dG) noexcept nogil:
    cdef Py_ssize_t H = s.H, n0, n1, j0, j1, n, k
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef const floating* act = <const floating*>b.act
    cdef const floating* dhs = <const floating*>b.dhs
    cdef floating* dh = <floating*>b.dh
    for n in range(n0, n1):  # the rows running at step t
        k = (step_row(s, t) + n) * H + j0
        _activation_backward(b.relu, act + k, dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0, dG + k, j1 - j0)


cdef inline void _activation_backward(bint relu, const floating* h, const floating* dhs, floating* dh,
                                      floating* da, Py_ssize_t m) noexcept nogil:
    """da = (dh + dhs) * act'(a), written via the activation h = act(a); dh is then zeroed."""
    cdef Py_ssize_t j
    cdef floating one = 1, zero = 0, d
    for j in range(m):
        d = dh[j] + dhs[j]
        if relu:  # d * (h > 0) as NumPy's: NaN and Inf in d give NaN, finite d an exact +0
            da[j] = d if h[j] > zero else d - d
        else:
            da[j] = d * (one - h[j] * h[j])
        dh[j] = 0


cdef inline void rnn_stream_block(Py_ssize_t k, const StreamBuffers* b, floating* gates) noexcept nogil:
    """Unit block k of a streaming step: one product over its (K, width) strips of [Wx; Wh]."""
    cdef Py_ssize_t N = b.N, K = b.K, D = b.D, H = b.H, width = b.width
    cdef Py_ssize_t j0 = k * width, w = min(width, H - j0), n
    cdef floating* g = gates + k * N * width
    cdef floating* xh_next = <floating*>b.xh_next
    for n in range(N):
        copy(g + n * width, <const floating*>b.b_strips + k * width, width)
    row_product(N, width, K, <const floating*>b.xh, <const floating*>b.strips + k * K * width, g)
    for n in range(N):
        if b.relu:
            _relu_inplace(g + n * width, w)
        else:
            tanh_inplace(g + n * width, w)
        copy(xh_next + n * K + D + j0, g + n * width, w)
