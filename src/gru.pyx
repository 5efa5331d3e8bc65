# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""GRU kernels: whole-sequence forward and backward through time, in both forms.

NumPy twin: ``rnnfast/reference/gru.py`` (the specification).
Gate blocks of the fused weights, in order: r, z, n (PyTorch's order);
h_t = (1 - z) * n + z * h_{t-1}.

reset_after=True (PyTorch/cuDNN): n = tanh(xn + r * (h @ Wh_n + bh_n)).  One
  recurrent GEMM per step over all 3H columns, so one phase per step.
reset_after=False (Cho et al., the textbook): n = tanh(xn + (r * h) @ Wh_n + bh_n).
  r*h of *all* units of a row is needed before the n-product: two phases per
  step (a barrier between them when threads share a step's tiles; none when
  each owns whole row blocks).

Layout and parallel scheme as in lstm.pyx: time-major (T, N, ...), tiles of
block_n rows x chunk_h hidden units, every GEMM shape fixed by the problem shape.
Buffers: ``act`` enters holding x @ Wx + bx and leaves holding (r, z, n);
``hg`` holds the recurrent pre-activations (h @ Wh + bh, or its n-part from r*h);
``rh`` holds r * h_{t-1} (reset_before only).

Packed steps (float32, AVX2 builds, large tiles; ``rnnfast._plumbing.step_panels``): each chunk
of units has its r, z, n column panels side by side (forward, K = H), or its rows of Wh
transposed (backward, K = 3H); a product over gates q0..q1-1 takes the matching run of panels,
or the matching K-slice of the transposed rows.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

from kernel_common cimport (check_interrupt, column_sums, copy, emit_output_tile, fill, gemm,
                            interrupt_mark, interrupted_since, make_tiling, owns_rows, row_product, team,
                            rnnfast_install_sigint, sigmoid, sigmoid_inplace, tanh_, tanh_inplace,
                            tile_bounds, tile_count, all_steps_gemm, weight_block, chunk_step_weights, STEPS_PER_CHECK,
                            Tiling, batch_row,
                            RNNFAST_PACKED_GEMM, PANEL, pack_step_panels, SliverCache,
                            new_sliver_cache, packed_gemm_tile_s)
from kernel_common cimport STRIP_BYTES
from libc.stdlib cimport free

# 1 where this build has the packed-weight step micro-kernel (see lstm.pyx, ``packed_gemm.h``).
PACKED_STEPS = RNNFAST_PACKED_GEMM
# Width in bytes of the column strips of a stepper's panels (kernel_common.row_product).
STEP_STRIP_BYTES = STRIP_BYTES


rnnfast_install_sigint()  # count Ctrl-C for the kernels (src/interrupt.h)


cdef void _recurrent_product(Tiling s, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t j0, Py_ssize_t j1,
                             Py_ssize_t q0, Py_ssize_t q1, const floating* A, Py_ssize_t lda,
                             const floating* Wh, const floating* panels, const floating* bh,
                             floating* g_t, SliverCache* slivers, Py_ssize_t key) noexcept nogil:
    """g_t[rows, gates q0..q1-1 of units j0:j1] = A[rows] @ Wh[:, those columns] + bh.
    ``Wh``: as given, or its chunk-major copy (``kernel_common.chunk_step_weights``).  ``key`` names
    A's rows for the thread's sliver copy (packed path)."""
    cdef Py_ssize_t H = s.H, G = 3 * H, n, j, q, w = j1 - j0
    cdef floating one = 1
    for n in range(n0, n1):
        for q in range(q0, q1):
            for j in range(j0, j1):
                g_t[n * G + q * H + j] = bh[q * H + j]
    if panels != NULL:  # float32 only: the chunk's r, z, n panels (w // PANEL each), from gate q0 on
        if floating is float:
            packed_gemm_tile_s(slivers, key, n1 - n0, H, A + n0 * lda, lda, panels + 3 * j0 * H + q0 * w * H,
                               H * PANEL, (q1 - q0) * w // PANEL, w // PANEL, H, g_t + n0 * G + q0 * H + j0, G)
    elif j0 == 0 and j1 == H:  # one chunk, weights as given: whole gate blocks are contiguous, one GEMM
        gemm(False, False, n1 - n0, (q1 - q0) * H, H, one, A + n0 * lda, lda,
             Wh + q0 * H, G, one, g_t + n0 * G + q0 * H, G)
    else:
        for q in range(q0, q1):
            gemm(False, False, n1 - n0, j1 - j0, H, one, A + n0 * lda, lda,
                 Wh + weight_block(s, j0, q), s.w_ld, one, g_t + n0 * G + q * H + j0, G)


cdef void _forward_tile_after(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh,
                              const floating* panels, const floating* bh,
                              floating* act, floating* hg, floating* hst,
                              const Py_ssize_t* lengths, SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating* a
    cdef floating* g
    cdef floating* a_t = act + t * N * G
    cdef floating* g_t = hg + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* h_next = hst + (t + 1) * N * H
    _recurrent_product(s, n0, n1, j0, j1, 0, 3, h_prev, H, Wh, panels, bh, g_t, slivers,
                       t * s.n_blocks + tile // s.n_chunks)
    for n in range(n0, n1):
        if t < lengths[n]:
            a = a_t + n * G + j0
            g = g_t + n * G + j0
            _sigmoid_of_sum(a, g, j1 - j0)                       # r
            _sigmoid_of_sum(a + H, g + H, j1 - j0)               # z
            _candidate_after(a + 2 * H, a, g + 2 * H, j1 - j0)   # n
            _blend(a + H, a + 2 * H, h_prev + n * H + j0, h_next + n * H + j0, j1 - j0)
        else:
            copy(h_next + n * H + j0, h_prev + n * H + j0, j1 - j0)


cdef void _sigmoid_of_sum(floating* a, const floating* g, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        a[j] = sigmoid(a[j] + g[j])


cdef void _candidate_after(floating* a_n, const floating* r, const floating* g_n, Py_ssize_t m) noexcept nogil:
    # n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n))
    cdef Py_ssize_t j
    for j in range(m):
        a_n[j] = tanh_(a_n[j] + r[j] * g_n[j])


cdef void _blend(const floating* z, const floating* n_, const floating* h_prev, floating* h_next,
                 Py_ssize_t m) noexcept nogil:
    # h' = (1 - z) * n + z * h
    cdef Py_ssize_t j
    cdef floating one = 1
    for j in range(m):
        h_next[j] = (one - z[j]) * n_[j] + z[j] * h_prev[j]


cdef void _forward_tile_before_rz(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh,
                                  const floating* panels, const floating* bh, floating* act, floating* hg,
                                  const floating* hst, floating* rh, const Py_ssize_t* lengths,
                                  SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating* a
    cdef floating* g
    cdef floating* a_t = act + t * N * G
    cdef floating* g_t = hg + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* rh_t = rh + t * N * H
    cdef floating zero = 0
    _recurrent_product(s, n0, n1, j0, j1, 0, 2, h_prev, H, Wh, panels, bh, g_t, slivers,
                       2 * (t * s.n_blocks + tile // s.n_chunks))
    for n in range(n0, n1):
        if t < lengths[n]:
            a = a_t + n * G + j0
            g = g_t + n * G + j0
            _sigmoid_of_sum(a, g, j1 - j0)            # r
            _sigmoid_of_sum(a + H, g + H, j1 - j0)    # z
            _product(a, h_prev + n * H + j0, rh_t + n * H + j0, j1 - j0)
        else:
            fill(rh_t + n * H + j0, j1 - j0, zero)


cdef void _product(const floating* a, const floating* b, floating* out, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        out[j] = a[j] * b[j]


cdef void _forward_tile_before_n(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh,
                                 const floating* panels, const floating* bh, floating* act, floating* hg, floating* hst,
                                 const floating* rh, const Py_ssize_t* lengths, SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, j
    cdef floating* a
    cdef floating* a_t = act + t * N * G
    cdef floating* g_t = hg + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* h_next = hst + (t + 1) * N * H
    _recurrent_product(s, n0, n1, j0, j1, 2, 3, rh + t * N * H, H, Wh, panels, bh, g_t, slivers,
                       2 * (t * s.n_blocks + tile // s.n_chunks) + 1)
    for n in range(n0, n1):
        if t < lengths[n]:
            a = a_t + n * G + j0
            _tanh_of_sum(a + 2 * H, g_t + n * G + 2 * H + j0, j1 - j0)   # n
            _blend(a + H, a + 2 * H, h_prev + n * H + j0, h_next + n * H + j0, j1 - j0)
        else:
            copy(h_next + n * H + j0, h_prev + n * H + j0, j1 - j0)


cdef void _tanh_of_sum(floating* a, const floating* g, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        a[j] = tanh_(a[j] + g[j])


cdef void _backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, bint reset_after,
                               const floating* act, const floating* hg, const floating* hst,
                               const floating* dhs, floating* dh, floating* dGx, floating* dGh,
                               const Py_ssize_t* lengths) noexcept nogil:
    """Step t, one tile: gradients at the gate pre-activations (all three gates
    for reset_after; z and n for reset_before, whose r needs the n-product of
    all units first).  ``dh`` leaves holding the direct path dh_t * z."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, q, o
    cdef floating zero = 0
    for n in range(n0, n1):
        o = t * N * G + n * G + j0
        if t < lengths[n]:
            _gates_backward(reset_after, act + o, act + o + H, act + o + 2 * H, hg + o + 2 * H,
                            hst + t * N * H + n * H + j0, dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0,
                            dGx + o, dGx + o + H, dGx + o + 2 * H, dGh + o, dGh + o + H, dGh + o + 2 * H,
                            j1 - j0)
        else:  # padded: no gradient into the gates, dh passes through
            for q in range(3):
                fill(dGx + o + q * H, j1 - j0, zero)
                fill(dGh + o + q * H, j1 - j0, zero)


cdef void _gates_backward(bint reset_after, const floating* r, const floating* z, const floating* n_,
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


cdef void _backward_reset_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* act,
                               const floating* hst, const floating* drh, floating* dh,
                               floating* dGx, floating* dGh, const Py_ssize_t* lengths) noexcept nogil:
    """reset_before only: the r gradient from d(r*h), and r*d(r*h) into dh."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, n, o
    for n in range(n0, n1):
        if t < lengths[n]:
            o = t * N * G + n * G + j0
            _reset_backward(act + o, hst + t * N * H + n * H + j0, drh + n * H + j0, dh + n * H + j0,
                            dGx + o, dGh + o, j1 - j0)


cdef void _reset_backward(const floating* r, const floating* h_prev, const floating* drh, floating* dh,
                          floating* dxr, floating* dhr, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating one = 1, dar
    for j in range(m):
        dar = drh[j] * h_prev[j] * r[j] * (one - r[j])
        dxr[j] = dar
        dhr[j] = dar
        dh[j] = dh[j] + drh[j] * r[j]


cdef void _backward_product_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, Py_ssize_t q0, Py_ssize_t q1,
                                 const floating* WhT, const floating* panels, const floating* dGh, floating beta,
                                 floating* out, SliverCache* slivers) noexcept nogil:
    """out[rows, j0:j1] = beta * out + dGh_t[rows, gates q0..q1-1] @ Wh^T[those gate rows, j0:j1].

    One GEMM per gate block, untransposed (see lstm.pyx), accumulated in gate order."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1, n
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 3 * H, q
    cdef floating one = 1, zero = 0
    if panels != NULL:  # float32 only: Wh's rows j0:j1 transposed (K = 3H), the K-slice of gates q0..q1-1
        if floating is float:
            if beta == 0:  # the micro-kernel accumulates
                for n in range(n0, n1):
                    fill(out + n * H + j0, j1 - j0, zero)
            packed_gemm_tile_s(slivers, 16 * (t * s.n_blocks + tile // s.n_chunks) + 4 * q0 + q1, n1 - n0,
                               (q1 - q0) * H, dGh + t * N * G + n0 * G + q0 * H, G, panels + j0 * G + q0 * H * PANEL,
                               G * PANEL, (j1 - j0) // PANEL, (j1 - j0) // PANEL, 0, out + n0 * H + j0, H)
        return
    if j0 == 0 and j1 == H:
        gemm(False, False, n1 - n0, H, (q1 - q0) * H, one, dGh + t * N * G + n0 * G + q0 * H, G,
             WhT + q0 * H * H, H, beta, out + n0 * H, H)
        return
    for q in range(q0, q1):
        gemm(False, False, n1 - n0, j1 - j0, H, one, dGh + t * N * G + n0 * G + q * H, G,
             WhT + q * H * H + j0, H, beta if q == q0 else one, out + n0 * H + j0, H)


cdef void _forward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t tile0, Py_ssize_t tile1, Tiling s,
                         bint reset_after, const floating* Wh, const floating* panels,
                         const floating* bh, floating* act,
                         floating* hg, floating* hst, floating* rh, floating* hs,
                         const Py_ssize_t* lengths) noexcept nogil:
    """Steps w0..w1-1 over tiles tile0..tile1-1, by one thread: all tiles, or whole row blocks."""
    cdef Py_ssize_t t, tile, blk
    cdef SliverCache slivers = new_sliver_cache(panels != NULL, s.block_n, s.H)
    for t in range(w0, w1):
        for tile in range(tile0, tile1):
            if reset_after:
                _forward_tile_after(t, tile, s, Wh, panels, bh, act, hg, hst, lengths, &slivers)
                emit_output_tile(t, tile, s, hst, hs, lengths)
            else:
                _forward_tile_before_rz(t, tile, s, Wh, panels, bh, act, hg, hst, rh, lengths, &slivers)
        if not reset_after:  # n needs r * h of all units of the row
            for tile in range(tile0, tile1):
                _forward_tile_before_n(t, tile, s, Wh, panels, bh, act, hg, hst, rh, lengths, &slivers)
                emit_output_tile(t, tile, s, hst, hs, lengths)
    free(slivers.data)


cdef void _backward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t tile0, Py_ssize_t tile1, Tiling s,
                          bint reset_after, const floating* WhT, const floating* panels, const floating* act,
                          const floating* hg,
                          const floating* hst, const floating* dhs, floating* dh, floating* drh, floating* dGx,
                          floating* dGh, const Py_ssize_t* lengths) noexcept nogil:
    """Steps w1-1 down to w0 over tiles tile0..tile1-1, by one thread (see ``_forward_steps``)."""
    cdef Py_ssize_t t, tile, blk
    cdef floating zero = 0, one = 1
    cdef SliverCache slivers = new_sliver_cache(panels != NULL, s.block_n, 3 * s.H)
    for t in range(w1 - 1, w0 - 1, -1):
        for tile in range(tile0, tile1):
            _backward_gates_tile(t, tile, s, reset_after, act, hg, hst, dhs, dh, dGx, dGh, lengths)
        if not reset_after:
            for tile in range(tile0, tile1):
                _backward_product_tile(t, tile, s, 2, 3, WhT, panels, dGh, zero, drh, &slivers)
            for tile in range(tile0, tile1):
                _backward_reset_tile(t, tile, s, act, hst, drh, dh, dGx, dGh, lengths)
        for tile in range(tile0, tile1):
            _backward_product_tile(t, tile, s, 0, 3 if reset_after else 2, WhT, panels, dGh, one, dh, &slivers)
    free(slivers.data)


def forward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
            const floating[::1] bx, const floating[::1] bh, floating[:, :, ::1] hst,
            floating[:, :, ::1] act, floating[:, :, ::1] hg, floating[:, :, ::1] rh, floating[:, :, ::1] hs,
            const Py_ssize_t[::1] lengths, bint reset_after, floating[::1] panels, floating[::1] chunked,
            Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal: arrays are validated and allocated by ``rnnfast.gru``.
    ``rh`` is (T, N, H) for reset_after=False and unused otherwise; ``hs (N, T, H)`` is the
    batch-major output.  ``panels``: 3*H*H scratch floats for the packed step weights, or empty
    for the BLAS path; ``chunked``: scratch for the BLAS path's chunk-major copy of Wh, or empty
    (``rnnfast._plumbing.step_panels``, ``chunked_weights``)."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Py_ssize_t G = 3 * H
    cdef Tiling s = make_tiling(N, T, H, 3, block_n, chunk_h)
    cdef Py_ssize_t t, tile, blk
    cdef int nt = team(tile_count(s), num_threads) if parallel_steps else 1
    cdef Py_ssize_t w, w0, w1
    cdef long mark = interrupt_mark()
    cdef const floating* Wh_p = &Wh[0, 0]
    cdef floating* panels_p = &panels[0] if panels.shape[0] > 0 else NULL
    cdef floating* chunked_p = &chunked[0] if chunked.shape[0] > 0 else NULL
    cdef const floating* bh_p = &bh[0]
    cdef floating* act_p = &act[0, 0, 0]
    cdef floating* hg_p = &hg[0, 0, 0]
    cdef floating* hst_p = &hst[0, 0, 0]
    cdef floating* rh_p = NULL if reset_after else &rh[0, 0, 0]
    cdef floating* hs_p = &hs[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    cdef SliverCache slivers
    with nogil:
        all_steps_gemm(False, False, T * N, G, D, &x_tm[0, 0, 0], D, &Wx[0, 0], G, act_p, G, &bx[0], num_threads, mark)
        if panels_p != NULL:
            pack_step_panels(True, Wh_p, panels_p, H, 3, chunk_h, num_threads)
        elif chunked_p != NULL:
            chunk_step_weights(Wh_p, chunked_p, &s, 3, num_threads)
            Wh_p = chunked_p
        # Windows of steps; Ctrl-C is looked at between windows.
        w1 = 0
        while w1 < T and not interrupted_since(mark):
            w0 = w1
            w1 = min(T, w0 + STEPS_PER_CHECK)
            if nt > 1 and owns_rows(s, nt):
                # Each thread owns whole row blocks: rows never read each other, so no barriers.
                for blk in prange(s.n_blocks, num_threads=nt, schedule="static"):
                    _forward_steps(w0, w1, blk * s.n_chunks, (blk + 1) * s.n_chunks, s, reset_after, Wh_p,
                                   panels_p, bh_p, act_p, hg_p, hst_p, rh_p, hs_p, len_p)
            elif nt > 1:
                # One parallel region per window: barriers between phases, no fork/join per step.
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(panels_p != NULL, s.block_n, H)  # each thread's own
                    for t in range(w0, w1):
                        if reset_after:
                            for tile in prange(tile_count(s), schedule="static"):
                                _forward_tile_after(t, tile, s, Wh_p, panels_p, bh_p, act_p, hg_p, hst_p, len_p,
                                                    &slivers)
                                emit_output_tile(t, tile, s, hst_p, hs_p, len_p)
                        else:
                            for tile in prange(tile_count(s), schedule="static"):
                                _forward_tile_before_rz(t, tile, s, Wh_p, panels_p, bh_p, act_p, hg_p, hst_p, rh_p,
                                                        len_p, &slivers)
                            for tile in prange(tile_count(s), schedule="static"):
                                _forward_tile_before_n(t, tile, s, Wh_p, panels_p, bh_p, act_p, hg_p, hst_p, rh_p,
                                                       len_p, &slivers)
                                emit_output_tile(t, tile, s, hst_p, hs_p, len_p)
                    free(slivers.data)
            else:
                _forward_steps(w0, w1, 0, tile_count(s), s, reset_after, Wh_p, panels_p, bh_p, act_p, hg_p, hst_p,
                               rh_p, hs_p, len_p)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt


def backward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
             const floating[:, ::1] WhT,
             const floating[:, :, ::1] hst, const floating[:, :, ::1] act, const floating[:, :, ::1] hg,
             const floating[:, :, ::1] rh, const Py_ssize_t[::1] lengths, bint reset_after,
             const floating[:, :, ::1] dhs, floating[:, ::1] dh, floating[:, ::1] drh,
             floating[:, :, ::1] dGx, floating[:, :, ::1] dGh,
             floating[:, :, ::1] dx_tm, floating[:, ::1] dWx, floating[:, ::1] dWh,
             floating[::1] dbx, floating[::1] dbh, floating[::1] panels,
             Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal.  ``dh`` enters holding dL/dh_T and leaves holding dL/dh_0.
    ``dhs (N, T, H)`` is batch-major (the user's array, read at valid steps only).
    ``WhT`` is ``Wh.T`` as a C-contiguous (3H, H) array for the BLAS path; with non-empty
    ``panels`` (see ``forward``) the steps use those, packed from ``Wh``, and ``WhT`` is not read.
    ``drh`` (N, H) is workspace for reset_before."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Py_ssize_t G = 3 * H
    cdef Tiling s = make_tiling(N, T, H, 3, block_n, chunk_h)
    cdef Py_ssize_t t, tile, blk
    cdef int nt = team(tile_count(s), num_threads) if parallel_steps else 1
    cdef Py_ssize_t w, w0, w1
    cdef long mark = interrupt_mark()
    cdef floating zero = 0, one = 1
    cdef const floating* WhT_p = &WhT[0, 0]
    cdef floating* panels_p = &panels[0] if panels.shape[0] > 0 else NULL
    cdef const floating* act_p = &act[0, 0, 0]
    cdef const floating* hg_p = &hg[0, 0, 0]
    cdef const floating* hst_p = &hst[0, 0, 0]
    cdef const floating* dhs_p = &dhs[0, 0, 0]
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* drh_p = &drh[0, 0]
    cdef floating* dGx_p = &dGx[0, 0, 0]
    cdef floating* dGh_p = &dGh[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    cdef SliverCache slivers
    with nogil:
        if panels_p != NULL:
            pack_step_panels(False, &Wh[0, 0], panels_p, H, 3, chunk_h, num_threads)
        # Windows of steps, latest first; Ctrl-C is looked at between windows.
        for w in range((T + STEPS_PER_CHECK - 1) // STEPS_PER_CHECK):
            if interrupted_since(mark):
                break
            w1 = T - w * STEPS_PER_CHECK
            w0 = max(0, w1 - STEPS_PER_CHECK)
            if nt > 1 and owns_rows(s, nt):
                for blk in prange(s.n_blocks, num_threads=nt, schedule="static"):
                    _backward_steps(w0, w1, blk * s.n_chunks, (blk + 1) * s.n_chunks, s, reset_after, WhT_p,
                                    panels_p, act_p, hg_p, hst_p, dhs_p, dh_p, drh_p, dGx_p, dGh_p, len_p)
            elif nt > 1:
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(panels_p != NULL, s.block_n, G)  # each thread's own
                    for t in range(w1 - 1, w0 - 1, -1):
                        for tile in prange(tile_count(s), schedule="static"):
                            _backward_gates_tile(t, tile, s, reset_after, act_p, hg_p, hst_p, dhs_p, dh_p,
                                                 dGx_p, dGh_p, len_p)
                        if not reset_after:
                            for tile in prange(tile_count(s), schedule="static"):
                                _backward_product_tile(t, tile, s, 2, 3, WhT_p, panels_p, dGh_p, zero, drh_p,
                                                       &slivers)
                            for tile in prange(tile_count(s), schedule="static"):
                                _backward_reset_tile(t, tile, s, act_p, hst_p, drh_p, dh_p, dGx_p, dGh_p, len_p)
                        for tile in prange(tile_count(s), schedule="static"):
                            _backward_product_tile(t, tile, s, 0, 3 if reset_after else 2, WhT_p, panels_p, dGh_p,
                                                   one, dh_p, &slivers)
                    free(slivers.data)
            else:
                _backward_steps(w0, w1, 0, tile_count(s), s, reset_after, WhT_p, panels_p, act_p, hg_p, hst_p, dhs_p,
                                dh_p, drh_p, dGx_p, dGh_p, len_p)
        all_steps_gemm(False, True, T * N, D, G, dGx_p, G, &Wx[0, 0], G, &dx_tm[0, 0, 0], D, NULL, num_threads, mark)
        all_steps_gemm(True, False, D, G, T * N, &x_tm[0, 0, 0], D, dGx_p, G, &dWx[0, 0], G, NULL, num_threads, mark)
        if reset_after:
            all_steps_gemm(True, False, H, G, T * N, hst_p, H, dGh_p, G, &dWh[0, 0], G, NULL, num_threads, mark)
        else:
            all_steps_gemm(True, False, H, 2 * H, T * N, hst_p, H, dGh_p, G, &dWh[0, 0], G, NULL, num_threads, mark)
            all_steps_gemm(True, False, H, H, T * N, &rh[0, 0, 0], H, dGh_p + 2 * H, G, &dWh[0, 2 * H], G,
                           NULL, num_threads, mark)
        column_sums(T * N, G, dGx_p, G, &dbx[0], num_threads)
        column_sums(T * N, G, dGh_p, G, &dbh[0], num_threads)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt


# --- Streaming: one step on weights packed once (rnnfast.stepper.GRUStepper) ---
#
# reset_after: each chunk's panel holds four column groups over [x | h] rows,
#   r and z ([Wx; Wh] blocks), n_x ([Wx_n; 0]) and n_h ([0; Wh_n]), so one GEMV
#   gives everything and n = tanh(n_x + r * n_h) needs no other chunk.
# reset_before: n needs r * h of *all* units first, so two passes: A (groups r, z,
#   n_x over [x | h]; writes r * h), then B (n_h = (r * h) @ Wh_n per chunk).

cdef void _packed_pass_a(Py_ssize_t k, Py_ssize_t N, Py_ssize_t K, Py_ssize_t D, Py_ssize_t H, Py_ssize_t chunk,
                         Py_ssize_t groups, bint reset_after, const floating* xh, const floating* panels,
                         const floating* b_packed, floating* xh_next, floating* gates,
                         floating* rh) noexcept nogil:
    cdef Py_ssize_t C = groups * chunk, j0 = k * chunk, w = min(chunk, H - j0), n, j
    cdef floating* g = gates + k * N * C
    cdef floating* a
    cdef const floating* h_prev
    cdef floating n_
    for n in range(N):
        copy(g + n * C, b_packed + k * C, C)
    row_product(N, C, K, xh, panels + k * K * C, g)
    for n in range(N):
        a = g + n * C
        h_prev = xh + n * K + D + j0
        sigmoid_inplace(a, w)          # r
        sigmoid_inplace(a + chunk, w)  # z
        if reset_after:
            for j in range(w):
                n_ = tanh_(a[2 * chunk + j] + a[j] * a[3 * chunk + j])
                xh_next[n * K + D + j0 + j] = (1 - a[chunk + j]) * n_ + a[chunk + j] * h_prev[j]
        else:
            for j in range(w):
                rh[n * H + j0 + j] = a[j] * h_prev[j]


cdef void _packed_pass_b(Py_ssize_t k, Py_ssize_t N, Py_ssize_t K, Py_ssize_t D, Py_ssize_t H, Py_ssize_t chunk,
                         const floating* xh, const floating* panels_n, floating* xh_next, const floating* gates,
                         const floating* rh, floating* gn) noexcept nogil:
    cdef Py_ssize_t C = 3 * chunk, j0 = k * chunk, w = min(chunk, H - j0), n, j
    cdef const floating* a
    cdef floating* g = gn + k * N * chunk
    cdef const floating* h_prev
    cdef floating n_
    fill(g, N * chunk, 0)
    row_product(N, chunk, H, rh, panels_n + k * H * chunk, g)
    for n in range(N):
        a = gates + k * N * C + n * C
        h_prev = xh + n * K + D + j0
        for j in range(w):
            n_ = tanh_(a[2 * chunk + j] + g[n * chunk + j])
            xh_next[n * K + D + j0 + j] = (1 - a[chunk + j]) * n_ + a[chunk + j] * h_prev[j]


def packed_step(const floating[:, ::1] xh, const floating[:, :, ::1] panels, const floating[:, ::1] b_packed,
                floating[:, ::1] xh_next, floating[:, :, ::1] gates, Py_ssize_t H, Py_ssize_t chunk,
                bint reset_after, const floating[:, :, ::1] panels_n, floating[:, ::1] rh,
                floating[:, :, ::1] gn, int num_threads):
    """Internal.  ``xh (N, D+H)`` holds ``[x_t | h_{t-1}]``; ``h_t`` goes to ``xh_next[:, D:]``.
    ``panels (n_chunks, D+H, G*chunk)`` with G = 4 (reset_after) or 3; for reset_before also
    ``panels_n (n_chunks, H, chunk)`` and scratch ``rh (N, H)``, ``gn (n_chunks, N, chunk)``."""
    cdef Py_ssize_t N = xh.shape[0], K = xh.shape[1], n_chunks = panels.shape[0], D = K - H, k
    cdef Py_ssize_t groups = 4 if reset_after else 3
    if N == 0:
        return
    cdef const floating* xh_p = &xh[0, 0]
    cdef const floating* panels_p = &panels[0, 0, 0]
    cdef const floating* b_p = &b_packed[0, 0]
    cdef floating* next_p = &xh_next[0, 0]
    cdef floating* gates_p = &gates[0, 0, 0]
    cdef const floating* pn_p = NULL if reset_after else &panels_n[0, 0, 0]
    cdef floating* rh_p = NULL if reset_after else &rh[0, 0]
    cdef floating* gn_p = NULL if reset_after else &gn[0, 0, 0]
    cdef int nt = team(n_chunks, num_threads)
    with nogil:
        if nt > 1:
            for k in prange(n_chunks, num_threads=nt, schedule="static"):
                _packed_pass_a(k, N, K, D, H, chunk, groups, reset_after, xh_p, panels_p, b_p, next_p, gates_p,
                               rh_p)
            if not reset_after:
                for k in prange(n_chunks, num_threads=nt, schedule="static"):
                    _packed_pass_b(k, N, K, D, H, chunk, xh_p, pn_p, next_p, gates_p, rh_p, gn_p)
        else:
            for k in range(n_chunks):
                _packed_pass_a(k, N, K, D, H, chunk, groups, reset_after, xh_p, panels_p, b_p, next_p, gates_p,
                               rh_p)
            if not reset_after:
                for k in range(n_chunks):
                    _packed_pass_b(k, N, K, D, H, chunk, xh_p, pn_p, next_p, gates_p, rh_p, gn_p)
