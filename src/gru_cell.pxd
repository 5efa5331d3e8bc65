# cython: language_level=3
"""GRU: the element-wise part of a step, in both forms; the driver (``kernels.pyx``) does the rest.

NumPy twin: ``rnnfast/reference/gru.py`` (the specification).  Gate blocks of the fused weights, in order:
r, z, n (PyTorch's); h_t = (1 - z) * n + z * h_{t-1}.

reset_after=True (PyTorch, cuDNN): n = tanh(xn + r * (h @ Wh_n + bh_n)).  One recurrent product per step
  over all 3H columns: one phase per step.
reset_after=False (Cho et al., the textbook): n = tanh(xn + (r * h) @ Wh_n + bh_n).  r * h of *all* units
  of a row is needed before the n-product: two phases per step (``gru_forward_tile_reset`` then
  ``gru_forward_tile_candidate``; the driver puts a barrier between them when threads share a step).

Buffers (``StepBuffers``): ``act`` (T, N, 3H) enters holding x @ Wx + bx and leaves holding r, z, n;
``hg`` (T, N, 3H) the recurrent pre-activations (h @ Wh + bh, or the n-part from r * h); ``rh`` (T, N, H)
r * h_{t-1} (reset-before only).  Backward writes ``dGx`` and ``dGh`` (one array for reset-before, whose
x-side and h-side pre-activation gradients coincide) and ``drh``.
"""
from cython cimport floating

from gate_math cimport copy, fill, sigmoid, sigmoid_inplace, tanh_
from microkernel cimport SliverCache
from step_tiles cimport (StepBuffers, Tiling, batch_row, forward_recurrent_product, row_block_key, slot, step_row,
                         tile_bounds)
from strips cimport StreamBuffers, row_product


cdef inline void _recurrent_preactivations(Tiling s, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t j0, Py_ssize_t j1,
                                           Py_ssize_t q0, Py_ssize_t q1, const floating* A,
                                           const StepBuffers* b, floating* g_t, SliverCache* slivers,
                                           Py_ssize_t key) noexcept nogil:
    """g_t[rows, gates q0..q1-1 of units j0:j1] = A[rows] @ Wh[:, those columns] + bh."""
    cdef Py_ssize_t H = s.H, G = 3 * s.H, n, q, j
    cdef const floating* bh = <const floating*>b.bh
    for n in range(n0, n1):
        for q in range(q0, q1):
            for j in range(j0, j1):
                g_t[n * G + q * H + j] = bh[q * H + j]
    forward_recurrent_product(s, n0, n1, j0, j1, q0, q1, A, H, <const floating*>b.Wh, <const floating*>b.panels,
                              g_t, slivers, key)


