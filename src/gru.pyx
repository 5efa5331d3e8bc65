# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""GRU kernels: whole-sequence forward and backward through time, in both forms.

NumPy twin: ``rnnfast/reference/gru.py`` (the specification).
Gate blocks of the fused weights, in order: r, z, n (PyTorch's order);
h_t = (1 - z) * n + z * h_{t-1}.

reset_after=True (PyTorch/cuDNN): n = tanh(xn + r * (h @ Wh_n + bh_n)).  One
  recurrent GEMM per step over all 3H columns, so one barrier per step.
reset_after=False (Cho et al., the textbook): n = tanh(xn + (r * h) @ Wh_n + bh_n).
  r*h of *all* units is needed before the n-product: two phases per step.

Layout and parallel scheme as in lstm.pyx: time-major (T, N, ...), tiles of
block_n rows x chunk_h hidden units, every GEMM shape fixed by the problem shape.
Buffers: ``act`` enters holding x @ Wx + bx and leaves holding (r, z, n);
``hg`` holds the recurrent pre-activations (h @ Wh + bh, or its n-part from r*h);
``rh`` holds r * h_{t-1} (reset_before only).
"""
from cython cimport floating
from cython.parallel cimport prange

from kernel_common cimport (Tiling, column_sums, gemm, make_tiling, sigmoid, tanh_, tile_bounds,
                            tile_count, tiled_gemm)


cdef void _recurrent_product(Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t H,
                             Py_ssize_t q0, Py_ssize_t q1, const floating* A, Py_ssize_t lda,
                             const floating* Wh, const floating* bh, floating* g_t) noexcept nogil:
    """g_t[rows, gates q0..q1-1 of units j0:j1] = A[rows] @ Wh[:, those columns] + bh."""
    cdef Py_ssize_t G = 3 * H, n, j, q
    cdef floating one = 1
    for n in range(n0, n1):
        for q in range(q0, q1):
            for j in range(j0, j1):
                g_t[n * G + q * H + j] = bh[q * H + j]
    if j0 == 0 and j1 == H:  # whole gate blocks are contiguous: one GEMM
        gemm(False, False, n1 - n0, (q1 - q0) * H, H, one, A + n0 * lda, lda,
             Wh + q0 * H, G, one, g_t + n0 * G + q0 * H, G)
    else:
        for q in range(q0, q1):
            gemm(False, False, n1 - n0, j1 - j0, H, one, A + n0 * lda, lda,
                 Wh + q * H + j0, G, one, g_t + n0 * G + q * H + j0, G)


cdef void _forward_tile_after(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh, const floating* bh,
                              floating* act, floating* hg, floating* hst,
                              const Py_ssize_t* lengths) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating one = 1
    cdef floating* a
    cdef floating* g
    cdef floating* a_t = act + t * N * G
    cdef floating* g_t = hg + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* h_next = hst + (t + 1) * N * H
    cdef floating r_, z_, n_
    _recurrent_product(n0, n1, j0, j1, H, 0, 3, h_prev, H, Wh, bh, g_t)
    for n in range(n0, n1):
        if t < lengths[n]:
            a = a_t + n * G
            g = g_t + n * G
            for j in range(j0, j1):
                r_ = sigmoid(a[j] + g[j])
                z_ = sigmoid(a[H + j] + g[H + j])
                n_ = tanh_(a[2 * H + j] + r_ * g[2 * H + j])
                a[j] = r_
                a[H + j] = z_
                a[2 * H + j] = n_
                h_next[n * H + j] = (one - z_) * n_ + z_ * h_prev[n * H + j]
        else:
            for j in range(j0, j1):
                h_next[n * H + j] = h_prev[n * H + j]


cdef void _forward_tile_before_rz(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh,
                                  const floating* bh, floating* act, floating* hg, const floating* hst,
                                  floating* rh, const Py_ssize_t* lengths) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating* a
    cdef floating* g
    cdef floating* a_t = act + t * N * G
    cdef floating* g_t = hg + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* rh_t = rh + t * N * H
    cdef floating r_
    _recurrent_product(n0, n1, j0, j1, H, 0, 2, h_prev, H, Wh, bh, g_t)
    for n in range(n0, n1):
        if t < lengths[n]:
            a = a_t + n * G
            g = g_t + n * G
            for j in range(j0, j1):
                r_ = sigmoid(a[j] + g[j])
                a[j] = r_
                a[H + j] = sigmoid(a[H + j] + g[H + j])
                rh_t[n * H + j] = r_ * h_prev[n * H + j]
        else:
            for j in range(j0, j1):
                rh_t[n * H + j] = 0


cdef void _forward_tile_before_n(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh,
                                 const floating* bh, floating* act, floating* hg, floating* hst,
                                 const floating* rh, const Py_ssize_t* lengths) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating one = 1
    cdef floating* a
    cdef floating* a_t = act + t * N * G
    cdef floating* g_t = hg + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* h_next = hst + (t + 1) * N * H
    cdef floating z_, n_
    _recurrent_product(n0, n1, j0, j1, H, 2, 3, rh + t * N * H, H, Wh, bh, g_t)
    for n in range(n0, n1):
        if t < lengths[n]:
            a = a_t + n * G
            for j in range(j0, j1):
                n_ = tanh_(a[2 * H + j] + g_t[n * G + 2 * H + j])
                a[2 * H + j] = n_
                z_ = a[H + j]
                h_next[n * H + j] = (one - z_) * n_ + z_ * h_prev[n * H + j]
        else:
            for j in range(j0, j1):
                h_next[n * H + j] = h_prev[n * H + j]


cdef void _backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, bint reset_after,
                               const floating* act, const floating* hg, const floating* hst,
                               const floating* dhs, floating* dh, floating* dGx, floating* dGh,
                               const Py_ssize_t* lengths) noexcept nogil:
    """Step t, one tile: gradients at the gate pre-activations (all three gates
    for reset_after; z and n for reset_before, whose r needs the n-product of
    all units first).  ``dh`` leaves holding the direct path dh_t * z."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j, q
    cdef floating one = 1
    cdef const floating* a
    cdef floating* dx_
    cdef floating* dh_g
    cdef const floating* h_prev = hst + t * N * H
    cdef floating r_, z_, n_, dh_, dan, daz, dar
    for n in range(n0, n1):
        dx_ = dGx + t * N * G + n * G
        dh_g = dGh + t * N * G + n * G
        if t < lengths[n]:
            a = act + t * N * G + n * G
            for j in range(j0, j1):
                r_ = a[j]
                z_ = a[H + j]
                n_ = a[2 * H + j]
                dh_ = dh[n * H + j] + dhs[t * N * H + n * H + j]
                dan = dh_ * (one - z_) * (one - n_ * n_)
                daz = dh_ * (h_prev[n * H + j] - n_) * z_ * (one - z_)
                dx_[H + j] = daz
                dx_[2 * H + j] = dan
                dh_g[H + j] = daz
                if reset_after:
                    dar = dan * hg[t * N * G + n * G + 2 * H + j] * r_ * (one - r_)
                    dx_[j] = dar
                    dh_g[j] = dar
                    dh_g[2 * H + j] = dan * r_
                else:
                    dh_g[2 * H + j] = dan
                dh[n * H + j] = dh_ * z_
        else:  # padded: no gradient into the gates, dh passes through
            for q in range(3):
                for j in range(j0, j1):
                    dx_[q * H + j] = 0
                    dh_g[q * H + j] = 0


cdef void _backward_reset_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* act,
                               const floating* hst, const floating* drh, floating* dh,
                               floating* dGx, floating* dGh, const Py_ssize_t* lengths) noexcept nogil:
    """reset_before only: the r gradient from d(r*h), and r*d(r*h) into dh."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating one = 1
    cdef floating r_, d_, dar
    for n in range(n0, n1):
        if t < lengths[n]:
            for j in range(j0, j1):
                r_ = act[t * N * G + n * G + j]
                d_ = drh[n * H + j]
                dar = d_ * hst[t * N * H + n * H + j] * r_ * (one - r_)
                dGx[t * N * G + n * G + j] = dar
                dGh[t * N * G + n * G + j] = dar
                dh[n * H + j] = dh[n * H + j] + d_ * r_


cdef void _backward_product_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, Py_ssize_t q0, Py_ssize_t q1,
                                 const floating* Wh, const floating* dGh, floating beta,
                                 floating* out) noexcept nogil:
    """out[rows, j0:j1] = beta * out + dGh_t[rows, gates q0..q1-1] @ Wh[j0:j1, those columns]^T."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H
    cdef floating one = 1
    gemm(False, True, n1 - n0, j1 - j0, (q1 - q0) * H, one, dGh + t * N * G + n0 * G + q0 * H, G,
         Wh + j0 * G + q0 * H, G, beta, out + n0 * H + j0, H)


