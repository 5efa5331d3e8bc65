# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Vanilla RNN kernels: h_t = act(x_t @ Wx + h_{t-1} @ Wh + b), act = tanh or relu.

NumPy twin: ``rnnfast/reference/rnn.py`` (the specification).
Layout and parallel scheme as in lstm.pyx (time-major, fixed tiles).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

from kernel_common cimport (check_interrupt, column_sums, copy, emit_output_tile, fill, gemm,
                            interrupt_mark, interrupted_since, make_tiling, owns_rows, row_product, team,
                            rnnfast_install_sigint, tanh_inplace, tile_bounds, tile_count, all_steps_gemm,
                            weight_gradients, weight_block, chunk_step_weights, STEPS_PER_CHECK, Tiling, PANEL,
                            batch_row,
                            pack_step_panels, RNNFAST_PACKED_GEMM, SliverCache, new_sliver_cache,
                            packed_gemm_tile_s)
from kernel_common cimport STRIP_BYTES
from libc.stdlib cimport free

# 1 where this build has the packed-weight step micro-kernel (see lstm.pyx, ``packed_gemm.h``).
PACKED_STEPS = RNNFAST_PACKED_GEMM
# Width in bytes of the column strips of a stepper's panels (kernel_common.row_product).
STEP_STRIP_BYTES = STRIP_BYTES


rnnfast_install_sigint()  # count Ctrl-C for the kernels (src/interrupt.h)


cdef void _forward_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, bint relu, const floating* Wh, const floating* panels,
                        floating* act, floating* hst, const Py_ssize_t* lengths, SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t n
    cdef floating one = 1
    cdef floating* a_t = act + t * N * H
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* h_next = hst + (t + 1) * N * H
    if panels != NULL:  # float32 only: Wh's columns j0:j1 packed once per call; h_prev's slivers per thread
        if floating is float:
            packed_gemm_tile_s(slivers, t * s.n_blocks + tile // s.n_chunks, n1 - n0, H, h_prev + n0 * H, H,
                               panels + j0 * H, H * PANEL, (j1 - j0) // PANEL, (j1 - j0) // PANEL, 0,
                               a_t + n0 * H + j0, H)
    else:  # Wh: as given, or its chunk-major copy (kernel_common.chunk_step_weights)
        gemm(False, False, n1 - n0, j1 - j0, H, one, h_prev + n0 * H, H, Wh + weight_block(s, j0, 0), s.w_ld,
             one, a_t + n0 * H + j0, H)
    for n in range(n0, n1):
        if t < lengths[n]:
            if relu:
                _relu_inplace(a_t + n * H + j0, j1 - j0)
            else:
                tanh_inplace(a_t + n * H + j0, j1 - j0)
            copy(h_next + n * H + j0, a_t + n * H + j0, j1 - j0)
        else:
            copy(h_next + n * H + j0, h_prev + n * H + j0, j1 - j0)


cdef void _relu_inplace(floating* a, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating zero = 0
    for j in range(m):
        a[j] = a[j] if a[j] > zero else zero


cdef void _backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, bint relu, const floating* act,
                               const floating* dhs, floating* dh, floating* dG,
                               const Py_ssize_t* lengths) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t n, k
    cdef floating zero = 0
    for n in range(n0, n1):
        k = t * N * H + n * H + j0
        if t < lengths[n]:
            _activation_backward(relu, act + k, dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0, dG + k,
                                 j1 - j0)
        else:
            fill(dG + k, j1 - j0, zero)


cdef void _activation_backward(bint relu, const floating* h, const floating* dhs, floating* dh,
                               floating* da, Py_ssize_t m) noexcept nogil:
    """da = (dh + dhs) * act'(a), written via the activation h = act(a); dh is then zeroed."""
    cdef Py_ssize_t j
    cdef floating one = 1, zero = 0, d
    for j in range(m):
        d = dh[j] + dhs[j]
        if relu:
            da[j] = d if h[j] > zero else zero
        else:
            da[j] = d * (one - h[j] * h[j])
        dh[j] = 0