cdef inline void gru_forward_tile_after(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                        floating* act, SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t H = s.H, G = 3 * s.H, n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef floating* a_t = act + step_row(s, t) * G
    cdef floating* g_t = <floating*>b.hg + slot(s, t) * G
    cdef const floating* h_prev = <const floating*>b.hst + slot(s, t) * H
    cdef floating* h_next = <floating*>b.hst + slot(s, t + 1) * H
    cdef floating* a
    cdef floating* g
    _recurrent_preactivations(s, n0, n1, j0, j1, 0, 3, h_prev, b, g_t, slivers, row_block_key(s, t, tile))
    for n in range(n0, n1):  # the rows still running
        a = a_t + n * G + j0
        g = g_t + n * G + j0
        _sigmoid_of_sum(a, g, j1 - j0)                       # r
        _sigmoid_of_sum(a + H, g + H, j1 - j0)               # z
        _candidate_after(a + 2 * H, a, g + 2 * H, j1 - j0)   # n
        _blend(a + H, a + 2 * H, h_prev + n * H + j0, h_next + n * H + j0, j1 - j0)


cdef inline void _sigmoid_of_sum(floating* a, const floating* g, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        a[j] = sigmoid(a[j] + g[j])


cdef inline void _candidate_after(floating* a_n, const floating* r, const floating* g_n, Py_ssize_t m) noexcept nogil:
    # n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n))
    cdef Py_ssize_t j
    for j in range(m):
        a_n[j] = tanh_(a_n[j] + r[j] * g_n[j])


cdef inline void _blend(const floating* z, const floating* n_, const floating* h_prev, floating* h_next,
                        Py_ssize_t m) noexcept nogil:
    # h' = (1 - z) * n + z * h
    cdef Py_ssize_t j
    cdef floating one = 1
    for j in range(m):
        h_next[j] = (one - z[j]) * n_[j] + z[j] * h_prev[j]


cdef inline void gru_forward_tile_reset(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                        floating* act, SliverCache* slivers) noexcept nogil:
    """Reset-before, phase 1: r, z and r * h_{t-1} of the tile."""
    cdef Py_ssize_t H = s.H, G = 3 * s.H, n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef floating* a_t = act + step_row(s, t) * G
    cdef floating* g_t = <floating*>b.hg + slot(s, t) * G
    cdef const floating* h_prev = <const floating*>b.hst + slot(s, t) * H
    cdef floating* rh_t = <floating*>b.rh + slot(s, t) * H
    cdef floating* a
    cdef floating* g
    _recurrent_preactivations(s, n0, n1, j0, j1, 0, 2, h_prev, b, g_t, slivers, 2 * row_block_key(s, t, tile))
    for n in range(n0, n1):  # the rows still running
        a = a_t + n * G + j0
        g = g_t + n * G + j0
        _sigmoid_of_sum(a, g, j1 - j0)            # r
        _sigmoid_of_sum(a + H, g + H, j1 - j0)    # z
        _product(a, h_prev + n * H + j0, rh_t + n * H + j0, j1 - j0)


cdef inline void _product(const floating* a, const floating* b, floating* out, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        out[j] = a[j] * b[j]


cdef inline void gru_forward_tile_candidate(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                            floating* act, SliverCache* slivers) noexcept nogil:
    """Reset-before, phase 2: n from (r * h) @ Wh_n (r * h of all the row's units is ready), and h_t."""
    cdef Py_ssize_t H = s.H, G = 3 * s.H, n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef floating* a_t = act + step_row(s, t) * G
    cdef floating* g_t = <floating*>b.hg + slot(s, t) * G
    cdef const floating* h_prev = <const floating*>b.hst + slot(s, t) * H
    cdef floating* h_next = <floating*>b.hst + slot(s, t + 1) * H
    cdef floating* a
    _recurrent_preactivations(s, n0, n1, j0, j1, 2, 3, <const floating*>b.rh + slot(s, t) * H, b, g_t, slivers,
                              2 * row_block_key(s, t, tile) + 1)
    for n in range(n0, n1):  # the rows still running
        a = a_t + n * G + j0
        _tanh_of_sum(a + 2 * H, g_t + n * G + 2 * H + j0, j1 - j0)   # n
        _blend(a + H, a + 2 * H, h_prev + n * H + j0, h_next + n * H + j0, j1 - j0)


cdef inline void _tanh_of_sum(floating* a, const floating* g, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        a[j] = tanh_(a[j] + g[j])


cdef inline void gru_backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                         floating* dGx) noexcept nogil:
    """Step t, one tile: gradients at the gate pre-activations (all three gates for reset-after; z and n
    for reset-before, whose r needs the n-product of all units first).  ``dh`` leaves holding the direct
    path dh_t * z."""
    cdef Py_ssize_t H = s.H, G = 3 * s.H, n0, n1, j0, j1, n, o
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef const floating* act = <const floating*>b.act
    cdef const floating* hg = <const floating*>b.hg
    cdef const floating* h_prev = <const floating*>b.hst + slot(s, t) * H
    cdef const floating* dhs = <const floating*>b.dhs
    cdef floating* dh = <floating*>b.dh
    cdef floating* dGh = <floating*>b.dGh
    for n in range(n0, n1):  # the rows running at step t; the others' dh passes through untouched
        o = (step_row(s, t) + n) * G + j0
        _gates_backward(b.reset_after, act + o, act + o + H, act + o + 2 * H, hg + o + 2 * H,
                        h_prev + n * H + j0, dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0,
                        dGx + o, dGx + o + H, dGx + o + 2 * H, dGh + o, dGh + o + H, dGh + o + 2 * H, j1 - j0)


cdef inline void _gates_backward(bint reset_after, const floating* r, const floating* z, const floating* n_,
                                 const floating* hn, const floating* h_prev, const floating* dhs, floating* dh,
                                 floating* dxr, floating* dxz, floating* dxn,
                                 floating* dhr, floating* dhz, floating* dhn, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating one = 1, dh_, dan, daz, dar
    for j in range(m):
        dh_ = dh[j] + dhs[j]
        dan = dh_ * (one - z[j]) * (one - n_[j] * n_[j])
        daz = dh_ * (h_prev[j] - n_[j]) * z[j] * (one - z[j])
        dxz[j] = daz
        dhz[j] = daz
        dxn[j] = dan
        if reset_after:
            dar = dan * hn[j] * r[j] * (one - r[j])
            dxr[j] = dar
            dhr[j] = dar
            dhn[j] = dan * r[j]
        else:
            dhn[j] = dan
        dh[j] = dh_ * z[j]


cdef inline void gru_backward_reset_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                         floating* dGx) noexcept nogil:
    """Reset-before only: the r gradient from d(r * h), and r * d(r * h) into dh."""
    cdef Py_ssize_t H = s.H, G = 3 * s.H, n0, n1, j0, j1, n, o
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef const floating* act = <const floating*>b.act
    cdef const floating* h_prev = <const floating*>b.hst + slot(s, t) * H
    cdef const floating* drh = <const floating*>b.drh
    cdef floating* dh = <floating*>b.dh
    cdef floating* dGh = <floating*>b.dGh
    for n in range(n0, n1):
        o = (step_row(s, t) + n) * G + j0
        _reset_backward(act + o, h_prev + n * H + j0, drh + n * H + j0, dh + n * H + j0, dGx + o, dGh + o, j1 - j0)


cdef inline void _reset_backward(const floating* r, const floating* h_prev, const floating* drh, floating* dh,
                                 floating* dxr, floating* dhr, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating one = 1, dar
    for j in range(m):
        dar = drh[j] * h_prev[j] * r[j] * (one - r[j])
        dxr[j] = dar
        dhr[j] = dar
        dh[j] = dh[j] + drh[j] * r[j]


# --- Streaming (``rnnfast.stepper.GRUStepper``) ---
#
# reset_after: each unit block's strips hold four column groups over [x | h] rows, r and z ([Wx; Wh]
#   blocks), n_x ([Wx_n; 0]) and n_h ([0; Wh_n]), so one product gives everything and
#   n = tanh(n_x + r * n_h) needs no other block.
# reset_before: n needs r * h of *all* units first, so two passes: the first (groups r, z, n_x over
#   [x | h]) writes r * h, the second (``gru_stream_candidate``) takes n_h = (r * h) @ Wh_n per block.

cdef inline void gru_stream_block(Py_ssize_t k, const StreamBuffers* b, floating* gates) noexcept nogil:
    cdef Py_ssize_t N = b.N, K = b.K, D = b.D, H = b.H, width = b.width, C = b.groups * b.width
    cdef Py_ssize_t j0 = k * width, w = min(width, H - j0), n, j
    cdef floating* g = gates + k * N * C
    cdef const floating* xh = <const floating*>b.xh
    cdef floating* xh_next = <floating*>b.xh_next
    cdef floating* rh = <floating*>b.rh
    cdef floating* a
    cdef const floating* h_prev
    cdef floating n_
    for n in range(N):
        copy(g + n * C, <const floating*>b.b_strips + k * C, C)
    row_product(N, C, K, xh, <const floating*>b.strips + k * K * C, g)
    for n in range(N):
        a = g + n * C
        h_prev = xh + n * K + D + j0
        sigmoid_inplace(a, w)          # r
        sigmoid_inplace(a + width, w)  # z
        if b.reset_after:
            for j in range(w):
                n_ = tanh_(a[2 * width + j] + a[j] * a[3 * width + j])
                xh_next[n * K + D + j0 + j] = (1 - a[width + j]) * n_ + a[width + j] * h_prev[j]
        else:
            for j in range(w):
                rh[n * H + j0 + j] = a[j] * h_prev[j]


cdef inline void gru_stream_candidate(Py_ssize_t k, const StreamBuffers* b, floating* gates) noexcept nogil:
    """Reset-before, second pass of unit block k: n from (r * h) @ Wh_n, and h_t."""
    cdef Py_ssize_t N = b.N, K = b.K, D = b.D, H = b.H, width = b.width, C = 3 * b.width
    cdef Py_ssize_t j0 = k * width, w = min(width, H - j0), n, j
    cdef const floating* xh = <const floating*>b.xh
    cdef floating* xh_next = <floating*>b.xh_next
    cdef const floating* a
    cdef floating* g = <floating*>b.gn + k * N * width
    cdef const floating* h_prev
    cdef floating n_
    fill(g, N * width, 0)
    row_product(N, width, H, <const floating*>b.rh, <const floating*>b.strips_n + k * H * width, g)
    for n in range(N):
        a = gates + k * N * C + n * C
        h_prev = xh + n * K + D + j0
        for j in range(w):
            n_ = tanh_(a[2 * width + j] + g[n * width + j])
            xh_next[n * K + D + j0 + j] = (1 - a[width + j]) * n_ + a[width + j] * h_prev[j]
