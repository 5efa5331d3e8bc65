# cython: language_level=3
"""Products over all time steps at once (input projection, ``dx``, weight gradients) and column sums:
BLAS tiles of thread-independent shapes, or the micro-kernel where it is built and the shapes are large."""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy

from blas cimport gemm
from interrupt cimport interrupted_since, K_SLICE
from microkernel cimport (RNNFAST_PACKED_GEMM, PANEL, PANEL_D, SLIVER, KBLOCK, GROUP_ROWS, GROUP_ROWS_D, copy_slivers_s,
                          copy_slivers_d, copy_sliver_rows_s, copy_sliver_rows_d, pack_panels_s, pack_panels_d,
                          pack_panel_rows_s, pack_panel_rows_d, pack_panels_sums_s, row_sums, slivers_times_panels_s,
                          slivers_times_panels_d, edge_panel_s, edge_panel_d)
from thread_scratch cimport PRODUCT_PACKING, scratch_done, thread_scratch
from threads cimport team

cdef extern from "part_steal.h" nogil:
    # The parts of a product that threads take over from each other (``_take_over``).
    ctypedef struct part_state "rnnfast_part_state":
        Py_ssize_t i0, next, end, p0, p1, k0
        int active, started
    part_state* part_states_new "rnnfast_part_states_new"(int n)
    void part_states_free "rnnfast_part_states_free"(part_state* s, int n)
    void part_lock "rnnfast_part_lock_set"(part_state* s)
    void part_unlock "rnnfast_part_lock_unset"(part_state* s)
    void spin_pause "rnnfast_spin_pause"()
    void start_late "rnnfast_start_late"(int tid, part_state* s, int n)  # tests: ``take_over_probe``
    void count_taken "rnnfast_count_taken"(Py_ssize_t rows)
    long rnnfast_take_over_probe(int late_thread, double seconds)