cdef void _backward_recurrent_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* WhT,
                                   const floating* panels, const floating* dG, floating* dh,
                                   SliverCache* slivers) noexcept nogil:
    # dh[rows, j0:j1] += dG_t[rows, :] @ Wh^T[:, j0:j1]   (untransposed operand, see lstm.pyx)
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef floating one = 1
    if panels != NULL:  # float32 only: Wh's rows j0:j1, transposed and packed once per call
        if floating is float:
            packed_gemm_tile_s(slivers, t * s.n_blocks + tile // s.n_chunks, n1 - n0, H, dG + t * N * H + n0 * H,
                               H, panels + j0 * H, H * PANEL, (j1 - j0) // PANEL, (j1 - j0) // PANEL, 0,
                               dh + n0 * H + j0, H)
        return
    gemm(False, False, n1 - n0, j1 - j0, H, one, dG + t * N * H + n0 * H, H, WhT + j0, H,
         one, dh + n0 * H + j0, H)


cdef void _forward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t tile0, Py_ssize_t tile1, Tiling s,
                         bint relu, const floating* Wh, const floating* panels, floating* act,
                         floating* hst, floating* hs, const Py_ssize_t* lengths) noexcept nogil:
    """Steps w0..w1-1 over tiles tile0..tile1-1, by one thread: all tiles, or whole row blocks."""
    cdef Py_ssize_t t, tile, blk
    cdef SliverCache slivers = new_sliver_cache(panels != NULL, s.block_n, s.H)
    for t in range(w0, w1):
        for tile in range(tile0, tile1):
            _forward_tile(t, tile, s, relu, Wh, panels, act, hst, lengths, &slivers)
            emit_output_tile(t, tile, s, hst, hs, lengths)
    free(slivers.data)


cdef void _backward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t tile0, Py_ssize_t tile1, Tiling s,
                          bint relu, const floating* WhT, const floating* panels, const floating* act,
                          const floating* dhs, floating* dh, floating* dG, const Py_ssize_t* lengths) noexcept nogil:
    """Steps w1-1 down to w0 over tiles tile0..tile1-1, by one thread (see ``_forward_steps``)."""
    cdef Py_ssize_t t, tile, blk
    cdef SliverCache slivers = new_sliver_cache(panels != NULL, s.block_n, s.H)
    for t in range(w1 - 1, w0 - 1, -1):
        for tile in range(tile0, tile1):
            _backward_gates_tile(t, tile, s, relu, act, dhs, dh, dG, lengths)
        for tile in range(tile0, tile1):
            _backward_recurrent_tile(t, tile, s, WhT, panels, dG, dh, &slivers)
    free(slivers.data)


