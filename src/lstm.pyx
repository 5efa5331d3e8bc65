# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""LSTM kernels: whole-sequence forward and backward through time.

NumPy twin: ``rnnfast/reference/lstm.py`` (the specification).
Gate blocks of the fused weights, in order: i, f, g, o (PyTorch's order).

Layout inside the kernels is time-major ``(T, N, ...)`` so that at step t the
rows of a batch block are contiguous for BLAS.  ``hst``/``cst`` hold T+1
states: index t is the state entering step t (index 0 is h0/c0).  The user's
``dhs`` is read in place, batch-major (``batch_row``): only a row at a time.

Parallel scheme: at each step the (N, H) state is cut into tiles of
``block_n`` batch rows x ``chunk_h`` hidden units (sizes chosen in Python from
the shapes only).  A tile computes the recurrent product for its own gate
columns and then its own elementwise cell update.  When the row blocks share
out evenly, each thread takes whole row blocks for a window of steps and never
waits (rows are independent); otherwise the threads share each step's tiles,
one barrier per step (two in backward).  Every GEMM has a thread-independent
shape, so the schedule never changes the bits.  The forward tiles also write
the user's batch-major ``hs`` (``emit_output_tile``).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

from kernel_common cimport (check_interrupt, column_sums, copy, emit_output_tile, fill, gemm,
                            interrupt_mark, interrupted_since, make_tiling, owns_rows, row_product, team,
                            rnnfast_install_sigint, sigmoid_inplace, tanh_, tanh_inplace, tile_bounds,
                            tile_count, all_steps_gemm, weight_gradients, weight_block, chunk_step_weights,
                            batch_row,
                            STEPS_PER_CHECK, Tiling, RNNFAST_PACKED_GEMM, PANEL, pack_step_panels, SliverCache,
                            new_sliver_cache, packed_gemm_tile_s)
from kernel_common cimport STRIP_BYTES
from libc.stdlib cimport free

# 1 where this build has the packed-weight step micro-kernel (float32, AVX2 + FMA):
# ``rnnfast.lstm`` then hands the kernels a panel workspace (``packed_gemm.h``).
PACKED_STEPS = RNNFAST_PACKED_GEMM
# Width in bytes of the column strips of a stepper's panels (kernel_common.row_product).
STEP_STRIP_BYTES = STRIP_BYTES


rnnfast_install_sigint()  # count Ctrl-C for the kernels (src/interrupt.h)


cdef void _forward_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* Wh, const floating* panels,
                        floating* gates, floating* hst, floating* cst,
                        const Py_ssize_t* lengths, SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 4 * H
    cdef floating one = 1
    cdef floating* g_t = gates + t * N * G
    cdef const floating* h_prev = hst + t * N * H
    cdef floating* h_next = hst + (t + 1) * N * H
    cdef const floating* c_prev = cst + t * N * H
    cdef floating* c_next = cst + (t + 1) * N * H
    cdef floating* a
    cdef Py_ssize_t n, q

    # gates[rows, gate columns of units j0:j1] += h_prev[rows] @ Wh[:, those columns]
    if panels != NULL:  # float32 only: the chunk's four gate blocks, packed once per call
        if floating is float:  # h_prev's rows copied into slivers once per thread and step
            packed_gemm_tile_s(slivers, t * s.n_blocks + tile // s.n_chunks, n1 - n0, H, h_prev + n0 * H, H,
                               panels + 4 * j0 * H, H * PANEL, 4 * (j1 - j0) // PANEL, (j1 - j0) // PANEL, H,
                               g_t + n0 * G + j0, G)
    elif j0 == 0 and j1 == H:  # one chunk: the weights as given
        gemm(False, False, n1 - n0, G, H, one, h_prev + n0 * H, H, Wh, G, one, g_t + n0 * G, G)
    else:  # Wh: as given, or its chunk-major copy (kernel_common.chunk_step_weights)
        for q in range(4):
            gemm(False, False, n1 - n0, j1 - j0, H, one, h_prev + n0 * H, H,
                 Wh + weight_block(s, j0, q), s.w_ld, one, g_t + n0 * G + q * H + j0, G)

    for n in range(n0, n1):
        if t < lengths[n]:
            a = g_t + n * G + j0
            sigmoid_inplace(a, j1 - j0)          # i
            sigmoid_inplace(a + H, j1 - j0)      # f
            tanh_inplace(a + 2 * H, j1 - j0)     # g
            sigmoid_inplace(a + 3 * H, j1 - j0)  # o
            _cell_update(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H + j0,
                         c_next + n * H + j0, h_next + n * H + j0, j1 - j0)
        else:  # past this sequence's end: the state is carried unchanged
            copy(c_next + n * H + j0, c_prev + n * H + j0, j1 - j0)
            copy(h_next + n * H + j0, h_prev + n * H + j0, j1 - j0)


cdef void _cell_update(const floating* i, const floating* f, const floating* g, const floating* o,
                       const floating* c_prev, floating* c_next, floating* h_next,
                       Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating c_
    for j in range(n):
        c_ = f[j] * c_prev[j] + i[j] * g[j]
        c_next[j] = c_
        h_next[j] = o[j] * tanh_(c_)


cdef void _backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s,
                               const floating* act, const floating* cst, const floating* dhs,
                               floating* dh, floating* dc, floating* dG,
                               const Py_ssize_t* lengths) noexcept nogil:
    """Gate pre-activation gradients of step t for one tile; dc flows to c_{t-1}.
    ``dh`` enters as dL/dh_t from later steps and leaves zeroed for valid rows,
    ready for the recurrent product to be accumulated into it."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 4 * H
    cdef const floating* a_t = act + t * N * G
    cdef floating* d_t = dG + t * N * G
    cdef const floating* c_prev = cst + t * N * H
    cdef const floating* c_next = cst + (t + 1) * N * H
    cdef const floating* a
    cdef floating* d
    cdef Py_ssize_t n, k
    cdef floating zero = 0
    for n in range(n0, n1):
        d = d_t + n * G + j0
        if t < lengths[n]:
            a = a_t + n * G + j0
            _cell_backward(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H + j0, c_next + n * H + j0,
                           dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0, dc + n * H + j0,
                           d, d + H, d + 2 * H, d + 3 * H, j1 - j0)
        else:  # padded step: no gradient into the gates; dh, dc pass through
            for k in range(4):
                fill(d + k * H, j1 - j0, zero)


cdef void _cell_backward(const floating* i, const floating* f, const floating* g, const floating* o,
                                const floating* c_prev, const floating* c_next, const floating* dhs,
                                floating* dh, floating* dc,
                                floating* di, floating* df, floating* dg, floating* do_,
                                Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating one = 1, tc, dh_, dc_
    for j in range(n):
        tc = tanh_(c_next[j])
        dh_ = dh[j] + dhs[j]
        dc_ = dc[j] + dh_ * o[j] * (one - tc * tc)
        di[j] = dc_ * g[j] * i[j] * (one - i[j])
        df[j] = dc_ * c_prev[j] * f[j] * (one - f[j])
        dg[j] = dc_ * i[j] * (one - g[j] * g[j])
        do_[j] = dh_ * tc * o[j] * (one - o[j])
        dc[j] = dc_ * f[j]
        dh[j] = 0


cdef void _backward_recurrent_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* WhT,
                                   const floating* panels, const floating* dG, floating* dh,
                                   SliverCache* slivers) noexcept nogil:
    """dh[rows, j0:j1] += dG_t[rows, :] @ Wh^T[:, j0:j1]   (padded rows have dG = 0).

    One GEMM per gate block (K = H each, added in gate order): the same
    shapes as the forward tiles, and untransposed operands -- OpenBLAS ran
    the transposed form at a third of the speed on these sizes."""
    cdef Py_ssize_t N = s.N, H = s.H, n0, n1, j0, j1
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef Py_ssize_t G = 4 * H, q
    cdef floating one = 1
    if panels != NULL:  # float32 only: Wh's rows j0:j1, transposed and packed once per call, K = 4H
        if floating is float:  # the row block's dG_t is copied into slivers once per thread, for all its tiles
            packed_gemm_tile_s(slivers, t * s.n_blocks + tile // s.n_chunks, n1 - n0, G, dG + t * N * G + n0 * G,
                               G, panels + j0 * G, G * PANEL, (j1 - j0) // PANEL, (j1 - j0) // PANEL, 0,
                               dh + n0 * H + j0, H)
        return
    if j0 == 0 and j1 == H:  # the tile spans all units: one GEMM over all gates
        gemm(False, False, n1 - n0, H, G, one, dG + t * N * G + n0 * G, G, WhT, H, one, dh + n0 * H, H)
        return
    for q in range(4):
        gemm(False, False, n1 - n0, j1 - j0, H, one, dG + t * N * G + n0 * G + q * H, G,
             WhT + q * H * H + j0, H, one, dh + n0 * H + j0, H)


cdef void _forward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t tile0, Py_ssize_t tile1, Tiling s,
                         const floating* Wh, const floating* panels, floating* gates, floating* hst,
                         floating* cst, floating* hs, const Py_ssize_t* lengths) noexcept nogil:
    """Steps w0..w1-1 over tiles tile0..tile1-1, by one thread: all tiles, or whole row blocks."""
    cdef Py_ssize_t t, tile
    cdef SliverCache slivers = new_sliver_cache(panels != NULL, s.block_n, s.H)
    for t in range(w0, w1):
        for tile in range(tile0, tile1):
            _forward_tile(t, tile, s, Wh, panels, gates, hst, cst, lengths, &slivers)
            emit_output_tile(t, tile, s, hst, hs, lengths)
    free(slivers.data)


cdef void _backward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t tile0, Py_ssize_t tile1, Tiling s,
                          const floating* WhT, const floating* panels, const floating* act, const floating* cst,
                          const floating* dhs, floating* dh, floating* dc, floating* dG,
                          const Py_ssize_t* lengths) noexcept nogil:
    """Steps w1-1 down to w0 over tiles tile0..tile1-1, by one thread (see ``_forward_steps``)."""
    cdef Py_ssize_t t, tile
    cdef SliverCache slivers = new_sliver_cache(panels != NULL, s.block_n, 4 * s.H)
    for t in range(w1 - 1, w0 - 1, -1):
        for tile in range(tile0, tile1):
            _backward_gates_tile(t, tile, s, act, cst, dhs, dh, dc, dG, lengths)
        for tile in range(tile0, tile1):
            _backward_recurrent_tile(t, tile, s, WhT, panels, dG, dh, &slivers)
    free(slivers.data)


def forward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
            const floating[::1] b, floating[:, :, ::1] hst, floating[:, :, ::1] cst,
            floating[:, :, ::1] gates, floating[:, :, ::1] hs, const Py_ssize_t[::1] lengths,
            floating[::1] panels, floating[::1] chunked, Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads,
            bint parallel_steps):
    """Internal: arrays are validated and allocated by ``rnnfast.lstm``; ``hs (N, T, H)`` is the
    batch-major output.  ``panels``: 4*H*H scratch floats for the packed step weights (float32 with
    ``PACKED_STEPS``, H and chunk_h multiples of 16), or empty for the BLAS path; ``chunked``: scratch
    for the BLAS path's chunk-major copy of Wh, or empty to read Wh as given
    (``rnnfast._plumbing.step_panels``, ``chunked_weights``)."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Py_ssize_t G = 4 * H
    cdef Tiling s = make_tiling(N, T, H, 4, block_n, chunk_h)
    cdef Py_ssize_t t, tile, blk
    cdef int nt = team(tile_count(s), num_threads) if parallel_steps else 1
    cdef Py_ssize_t w, w0, w1
    cdef long mark = interrupt_mark()
    cdef const floating* Wh_p = &Wh[0, 0]
    cdef floating* chunked_p = &chunked[0] if chunked.shape[0] > 0 else NULL
    cdef floating* panels_p = &panels[0] if panels.shape[0] > 0 else NULL
    cdef floating* gates_p = &gates[0, 0, 0]
    cdef floating* hst_p = &hst[0, 0, 0]
    cdef floating* cst_p = &cst[0, 0, 0]
    cdef floating* hs_p = &hs[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    cdef SliverCache slivers
    with nogil:
        # Input projection for all steps at once: gates = x @ Wx + b.
        all_steps_gemm(False, False, T * N, G, D, &x_tm[0, 0, 0], D, &Wx[0, 0], G, gates_p, G, &b[0], num_threads,
                       mark)
        if panels_p != NULL:
            pack_step_panels(True, Wh_p, panels_p, H, 4, chunk_h, num_threads)
        elif chunked_p != NULL:
            chunk_step_weights(Wh_p, chunked_p, &s, 4, num_threads)
            Wh_p = chunked_p
        # Windows of steps; Ctrl-C is looked at between windows.
        w1 = 0
        while w1 < T and not interrupted_since(mark):
            w0 = w1
            w1 = min(T, w0 + STEPS_PER_CHECK)
            if nt > 1 and owns_rows(s, nt):
                # Each thread owns whole row blocks: rows never read each other, so no barriers.
                for blk in prange(s.n_blocks, num_threads=nt, schedule="static"):
                    _forward_steps(w0, w1, blk * s.n_chunks, (blk + 1) * s.n_chunks, s, Wh_p, panels_p,
                                   gates_p, hst_p, cst_p, hs_p, len_p)
            elif nt > 1:
                # Tiles shared per step: one parallel region per window, a barrier per step.
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(panels_p != NULL, s.block_n, H)  # each thread's own
                    for t in range(w0, w1):
                        for tile in prange(tile_count(s), schedule="static"):
                            _forward_tile(t, tile, s, Wh_p, panels_p, gates_p, hst_p, cst_p, len_p, &slivers)
                            emit_output_tile(t, tile, s, hst_p, hs_p, len_p)
                    free(slivers.data)
            else:
                _forward_steps(w0, w1, 0, tile_count(s), s, Wh_p, panels_p, gates_p, hst_p, cst_p, hs_p, len_p)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt


def backward(const floating[:, :, ::1] x_tm, const floating[:, ::1] Wx, const floating[:, ::1] Wh,
             const floating[:, ::1] WhT, const floating[:, :, ::1] hst, const floating[:, :, ::1] cst, const floating[:, :, ::1] act,
             const Py_ssize_t[::1] lengths, const floating[:, :, ::1] dhs,
             floating[:, ::1] dh, floating[:, ::1] dc, floating[:, :, ::1] dG,
             floating[:, :, ::1] dx_tm, floating[:, ::1] dWx, floating[:, ::1] dWh, floating[::1] db,
             floating[::1] panels, Py_ssize_t block_n, Py_ssize_t chunk_h, int num_threads, bint parallel_steps):
    """Internal.  ``dh``/``dc`` enter holding dL/dh_T, dL/dc_T and leave holding dL/dh_0, dL/dc_0.
    ``dhs (N, T, H)`` is batch-major (the user's array, read at valid steps only).
    ``WhT`` is ``Wh.T`` as a C-contiguous (4H, H) array for the BLAS path; with non-empty ``panels``
    (see ``forward``) the steps use those instead and ``WhT`` is not read."""
    cdef Py_ssize_t T = x_tm.shape[0], N = x_tm.shape[1], D = x_tm.shape[2], H = Wh.shape[0]
    cdef Py_ssize_t G = 4 * H
    cdef Tiling s = make_tiling(N, T, H, 4, block_n, chunk_h)
    cdef Py_ssize_t t, tile, blk
    cdef int nt = team(tile_count(s), num_threads) if parallel_steps else 1
    cdef Py_ssize_t w, w0, w1
    cdef long mark = interrupt_mark()
    cdef const floating* WhT_p = &WhT[0, 0]
    cdef floating* panels_p = &panels[0] if panels.shape[0] > 0 else NULL
    cdef const floating* act_p = &act[0, 0, 0]
    cdef const floating* cst_p = &cst[0, 0, 0]
    cdef const floating* dhs_p = &dhs[0, 0, 0]
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* dc_p = &dc[0, 0]
    cdef floating* dG_p = &dG[0, 0, 0]
    cdef const Py_ssize_t* len_p = &lengths[0]
    cdef SliverCache slivers
    with nogil:
        if panels_p != NULL:
            pack_step_panels(False, &Wh[0, 0], panels_p, H, 4, chunk_h, num_threads)
        # Windows of steps, latest first; Ctrl-C is looked at between windows.
        for w in range((T + STEPS_PER_CHECK - 1) // STEPS_PER_CHECK):
            if interrupted_since(mark):
                break
            w1 = T - w * STEPS_PER_CHECK
            w0 = max(0, w1 - STEPS_PER_CHECK)
            if nt > 1 and owns_rows(s, nt):
                for blk in prange(s.n_blocks, num_threads=nt, schedule="static"):
                    _backward_steps(w0, w1, blk * s.n_chunks, (blk + 1) * s.n_chunks, s, WhT_p, panels_p, act_p,
                                    cst_p, dhs_p, dh_p, dc_p, dG_p, len_p)
            elif nt > 1:
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(panels_p != NULL, s.block_n, G)  # each thread's own
                    for t in range(w1 - 1, w0 - 1, -1):
                        for tile in prange(tile_count(s), schedule="static"):
                            _backward_gates_tile(t, tile, s, act_p, cst_p, dhs_p, dh_p, dc_p, dG_p, len_p)
                        for tile in prange(tile_count(s), schedule="static"):
                            _backward_recurrent_tile(t, tile, s, WhT_p, panels_p, dG_p, dh_p, &slivers)
                    free(slivers.data)
            else:
                _backward_steps(w0, w1, 0, tile_count(s), s, WhT_p, panels_p, act_p, cst_p, dhs_p, dh_p, dc_p,
                                dG_p, len_p)
        # All-step products after the loop (``all_steps_gemm``: micro-kernel or BLAS tiles).
        all_steps_gemm(False, True, T * N, D, G, dG_p, G, &Wx[0, 0], G, &dx_tm[0, 0, 0], D, NULL, num_threads, mark)
        weight_gradients(D, H, G, T * N, &x_tm[0, 0, 0], &hst[0, 0, 0], dG_p, &dWx[0, 0], &dWh[0, 0],
                         num_threads, mark)
        column_sums(T * N, G, dG_p, G, &db[0], num_threads)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt


# --- Streaming: one step on weights packed once (rnnfast.stepper.LSTMStepper) ---

cdef void _packed_step_chunk(Py_ssize_t k, Py_ssize_t N, Py_ssize_t K, Py_ssize_t D, Py_ssize_t H,
                             Py_ssize_t chunk, const floating* xh, const floating* panels,
                             const floating* b_packed, floating* c, floating* xh_next,
                             floating* gates) noexcept nogil:
    # Chunk k owns hidden units j0:j0+w of every row: its four gate blocks sit
    # side by side in one (K, 4*chunk) panel, so one GEMV/GEMM gives all its
    # pre-activations and no other chunk's results are needed (no barrier).
    cdef Py_ssize_t C4 = 4 * chunk, j0 = k * chunk, w = min(chunk, H - j0), n
    cdef const floating* panel = panels + k * K * C4
    cdef floating* g = gates + k * N * C4
    cdef floating* a
    cdef floating one = 1
    for n in range(N):
        copy(g + n * C4, b_packed + k * C4, C4)
    row_product(N, C4, K, xh, panel, g)
    for n in range(N):
        a = g + n * C4
        sigmoid_inplace(a, w)              # i
        sigmoid_inplace(a + chunk, w)      # f
        tanh_inplace(a + 2 * chunk, w)     # g
        sigmoid_inplace(a + 3 * chunk, w)  # o
        # c is updated in place (each unit belongs to one chunk); h goes to the
        # other [x | h] buffer, which no chunk reads during this step.
        _cell_update(a, a + chunk, a + 2 * chunk, a + 3 * chunk, c + n * H + j0, c + n * H + j0,
                     xh_next + n * K + D + j0, w)


def packed_step(const floating[:, ::1] xh, const floating[:, :, ::1] panels, const floating[:, ::1] b_packed,
                floating[:, ::1] c, floating[:, ::1] xh_next, floating[:, :, ::1] gates,
                Py_ssize_t chunk, int num_threads):
    """Internal.  ``xh (N, D+H)`` holds ``[x_t | h_{t-1}]``; ``panels (n_chunks, D+H, 4*chunk)``
    and ``b_packed (n_chunks, 4*chunk)`` the packed weights; ``c (N, H)`` is updated in place and
    ``h_t`` is written into ``xh_next[:, D:]``.  ``gates (n_chunks, N, 4*chunk)`` is scratch."""
    cdef Py_ssize_t N = xh.shape[0], K = xh.shape[1], H = c.shape[1], n_chunks = panels.shape[0]
    cdef Py_ssize_t D = K - H, k
    if N == 0:
        return
    cdef const floating* xh_p = &xh[0, 0]
    cdef const floating* panels_p = &panels[0, 0, 0]
    cdef const floating* b_p = &b_packed[0, 0]
    cdef floating* c_p = &c[0, 0]
    cdef floating* next_p = &xh_next[0, 0]
    cdef floating* gates_p = &gates[0, 0, 0]
    with nogil:
        if num_threads > 1 and n_chunks > 1:
            for k in prange(n_chunks, num_threads=team(n_chunks, num_threads), schedule="static"):
                _packed_step_chunk(k, N, K, D, H, chunk, xh_p, panels_p, b_p, c_p, next_p, gates_p)
        else:
            for k in range(n_chunks):
                _packed_step_chunk(k, N, K, D, H, chunk, xh_p, panels_p, b_p, c_p, next_p, gates_p)