def forward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
            const floating[::1] bx, const floating[::1] bh, floating[:, :, ::1] hst,
            floating[:, :, ::1] act, floating[:, :, ::1] hg, floating[:, :, ::1] rh,
            const Py_ssize_t[::1] lengths, bint reset_after,
            Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal: arrays are validated and allocated by ``rnnfast.gru``.
    ``rh`` is (T, N, H) for reset_after=False and unused otherwise."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Py_ssize_t G = 3 * H
    cdef Tiling s = make_tiling(N, H, block_n, chunk_h)
    cdef Py_ssize_t t, tile
    cdef int nt = num_threads if parallel_steps else 1
    cdef const floating* Wh_p = &Wh[0, 0]
    cdef const floating* bh_p = &bh[0]
    cdef floating* act_p = &act[0, 0, 0]
    cdef floating* hg_p = &hg[0, 0, 0]
    cdef floating* hst_p = &hst[0, 0, 0]
    cdef floating* rh_p = NULL if reset_after else &rh[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    with nogil:
        tiled_gemm(False, False, T * N, G, D, &x_tm[0, 0, 0], D, &Wx[0, 0], G, 0, act_p, G, &bx[0], num_threads)
        for t in range(T):
            if reset_after:
                for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                    _forward_tile_after(t, tile, s, Wh_p, bh_p, act_p, hg_p, hst_p, len_p)
            else:
                for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                    _forward_tile_before_rz(t, tile, s, Wh_p, bh_p, act_p, hg_p, hst_p, rh_p, len_p)
                for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                    _forward_tile_before_n(t, tile, s, Wh_p, bh_p, act_p, hg_p, hst_p, rh_p, len_p)


def backward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
             const floating[:, :, ::1] hst, const floating[:, :, ::1] act, const floating[:, :, ::1] hg,
             const floating[:, :, ::1] rh, const Py_ssize_t[::1] lengths, bint reset_after,
             const floating[:, :, ::1] dhs_tm, floating[:, ::1] dh, floating[:, ::1] drh,
             floating[:, :, ::1] dGx, floating[:, :, ::1] dGh,
             floating[:, :, ::1] dx_tm, floating[:, ::1] dWx, floating[:, ::1] dWh,
             floating[::1] dbx, floating[::1] dbh,
             Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal.  ``dh`` enters holding dL/dh_T and leaves holding dL/dh_0.
    ``drh`` (N, H) is workspace for reset_before."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Py_ssize_t G = 3 * H
    cdef Tiling s = make_tiling(N, H, block_n, chunk_h)
    cdef Py_ssize_t t, tile
    cdef int nt = num_threads if parallel_steps else 1
    cdef floating zero = 0, one = 1
    cdef const floating* Wh_p = &Wh[0, 0]
    cdef const floating* act_p = &act[0, 0, 0]
    cdef const floating* hg_p = &hg[0, 0, 0]
    cdef const floating* hst_p = &hst[0, 0, 0]
    cdef const floating* dhs_p = &dhs_tm[0, 0, 0]
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* drh_p = &drh[0, 0]
    cdef floating* dGx_p = &dGx[0, 0, 0]
    cdef floating* dGh_p = &dGh[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    with nogil:
        for t in range(T - 1, -1, -1):
            for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                _backward_gates_tile(t, tile, s, reset_after, act_p, hg_p, hst_p, dhs_p, dh_p,
                                     dGx_p, dGh_p, len_p)
            if not reset_after:
                for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                    _backward_product_tile(t, tile, s, 2, 3, Wh_p, dGh_p, zero, drh_p)
                for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                    _backward_reset_tile(t, tile, s, act_p, hst_p, drh_p, dh_p, dGx_p, dGh_p, len_p)
            for tile in prange(tile_count(s), schedule="static", num_threads=nt):
                _backward_product_tile(t, tile, s, 0, 3 if reset_after else 2, Wh_p, dGh_p, one, dh_p)
        tiled_gemm(False, True, T * N, D, G, dGx_p, G, &Wx[0, 0], G, 0, &dx_tm[0, 0, 0], D, NULL, num_threads)
        tiled_gemm(True, False, D, G, T * N, &x_tm[0, 0, 0], D, dGx_p, G, 0, &dWx[0, 0], G, NULL, num_threads)
        if reset_after:
            tiled_gemm(True, False, H, G, T * N, hst_p, H, dGh_p, G, 0, &dWh[0, 0], G, NULL, num_threads)
        else:
            tiled_gemm(True, False, H, 2 * H, T * N, hst_p, H, dGh_p, G, 0, &dWh[0, 0], G, NULL, num_threads)
            tiled_gemm(True, False, H, H, T * N, &rh[0, 0, 0], H, dGh_p + 2 * H, G, 0, &dWh[0, 2 * H], G,
                       NULL, num_threads)
        column_sums(T * N, G, dGx_p, G, &dbx[0], num_threads)
        column_sums(T * N, G, dGh_p, G, &dbh[0], num_threads)