def forward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
            const floating[::1] b, floating[:, :, ::1] hst, floating[:, :, ::1] act,
            floating[:, :, ::1] hs, const Py_ssize_t[::1] lengths, bint relu, floating[::1] panels,
            floating[::1] chunked, Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal: arrays are validated and allocated by ``rnnfast.rnn``; ``hs (N, T, H)`` is the
    batch-major output.  ``panels``: H*H scratch floats for the packed step weights, or empty for
    the BLAS path; ``chunked``: scratch for the BLAS path's chunk-major copy of Wh, or empty
    (``rnnfast._plumbing.step_panels``, ``chunked_weights``)."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Tiling s = make_tiling(N, T, H, 1, block_n, chunk_h)
    cdef Py_ssize_t t, tile, blk
    cdef int nt = team(tile_count(s), num_threads) if parallel_steps else 1
    cdef Py_ssize_t w, w0, w1
    cdef long mark = interrupt_mark()
    cdef const floating* Wh_p = &Wh[0, 0]
    cdef floating* panels_p = &panels[0] if panels.shape[0] > 0 else NULL
    cdef floating* chunked_p = &chunked[0] if chunked.shape[0] > 0 else NULL
    cdef floating* act_p = &act[0, 0, 0]
    cdef floating* hst_p = &hst[0, 0, 0]
    cdef floating* hs_p = &hs[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    cdef SliverCache slivers
    with nogil:
        all_steps_gemm(False, False, T * N, H, D, &x_tm[0, 0, 0], D, &Wx[0, 0], H, act_p, H, &b[0], num_threads, mark)
        if panels_p != NULL:
            pack_step_panels(True, Wh_p, panels_p, H, 1, chunk_h, num_threads)
        elif chunked_p != NULL:
            chunk_step_weights(Wh_p, chunked_p, &s, 1, num_threads)
            Wh_p = chunked_p
        # Windows of steps; Ctrl-C is looked at between windows.
        w1 = 0
        while w1 < T and not interrupted_since(mark):
            w0 = w1
            w1 = min(T, w0 + STEPS_PER_CHECK)
            if nt > 1 and owns_rows(s, nt):
                # Each thread owns whole row blocks: rows never read each other, so no barriers.
                for blk in prange(s.n_blocks, num_threads=nt, schedule="static"):
                    _forward_steps(w0, w1, blk * s.n_chunks, (blk + 1) * s.n_chunks, s, relu, Wh_p, panels_p, act_p,
                                   hst_p, hs_p, len_p)
            elif nt > 1:
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(panels_p != NULL, s.block_n, H)  # each thread's own
                    for t in range(w0, w1):
                        for tile in prange(tile_count(s), schedule="static"):
                            _forward_tile(t, tile, s, relu, Wh_p, panels_p, act_p, hst_p, len_p, &slivers)
                            emit_output_tile(t, tile, s, hst_p, hs_p, len_p)
                    free(slivers.data)
            else:
                _forward_steps(w0, w1, 0, tile_count(s), s, relu, Wh_p, panels_p, act_p, hst_p, hs_p, len_p)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt


def backward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
             const floating[:, ::1] WhT,
             const floating[:, :, ::1] hst, const floating[:, :, ::1] act, const Py_ssize_t[::1] lengths,
             bint relu, const floating[:, :, ::1] dhs, floating[:, ::1] dh, floating[:, :, ::1] dG,
             floating[:, :, ::1] dx_tm, floating[:, ::1] dWx, floating[:, ::1] dWh, floating[::1] db,
             floating[::1] panels, Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal.  ``dh`` enters holding dL/dh_T and leaves holding dL/dh_0.  ``dhs (N, T, H)`` is
    batch-major (the user's array, read at valid steps only).  ``WhT`` is ``Wh.T``,
    C-contiguous, for the BLAS path; with non-empty ``panels`` (as in ``forward``) the steps read ``Wh``'s
    rows packed transposed instead and ``WhT`` is not read."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Tiling s = make_tiling(N, T, H, 1, block_n, chunk_h)
    cdef Py_ssize_t t, tile, blk
    cdef int nt = team(tile_count(s), num_threads) if parallel_steps else 1
    cdef Py_ssize_t w, w0, w1
    cdef long mark = interrupt_mark()
    cdef const floating* WhT_p = &WhT[0, 0]
    cdef floating* panels_p = &panels[0] if panels.shape[0] > 0 else NULL
    cdef const floating* act_p = &act[0, 0, 0]
    cdef const floating* dhs_p = &dhs[0, 0, 0]
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* dG_p = &dG[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    cdef SliverCache slivers
    with nogil:
        if panels_p != NULL:
            pack_step_panels(False, &Wh[0, 0], panels_p, H, 1, chunk_h, num_threads)
        # Windows of steps, latest first; Ctrl-C is looked at between windows.
        for w in range((T + STEPS_PER_CHECK - 1) // STEPS_PER_CHECK):
            if interrupted_since(mark):
                break
            w1 = T - w * STEPS_PER_CHECK
            w0 = max(0, w1 - STEPS_PER_CHECK)
            if nt > 1 and owns_rows(s, nt):
                for blk in prange(s.n_blocks, num_threads=nt, schedule="static"):
                    _backward_steps(w0, w1, blk * s.n_chunks, (blk + 1) * s.n_chunks, s, relu, WhT_p, panels_p, act_p,
                                    dhs_p, dh_p, dG_p, len_p)
            elif nt > 1:
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(panels_p != NULL, s.block_n, H)  # each thread's own
                    for t in range(w1 - 1, w0 - 1, -1):
                        for tile in prange(tile_count(s), schedule="static"):
                            _backward_gates_tile(t, tile, s, relu, act_p, dhs_p, dh_p, dG_p, len_p)
                        for tile in prange(tile_count(s), schedule="static"):
                            _backward_recurrent_tile(t, tile, s, WhT_p, panels_p, dG_p, dh_p, &slivers)
                    free(slivers.data)
            else:
                _backward_steps(w0, w1, 0, tile_count(s), s, relu, WhT_p, panels_p, act_p, dhs_p, dh_p, dG_p,
                                len_p)
        all_steps_gemm(False, True, T * N, D, H, dG_p, H, &Wx[0, 0], H, &dx_tm[0, 0, 0], D, NULL, num_threads, mark)
        weight_gradients(D, H, H, T * N, &x_tm[0, 0, 0], &hst[0, 0, 0], dG_p, &dWx[0, 0], &dWh[0, 0],
                         num_threads, mark)
        column_sums(T * N, H, dG_p, H, &db[0], num_threads)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt


# --- Streaming: one step on weights packed once (rnnfast.stepper.RNNStepper) ---

cdef void _packed_step_chunk(Py_ssize_t k, Py_ssize_t N, Py_ssize_t K, Py_ssize_t D, Py_ssize_t H,
                             Py_ssize_t chunk, bint relu, const floating* xh, const floating* panels,
                             const floating* b_packed, floating* xh_next, floating* gates) noexcept nogil:
    # Chunk k owns hidden units j0:j0+w: one GEMV/GEMM over its (K, chunk) panel of [Wx; Wh].
    cdef Py_ssize_t j0 = k * chunk, w = min(chunk, H - j0), n, j
    cdef floating* g = gates + k * N * chunk
    cdef floating one = 1
    for n in range(N):
        copy(g + n * chunk, b_packed + k * chunk, chunk)
    row_product(N, chunk, K, xh, panels + k * K * chunk, g)
    for n in range(N):
        if relu:
            _relu_inplace(g + n * chunk, w)
        else:
            tanh_inplace(g + n * chunk, w)
        copy(xh_next + n * K + D + j0, g + n * chunk, w)


def packed_step(const floating[:, ::1] xh, const floating[:, :, ::1] panels, const floating[:, ::1] b_packed,
                floating[:, ::1] xh_next, floating[:, :, ::1] gates, Py_ssize_t H, Py_ssize_t chunk, bint relu,
                int num_threads):
    """Internal.  ``xh (N, D+H)`` holds ``[x_t | h_{t-1}]``; ``panels (n_chunks, D+H, chunk)``;
    ``h_t`` goes to ``xh_next[:, D:]``; ``gates (n_chunks, N, chunk)`` is scratch."""
    cdef Py_ssize_t N = xh.shape[0], K = xh.shape[1], n_chunks = panels.shape[0], D = K - H, k
    if N == 0:
        return
    cdef const floating* xh_p = &xh[0, 0]
    cdef const floating* panels_p = &panels[0, 0, 0]
    cdef const floating* b_p = &b_packed[0, 0]
    cdef floating* next_p = &xh_next[0, 0]
    cdef floating* gates_p = &gates[0, 0, 0]
    with nogil:
        if num_threads > 1 and n_chunks > 1:
            for k in prange(n_chunks, num_threads=team(n_chunks, num_threads), schedule="static"):
                _packed_step_chunk(k, N, K, D, H, chunk, relu, xh_p, panels_p, b_p, next_p, gates_p)
        else:
            for k in range(n_chunks):
                _packed_step_chunk(k, N, K, D, H, chunk, relu, xh_p, panels_p, b_p, next_p, gates_p)