cdef inline long take_over_probe(int late_thread, double seconds) except -1:
    """The rows of this module's all-step products that a thread took over from another (``_take_over``) since the
    last call, which restarts the count; from now on thread ``late_thread`` of each product's team (-1: none)
    starts late, so that the others take its rows over: once they have, or have finished, or after ``seconds``.
    For tests."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0; got {seconds}")
    return rnnfast_take_over_probe(late_thread, seconds)


# Output tiles of the big (all-steps) GEMMs.  Chosen from the GEMM's shape,
# never from the thread count, so every BLAS call has the same shape for any
# number of threads and the results are bitwise identical.  Larger tiles run
# closer to BLAS peak (less re-packing: 256 -> ~75 GF/s, 512 -> ~90 GF/s per
# core), but a matrix needs several tiles to be shared among threads: take
# the largest tile that still gives MIN_TILES tiles.
cdef enum:
    TILE_SMALL = 128
    TILE_LARGE = 512
    MIN_TILES = 2


cdef inline Py_ssize_t output_tile(Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t size = TILE_LARGE
    while size > TILE_SMALL and ((m + size - 1) // size) * ((n + size - 1) // size) < MIN_TILES:
        size = size // 2
    return size


cdef struct TileGrid:
    # tiles_m x tiles_n output tiles of tm x tn (the last row/column of tiles may be smaller)
    Py_ssize_t tiles_m, tiles_n, tm, tn


cdef inline TileGrid output_grid(Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """How ``tiled_gemm`` cuts an (m, n) result: ``output_tile``-sized tiles, made equal, and an even
    number of them when there are several (3 tiles on 2 threads leave one thread idle a third of the
    time).  A function of (m, n) only, like everything that shapes a BLAS call."""
    cdef Py_ssize_t size = output_tile(m, n)
    cdef TileGrid g
    g.tiles_m = (m + size - 1) // size
    g.tiles_n = (n + size - 1) // size
    if g.tiles_m * g.tiles_n > 1 and (g.tiles_m * g.tiles_n) % 2 == 1:
        # one more tile where there are most already: the tiles shrink least
        if g.tiles_m >= g.tiles_n:
            g.tiles_m = g.tiles_m + 1
        else:
            g.tiles_n = g.tiles_n + 1
    # equal parts, so that no thread waits on one oversized tile (560 rows -> 280 + 280, not 512 + 48)
    g.tm = (m + g.tiles_m - 1) // g.tiles_m
    g.tn = (n + g.tiles_n - 1) // g.tiles_n
    g.tiles_m = (m + g.tm - 1) // g.tm
    g.tiles_n = (n + g.tn - 1) // g.tn
    return g



cdef inline void tiled_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const floating* a, Py_ssize_t lda,
                            const floating* b, Py_ssize_t ldb,
                            floating beta, floating* c, Py_ssize_t ldc,
                            const floating* bias, int num_threads, long mark) noexcept nogil:
    """``C = op(A) @ op(B) + beta * C`` (or ``+ bias`` per column when bias is
    not NULL), split into output tiles (``output_grid``) run in parallel.

    Each tile is a fixed sequence of single-threaded BLAS calls on shapes that depend
    only on (m, n, k): the bits do not depend on the thread count.  A long inner
    dimension (the weight gradients sum over all N*T rows) is cut into K_SLICE
    pieces accumulated in order, so that Ctrl-C (``mark``) is seen within ~0.1 s.
    """
    cdef TileGrid grid
    cdef Py_ssize_t tiles_m, tiles_n, tm, tn
    cdef Py_ssize_t tile, i0, j0, mm, nn, i, j, k0, kc
    cdef const floating* a_tile
    cdef const floating* b_tile
    cdef floating* c_tile
    cdef floating beta_tile
    cdef floating one = 1
    if m == 0 or n == 0:
        return
    grid = output_grid(m, n)
    tiles_m, tiles_n, tm, tn = grid.tiles_m, grid.tiles_n, grid.tm, grid.tn
    for tile in prange(tiles_m * tiles_n, nogil=True, schedule="static",
                       num_threads=team(tiles_m * tiles_n, num_threads)):
        if interrupted_since(mark):
            continue
        i0 = (tile // tiles_n) * tm
        j0 = (tile % tiles_n) * tn
        mm = min(tm, m - i0)
        nn = min(tn, n - j0)
        a_tile = a + (i0 if trans_a else i0 * lda)
        b_tile = b + (j0 * ldb if trans_b else j0)
        c_tile = c + i0 * ldc + j0
        beta_tile = beta
        if bias != NULL:
            for i in range(mm):
                for j in range(nn):
                    c_tile[i * ldc + j] = bias[j0 + j]
            beta_tile = one
        k0 = 0
        while k0 < k:
            kc = min(<Py_ssize_t>K_SLICE, k - k0)
            gemm(trans_a, trans_b, mm, nn, kc, one, a_tile + (k0 * lda if trans_a else k0), lda,
                 b_tile + (k0 if trans_b else k0 * ldb), ldb, beta_tile if k0 == 0 else one, c_tile, ldc)
            k0 = k0 + kc
            if interrupted_since(mark):
                break


# The packed all-step products (``packed_tiled_gemm``) copy GROUP_ROWS rows of op(A) into slivers just before the
# panels stream past them (``packed_gemm.h``: 22 slivers of a k-block, 135 KiB, stay in L2; float64: GROUP_ROWS_D,
# about the same bytes).  Where a side is shorter than PACKED_MIN_SIDE, OpenBLAS was as fast or faster: BLAS tiles
# there (measured by side with bench/all_step_paths.py; figures in bench/RESULTS.md).
cdef enum:
    PACKED_MIN_SIDE = 32
    # From this size on (float32, four L2s of 2 MiB) C is far: every k-block finds its rows gone from cache, and the
    # kernel asks for each sliver's rows of C a sliver ahead (``packed_gemm.h``, ``c_ahead``).  Below it C's rows
    # are still in L2 or L3 and the requests only made the N = 32 calls slower (bench/RESULTS.md, stop 52).
    FAR_C_BYTES = 8 << 20
    # A thread done with its part takes over at least this many slivers of rows of another's (``_take_over``): it
    # packs their panels again for each k-block, about what a few rows' products cost.
    TAKE_OVER_SLIVERS = 8


cdef inline bint packed_product(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, bint microkernel) noexcept nogil:
    """Whether an all-step product runs on the micro-kernel: where this build has it, ``microkernel`` allows it (the
    plan) and every side is at least PACKED_MIN_SIDE."""
    return microkernel and RNNFAST_PACKED_GEMM and min(m, n, k) >= PACKED_MIN_SIDE


cdef struct GemmPart:
    # One thread's share of C: rows i0:i1 (whole slivers but the last) and panels p0:p1.
    Py_ssize_t i0, i1, p0, p1


cdef inline GemmPart gemm_part(int tid, int nt, Py_ssize_t m, Py_ssize_t n, Py_ssize_t panel) noexcept nogil:
    """Cut C into a grid of nt parts, pr row parts x pc panel parts (panels ``panel`` columns wide), that copies
    least: each row part packs its panels of op(B) and each panel part its slivers of op(A), so op(B) is packed pr
    times and op(A) pc times.  Any cut gives the same bits (``packed_tiled_gemm``)."""
    cdef Py_ssize_t n_sliv = (m + SLIVER - 1) // SLIVER, npan = (n + panel - 1) // panel
    cdef Py_ssize_t pr = 1, pc = nt, d, cost, best = -1
    cdef GemmPart part
    for d in range(1, nt + 1):
        if nt % d == 0 and d <= n_sliv and nt // d <= npan:
            cost = (nt // d) * m + d * n
            if best < 0 or cost < best:
                best, pr, pc = cost, d, nt // d
    if best < 0:  # too few slivers and panels for nt parts: the caller runs fewer threads
        pr, pc = 1, 1
    if tid >= pr * pc:
        part.i0 = part.i1 = part.p0 = part.p1 = 0
        return part
    part.i0 = min(m, (tid // pc) * n_sliv // pr * SLIVER)
    part.i1 = min(m, ((tid // pc) + 1) * n_sliv // pr * SLIVER)
    part.p0 = (tid % pc) * npan // pc
    part.p1 = ((tid % pc) + 1) * npan // pc
    return part


cdef inline void _init_rows(floating* c, Py_ssize_t ldc, Py_ssize_t rows, Py_ssize_t j0, Py_ssize_t j1,
                            const floating* bias) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(j0, j1):
            c[i * ldc + j] = bias[j] if bias != NULL else 0


cdef inline Py_ssize_t part_items(GemmPart q, Py_ssize_t group_rows, Py_ssize_t panel) noexcept nogil:
    """Packing room for one part, in items of its dtype: a group's slivers and the part's panels, one k-block deep,
    and a row of zeros as wide as the panels (the first k-block's start where there is no bias)."""
    return (group_rows + (q.p1 - q.p0) * panel) * KBLOCK + (q.p1 - q.p0) * panel


cdef struct RowRuns:
    # The rows of a weight gradient's sum (its k side: rows of the time-major arrays) that can be non-zero, as runs
    # in ascending order: run i is rows start[i] .. start[i] + count[i] - 1.  The rows between runs are zero in op(B)
    # (dG): a ragged batch's ended rows (``Tiling``'s staircase: start = offsets, count = active).
    const Py_ssize_t* start
    const Py_ssize_t* count
    Py_ssize_t n


cdef struct Stacked:
    # op(A) and C as two blocks of rows stacked: rows below ``split`` are op(a)'s and c's, rows from
    # ``split`` on are op(a2)'s and c2's (row r is their row r - split).  One product then gives
    # both weight gradients, x^T @ dG and h^T @ dG, packing dG once.  Floats or doubles, as the product.
    const void* a
    const void* a2
    void* c
    void* c2
    Py_ssize_t lda, lda2, ldc, ldc2, split
    # NULL, or (op(A) = A^T, op(B) = B only) the k rows to pack: each k-block packs only its rows within the runs,
    # and sums them in the same order.  The rows left out are zero in op(B), and a zero product added to a sum
    # leaves its bits as they were (a sum that starts at +0 is never -0), so C's bits are those of the product over
    # every row, with the k-blocks where they were.
    const RowRuns* runs


cdef inline Py_ssize_t _rows_of(Stacked* g, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t k0, bint trans_a,
                                const floating** a, Py_ssize_t* lda, floating** c, Py_ssize_t* ldc) noexcept nogil:
    """Where op(A)'s row r0 (at depth k0) and C's row r0 are, and the end of their block (<= r1)."""
    if r0 < g.split:
        a[0] = <const floating*>g.a + (k0 * g.lda + r0 if trans_a else r0 * g.lda + k0)
        lda[0], c[0], ldc[0] = g.lda, <floating*>g.c + r0 * g.ldc, g.ldc
        return min(r1, g.split)
    a[0] = <const floating*>g.a2 + (k0 * g.lda2 + r0 - g.split if trans_a else (r0 - g.split) * g.lda2 + k0)
    lda[0], c[0], ldc[0] = g.lda2, <floating*>g.c2 + (r0 - g.split) * g.ldc2, g.ldc2
    return r1


cdef inline Py_ssize_t _first_run(const RowRuns* runs, Py_ssize_t k0) noexcept nogil:
    """The first run that ends after row k0 (runs ascending, so their ends are too)."""
    cdef Py_ssize_t lo = 0, hi = runs.n, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if runs.start[mid] + runs.count[mid] > k0:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline Py_ssize_t _rows_in_runs(const RowRuns* runs, Py_ssize_t k0, Py_ssize_t k1) noexcept nogil:
    """How many rows k0 .. k1-1 are within the runs: the depth a k-block packs."""
    cdef Py_ssize_t i = _first_run(runs, k0), rows = 0
    while i < runs.n and runs.start[i] < k1:
        rows = rows + max(0, min(k1, runs.start[i] + runs.count[i]) - max(k0, runs.start[i]))
        i = i + 1
    return rows


cdef inline void _pack_run_panels(const RowRuns* runs, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t depth, Py_ssize_t w,
                                  const floating* b, Py_ssize_t ldb, floating* panels, row_sums* sums) noexcept nogil:
    """The panels of op(B) = B's rows k0 .. k1-1 within the runs, ``depth`` of them, in order (``b``: B's row k0;
    ``sums``, float32, NULL or B's row k0's: those rows summed as they are packed)."""
    cdef Py_ssize_t i = _first_run(runs, k0), lo, hi, at = 0
    cdef row_sums piece
    while i < runs.n and runs.start[i] < k1:
        lo, hi = max(k0, runs.start[i]), min(k1, runs.start[i] + runs.count[i])
        if hi > lo:
            if floating is float:
                if sums != NULL:
                    piece = sums[0]
                    if piece.ids != NULL:
                        piece.ids = piece.ids + (lo - k0)
                else:
                    piece.columns, piece.ids, piece.rows, piece.ld = NULL, NULL, NULL, 0
                pack_panel_rows_s(w, hi - lo, depth, b + (lo - k0) * ldb, ldb, panels + at * PANEL, piece)
            else:
                pack_panel_rows_d(False, w, hi - lo, depth, b + (lo - k0) * ldb, ldb, panels + at * PANEL_D)
            at = at + hi - lo
        i = i + 1


cdef inline void _pack_run_slivers(Stacked* g, Py_ssize_t r0, Py_ssize_t mc, Py_ssize_t k0, Py_ssize_t k1,
                                   Py_ssize_t depth, floating* slivers) noexcept nogil:
    """The slivers of op(A) = A^T's rows r0 .. r0+mc-1 (one block of the stack) at A's rows k0 .. k1-1 within the
    runs, ``depth`` of them, in order."""
    cdef Py_ssize_t i = _first_run(g.runs, k0), lo, hi, at = 0, lda, ldc
    cdef const floating* a
    cdef floating* c
    while i < g.runs.n and g.runs.start[i] < k1:
        lo, hi = max(k0, g.runs.start[i]), min(k1, g.runs.start[i] + g.runs.count[i])
        if hi > lo:
            _rows_of(g, r0, r0 + mc, lo, True, &a, &lda, &c, &ldc)
            if floating is float:
                copy_sliver_rows_s(True, mc, hi - lo, depth, a, lda, slivers + at * SLIVER)
            else:
                copy_sliver_rows_d(True, mc, hi - lo, depth, a, lda, slivers + at * SLIVER)
            at = at + hi - lo
        i = i + 1


cdef inline Py_ssize_t kblock_depth(Py_ssize_t k) noexcept nogil:
    """The depth of a product's k-blocks: equal, at most KBLOCK (k = 280 gives 140 + 140, not 256 + a thin 24)."""
    return (k + ((k + KBLOCK - 1) // KBLOCK) - 1) // ((k + KBLOCK - 1) // KBLOCK) if k > 0 else 1


cdef inline void _packed_part(GemmPart q, Stacked* g, bint trans_a, bint trans_b, Py_ssize_t n, Py_ssize_t k,
                              const floating* b, Py_ssize_t ldb, const floating* bias, floating* slivers,
                              const row_sums* sums, bint c_far, long mark, part_state* st,
                              Py_ssize_t k_start) noexcept nogil:
    """One thread's part of ``packed_tiled_gemm``.  For each k-block: its columns of op(B) into
    panels, then group by group of its rows, the rows into slivers and the slivers times the panels
    (the first k-block stores the bias, or zero, plus its sums: ``packed_gemm.h``'s ``init``; C is never
    read before it is written).  ``slivers``: ``part_items`` of its dtype.  ``sums`` (float32, op(B) = B
    only): the parts of the first row part add their columns of B's rows as they pack them, k-block after
    k-block.  ``c_far``: C is at least FAR_C_BYTES (float32: its rows are asked for a sliver ahead; float64 ran no
    faster with it).  ``st`` (NULL: none): the part's shared state, under whose lock each group of rows is claimed
    (another thread may take the part's last rows over: ``_take_over``); the part starts at depth ``k_start``."""
    cdef Py_ssize_t panel = PANEL if floating is float else PANEL_D
    cdef Py_ssize_t npan = q.p1 - q.p0, j0 = q.p0 * panel, j1 = min(n, q.p1 * panel)
    cdef Py_ssize_t full = npan if j1 - j0 == npan * panel else npan - 1
    cdef Py_ssize_t group_rows = GROUP_ROWS if floating is float else GROUP_ROWS_D
    cdef floating* panels = slivers + group_rows * KBLOCK
    cdef floating* zeros = panels + npan * panel * KBLOCK
    cdef const floating* init = bias + j0 if bias != NULL else zeros
    cdef Py_ssize_t kb = kblock_depth(k)
    cdef Py_ssize_t k0, kc, depth, r0, mc = 0, lda, ldc, end
    cdef const floating* a
    cdef floating* c
    cdef row_sums part_sums
    if q.i1 <= q.i0 or npan == 0:
        return
    if floating is float and sums != NULL and q.i0 == 0 and not trans_b:  # these columns' sums, by this part alone
        part_sums = sums[0]
        if part_sums.columns != NULL:
            part_sums.columns = part_sums.columns + j0
        if part_sums.ids != NULL:
            part_sums.rows = part_sums.rows + j0
    else:
        sums = NULL
    if bias == NULL:
        _init_rows(zeros, 0, 1, 0, j1 - j0, <const floating*>NULL)
    r0 = q.i0
    while k == 0 and r0 < q.i1:  # no products: C is the bias (or zero)
        mc = _rows_of(g, r0, q.i1, 0, trans_a, &a, &lda, &c, &ldc) - r0
        _init_rows(c, ldc, mc, j0, j1, bias)
        r0 = r0 + mc
    k0 = k_start
    while k0 < k and not interrupted_since(mark):
        kc = min(kb, k - k0)
        depth = kc
        if g.runs != NULL:  # only the rows within the runs: the k-block's sums over fewer terms, the same bits
            depth = _rows_in_runs(g.runs, k0, k0 + kc)
            _pack_run_panels(g.runs, k0, k0 + kc, depth, j1 - j0, b + k0 * ldb + j0, ldb, panels,
                             &part_sums if sums != NULL else NULL)
            if floating is float and sums != NULL and part_sums.ids != NULL:
                part_sums.ids = part_sums.ids + kc
        elif floating is float:
            if sums != NULL:
                pack_panels_sums_s(j1 - j0, kc, b + k0 * ldb + j0, ldb, panels, part_sums)
                if part_sums.ids != NULL:
                    part_sums.ids = part_sums.ids + kc
            else:
                pack_panels_s(trans_b, j1 - j0, kc, b + (j0 * ldb + k0 if trans_b else k0 * ldb + j0), ldb, panels)
        else:
            pack_panels_d(trans_b, j1 - j0, kc, b + (j0 * ldb + k0 if trans_b else k0 * ldb + j0), ldb, panels)
        r0 = q.i0
        while True:  # groups of group_rows rows at most, within one block of the stack
            if st != NULL:  # claimed, so that a thread taking rows over takes only unclaimed ones
                part_lock(st)
                end = st.end
                if r0 < end:
                    mc = _rows_of(g, r0, min(end, r0 + group_rows), k0, trans_a, &a, &lda, &c, &ldc) - r0
                    st.next, st.started = r0 + mc, 1
                part_unlock(st)
            else:
                end = q.i1
                if r0 < end:
                    mc = _rows_of(g, r0, min(end, r0 + group_rows), k0, trans_a, &a, &lda, &c, &ldc) - r0
            if r0 >= end:
                break
            if depth == 0:  # no rows of this k-block are summed: C is left as it is, or set to its start
                if k0 == 0:
                    _init_rows(c, ldc, mc, j0, j1, bias)
            elif floating is float:
                if g.runs != NULL:
                    _pack_run_slivers(g, r0, mc, k0, k0 + kc, depth, slivers)
                else:
                    copy_slivers_s(trans_a, mc, kc, a, lda, slivers)
                if full > 0:
                    slivers_times_panels_s(mc, depth, 0, depth, slivers, panels, depth * panel, full, full, 0, c + j0,
                                           ldc, init if k0 == 0 else NULL, c_far)
                if full < npan:  # the last panel, narrower than a panel
                    edge_panel_s(mc, depth, slivers, panels + full * depth * panel, j1 - j0 - full * panel,
                                 c + j0 + full * panel, ldc, init + full * panel if k0 == 0 else NULL)
            else:
                if g.runs != NULL:
                    _pack_run_slivers(g, r0, mc, k0, k0 + kc, depth, slivers)
                else:
                    copy_slivers_d(trans_a, mc, kc, a, lda, slivers)
                if full > 0:
                    slivers_times_panels_d(mc, depth, 0, depth, slivers, panels, depth * panel, full, full, 0, c + j0,
                                           ldc, init if k0 == 0 else NULL)
                if full < npan:
                    edge_panel_d(mc, depth, slivers, panels + full * depth * panel, j1 - j0 - full * panel,
                                 c + j0 + full * panel, ldc, init + full * panel if k0 == 0 else NULL)
            r0 = r0 + mc
        k0 = k0 + kc
        if st != NULL:  # every row of the part is summed to k0: its rows may be taken over from here on
            part_lock(st)
            st.k0, st.next = k0, st.i0
            part_unlock(st)
    if st != NULL:
        part_lock(st)
        st.active = 0
        part_unlock(st)


cdef inline Py_ssize_t _work_left(part_state* st, Py_ssize_t k, Py_ssize_t kb) noexcept nogil:
    """The rows x k-blocks an active part has left to run, counting its current k-block's unclaimed rows (caller
    holds its lock); 0 when it has finished."""
    if not st.active:
        return 0
    return (st.end - st.next) + (st.end - st.i0) * ((k - st.k0 - 1) // kb)


cdef inline bint _take_over(part_state* states, int tid, int nt, Py_ssize_t k, Py_ssize_t min_rows, GemmPart* q,
                            Py_ssize_t* k_start, long mark) noexcept nogil:
    """Make thread ``tid``, done with its part, take over the far end of another part: rows x:end from its owner's
    current k-block on, x past every row the owner has claimed there, at least ``min_rows`` rows (fewer do not pay
    for packing their panels), x chosen so that both have about the same work left.  The parts are tried from the
    most work left down, so that one which cannot be split now (its current k-block all claimed) does not hide one
    that can.  Waits while none can be split but a started owner's next k-block would leave rows to take.  True
    with ``q`` and ``k_start`` set to the rows taken (the thread's own state holds them, so they may be taken over
    in turn); False when no part has rows worth taking."""
    cdef Py_ssize_t kb = kblock_depth(k), later, x, end, work, below, most
    cdef part_state* st
    cdef int v, victim, tried, last
    cdef bint wait
    while not interrupted_since(mark):
        wait = False
        below, last = -1, -1  # the last part tried, ``last``, had ``below`` work left (-1: none tried yet)
        for tried in range(nt - 1):
            victim, most = -1, 0
            for v in range(nt):  # the next in the order (most work left first; ties: the lowest v first)
                if v != tid:
                    st = &states[v]
                    part_lock(st)
                    work = _work_left(st, k, kb)
                    part_unlock(st)
                    if work > most and (below < 0 or work < below or work == below and v > last):
                        victim, most = v, work
            if victim < 0:
                break
            below, last = most, victim
            st = &states[victim]
            part_lock(st)
            if st.active:
                later = (k - st.k0 - 1) // kb  # whole k-blocks after the current one
                end = st.end
                # the owner keeps (x - next) rows of this k-block and x - i0 of each later one; the taker end - x of
                # each
                x = (end * (1 + later) + st.next + st.i0 * later + 2 * (1 + later) - 1) // (2 * (1 + later))
                x = max(x, max(st.next, st.i0 + 1))
                x = (x + SLIVER - 1) // SLIVER * SLIVER
                if end - x >= min_rows:
                    q.i0, q.i1, q.p0, q.p1, k_start[0] = x, end, st.p0, st.p1, st.k0
                    st.end = x
                    count_taken(end - x)
                    part_unlock(st)
                    st = &states[tid]
                    part_lock(st)
                    st.i0, st.next, st.end, st.p0, st.p1, st.k0, st.active = q.i0, q.i0, q.i1, q.p0, q.p1, k_start[0], 1
                    st.started = 0
                    part_unlock(st)
                    return True
                # this k-block is claimed up to its end: the next one may still have rows worth taking (an owner
                # that has not started may never start while this thread waits: a team run by one thread)
                wait = wait or (st.started and later > 0 and (end - st.i0) // 2 >= min_rows)
            part_unlock(st)
        if not wait:
            return False
        spin_pause()
    return False


cdef inline void _run_parts(int tid, int nt, Py_ssize_t m, Stacked* g, bint trans_a, bint trans_b, Py_ssize_t n,
                            Py_ssize_t k, const floating* b, Py_ssize_t ldb, const floating* bias, floating* slivers,
                            const row_sums* sums, bint c_far, long mark, part_state* states) noexcept nogil:
    """Thread ``tid``'s part of ``_packed_gemm``, then the rows it takes over from the others' (``states`` NULL:
    its part alone)."""
    cdef Py_ssize_t panel = PANEL if floating is float else PANEL_D
    cdef GemmPart q = gemm_part(tid, nt, m, n, panel)
    cdef Py_ssize_t k_start = 0
    start_late(tid, states, nt)
    while True:
        _packed_part(q, g, trans_a, trans_b, n, k, b, ldb, bias, slivers, sums, c_far, mark,
                     &states[tid] if states != NULL else NULL, k_start)
        if states == NULL or not _take_over(states, tid, nt, k, TAKE_OVER_SLIVERS * SLIVER, &q, &k_start, mark):
            return


cdef inline bint _packed_gemm(Stacked* g, bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                              const floating* b, Py_ssize_t ldb, const floating* bias, const row_sums* sums,
                              int num_threads, long mark) noexcept nogil:
    cdef Py_ssize_t panel = PANEL if floating is float else PANEL_D
    cdef Py_ssize_t most = ((m + SLIVER - 1) // SLIVER) * ((n + panel - 1) // panel)
    cdef int nt = <int>min(<Py_ssize_t>max(num_threads, 1), most)
    cdef Py_ssize_t room = 0
    cdef bint c_far = m * n * <Py_ssize_t>sizeof(floating) >= FAR_C_BYTES
    cdef int tid
    cdef floating* buf
    cdef part_state* states
    cdef GemmPart q
    if m == 0 or n == 0:
        return True
    for tid in range(nt):  # one block for every part, the calling thread's: workers' heaps give pages back
        room = max(room, part_items(gemm_part(tid, nt, m, n, panel), GROUP_ROWS if floating is float else GROUP_ROWS_D,
                                    panel))
    room = (room + panel - 1) // panel * panel  # each part's panels start on a cache line, as the block does
    buf = <floating*>thread_scratch(PRODUCT_PACKING, nt * room * sizeof(floating))
    if buf == NULL:
        return False
    if nt == 1:
        _packed_part(gemm_part(0, 1, m, n, panel), g, trans_a, trans_b, n, k, b, ldb, bias, buf, sums, c_far, mark,
                     NULL, 0)
    else:
        states = part_states_new(nt) if k > 0 else NULL  # NULL (no memory): each thread runs its own part alone
        if states != NULL:
            for tid in range(nt):
                q = gemm_part(tid, nt, m, n, panel)
                states[tid].i0, states[tid].next, states[tid].end = q.i0, q.i0, q.i1
                states[tid].p0, states[tid].p1, states[tid].k0 = q.p0, q.p1, 0
                states[tid].active, states[tid].started = q.i1 > q.i0 and q.p1 > q.p0, 0
        for tid in prange(nt, nogil=True, num_threads=nt, schedule="static"):
            _run_parts(tid, nt, m, g, trans_a, trans_b, n, k, b, ldb, bias, buf + tid * room, sums, c_far, mark,
                       states)
        part_states_free(states, nt)
    scratch_done(buf)
    return True


cdef inline bint _packed_gemm_runs(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                   const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                                   floating* c, Py_ssize_t ldc, const floating* bias, const row_sums* sums,
                                   const RowRuns* runs, int num_threads, long mark) noexcept nogil:
    """``packed_tiled_gemm`` over the k rows of ``runs`` alone (NULL: every row; kept only where op(A) = A^T and
    op(B) = B, whose k rows are rows of the arrays)."""
    cdef Stacked g
    g.a, g.lda, g.c, g.ldc, g.split = a, lda, c, ldc, m
    g.a2, g.lda2, g.c2, g.ldc2 = NULL, 0, NULL, 0
    g.runs = runs if trans_a and not trans_b else NULL
    return _packed_gemm(&g, trans_a, trans_b, m, n, k, b, ldb, bias, sums, num_threads, mark)


cdef inline bint packed_tiled_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                   const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                                   floating* c, Py_ssize_t ldc, const floating* bias, const row_sums* sums,
                                   int num_threads, long mark) noexcept nogil:
    """``C = op(A) @ op(B)`` (``+ bias`` per column when not NULL) on the micro-kernel (float64: its float64
    kernels, ``packed_gemm_f64.h``).  Each thread takes a part of C (``gemm_part``) and packs what it reads itself:
    no barriers, and its panels are in its own cache.  A thread done with its part takes over the far rows of the
    part with the most left (``_take_over``): a core slowed by a neighbour no longer holds up the team.  Every C
    element is summed in the same order for any cut (register sums over a k-block of equal depth <= 256, added to C
    block after block), so the cut may follow the thread count, and who sums a row may follow the cores' speed, and
    the bits still do not.  False if the packing buffer cannot be allocated: the caller
    then uses BLAS for all of C.  ``sums`` (NULL: none; float32 and op(B) = B only): B's rows summed as it is
    packed (``rnnfast_row_sums``, zeroed by the caller), in row order, as a loop over the rows sums them."""
    return _packed_gemm_runs(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, bias, sums, NULL, num_threads, mark)


cdef inline bint all_steps_gemm_sums(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                     const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                                     floating* c, Py_ssize_t ldc, const floating* bias, const row_sums* sums,
                                     const RowRuns* runs, int num_threads, long mark, bint microkernel) noexcept nogil:
    """``all_steps_gemm``, and where it runs on the float32 micro-kernel with op(B) = B, ``sums`` of B's rows made
    as it packs them (``packed_tiled_gemm``).  True if they were made; else the caller makes them.  ``runs`` (NULL:
    every row; op(A) = A^T and op(B) = B only): the k rows that can be non-zero in B, the only ones the micro-kernel
    packs (``Stacked.runs``)."""
    if trans_b or floating is double:
        sums = NULL
    if (packed_product(m, n, k, microkernel)
            and _packed_gemm_runs(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, bias, sums, runs, num_threads,
                                  mark)):
        return sums != NULL
    tiled_gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, 0, c, ldc, bias, num_threads, mark)
    return False


cdef inline void all_steps_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                                floating* c, Py_ssize_t ldc, const floating* bias, int num_threads,
                                long mark, bint microkernel) noexcept nogil:
    """``C = op(A) @ op(B)`` (``+ bias``) for a product over all steps: on the micro-kernel where this
    build has it (``packed_tiled_gemm``; float64 on its float64 kernels), ``microkernel`` allows it (the
    plan) and every side is at least PACKED_MIN_SIDE; else BLAS tiles (``tiled_gemm``)."""
    all_steps_gemm_sums(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, bias, NULL, NULL, num_threads, mark,
                        microkernel)


cdef inline bint weight_gradients(Py_ssize_t D, Py_ssize_t H, Py_ssize_t G, Py_ssize_t rows, const floating* x,
                                  const floating* h, const floating* dG, floating* dWx, floating* dWh,
                                  const row_sums* sums, const RowRuns* runs, int num_threads, long mark,
                                  bint microkernel) noexcept nogil:
    """``dWx = x^T @ dG`` and ``dWh = h^T @ dG`` over all ``rows`` = N*T steps (x: (rows, D), h: (rows, H),
    dG: (rows, G), outputs G wide).  On the micro-kernel as one stacked product, ``[x | h]^T @ dG``,
    which packs dG once (``all_steps_gemm``'s rule on the stacked shape), and in float32 makes ``sums`` of
    dG's rows as it does (``all_steps_gemm_sums``); else two BLAS products.  True if the sums were made.
    ``runs`` (NULL: every row): the rows where dG can be non-zero, the only ones the micro-kernel packs."""
    cdef Stacked g
    if microkernel and RNNFAST_PACKED_GEMM and min(D + H, G, rows) >= PACKED_MIN_SIDE:
        if floating is double:
            sums = NULL
        g.a, g.lda, g.c, g.ldc, g.split = x, D, dWx, G, D
        g.a2, g.lda2, g.c2, g.ldc2 = h, H, dWh, G
        g.runs = runs
        if _packed_gemm(&g, True, False, D + H, G, rows, dG, G, <const floating*>NULL, sums, num_threads, mark):
            return sums != NULL
    tiled_gemm(True, False, D, G, rows, x, D, dG, G, 0, dWx, G, NULL, num_threads, mark)
    tiled_gemm(True, False, H, G, rows, h, H, dG, G, 0, dWh, G, NULL, num_threads, mark)
    return False


cdef inline void column_sums(Py_ssize_t m, Py_ssize_t n, const floating* a, Py_ssize_t lda,
                             floating* out, int num_threads) noexcept nogil:
    """``out[j] = sum_i a[i, j]``, rows added in order: the same bits for any
    thread count (threads own whole column blocks)."""
    cdef Py_ssize_t blocks = (n + TILE_SMALL - 1) // TILE_SMALL
    cdef Py_ssize_t blk, i, j, j0, j1
    for blk in prange(blocks, nogil=True, schedule="static", num_threads=team(blocks, num_threads)):
        j0 = blk * TILE_SMALL
        j1 = min(n, j0 + TILE_SMALL)
        for j in range(j0, j1):
            out[j] = 0
        for i in range(m):
            for j in range(j0, j1):
                out[j] = out[j] + a[i * lda + j]



cdef inline void scatter_rows(Py_ssize_t n, Py_ssize_t D, const Py_ssize_t* ids, const floating* rows,
                              floating* out, int num_threads) noexcept nogil:
    """``out[ids[i]] += rows[i]`` (``D`` values) for every i in order.  Threads take blocks of 16 columns: each
    column is summed by one thread, rows in order (the bits of ``rnnfast_row_sums``, for any thread count)."""
    cdef Py_ssize_t blocks = (D + 15) // 16, blk, i, j, j0, j1
    for blk in prange(blocks, nogil=True, schedule="static", num_threads=team(blocks, num_threads)):
        j0 = blk * 16
        j1 = min(D, j0 + 16)
        for i in range(n):
            for j in range(j0, j1):
                out[ids[i] * D + j] += rows[i * D + j]


cdef inline void gather_rows(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t n, const floating* table,
                             const Py_ssize_t* index, floating* out, int num_threads) noexcept nogil:
    """``out[r] = table[index[r]]`` for rows r0..r1-1 of ``n`` values: copies, no arithmetic."""
    cdef Py_ssize_t r
    for r in prange(r0, r1, nogil=True, schedule="static", num_threads=team((r1 - r0) // 16, num_threads)):
        memcpy(out + r * n, table + index[r] * n, n * sizeof(floating))


cdef inline void column_dot_sums(Py_ssize_t m, Py_ssize_t n, const floating* a, Py_ssize_t lda, const floating* b,
                                 Py_ssize_t ldb, floating* out, int num_threads) noexcept nogil:
    """``out[j] = sum_i a[i, j] * b[i, j]``, rows added in order: the same bits for any thread count."""
    cdef Py_ssize_t blocks = (n + TILE_SMALL - 1) // TILE_SMALL
    cdef Py_ssize_t blk, i, j, j0, j1
    for blk in prange(blocks, nogil=True, schedule="static", num_threads=team(blocks, num_threads)):
        j0 = blk * TILE_SMALL
        j1 = min(n, j0 + TILE_SMALL)
        for j in range(j0, j1):
            out[j] = 0
        for i in range(m):
            for j in range(j0, j1):
                out[j] = out[j] + a[i * lda + j] * b[i * ldb + j]
