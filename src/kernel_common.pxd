# cython: language_level=3
"""Small inline helpers shared by the cell kernels: a row-major BLAS shim,
numerically safe gate functions, and a deterministic tiled parallel GEMM.

Everything here is ``noexcept nogil``: validation happens in Python before
any of it runs.
"""
from cython cimport floating
from cython.parallel cimport prange
from cpython.exc cimport PyErr_CheckSignals
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, sgemm

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


cdef inline int team(Py_ssize_t tasks, int num_threads) noexcept nogil:
    """Threads for a parallel region of ``tasks`` tasks: no more than there are tasks (idle team
    members would still be woken and wait at every barrier).  Who runs a task never changes its
    arithmetic, so the bits stay the same."""
    if tasks < num_threads:
        return <int>tasks if tasks > 1 else 1
    return num_threads


cdef inline void gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      floating alpha, const floating* a, Py_ssize_t lda,
                      const floating* b, Py_ssize_t ldb,
                      floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``C(m, n) = alpha * op(A)(m, k) @ op(B)(k, n) + beta * C``.

    BLAS is column-major, and a row-major matrix is the column-major view of
    its transpose; so we ask BLAS for ``C^T = op(B)^T @ op(A)^T``, which is the
    same call with the operands swapped.  Sizes were checked against the
    32-bit BLAS limit in Python before any kernel runs.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef int lda_ = <int>ldb, ldb_ = <int>lda, ldc_ = <int>ldc
    if m == 0 or n == 0:
        return
    if floating is float:
        sgemm(&ta, &tb, &m_, &n_, &k_, &alpha, <float*>b, &lda_, <float*>a, &ldb_, &beta, c, &ldc_)
    else:
        dgemm(&ta, &tb, &m_, &n_, &k_, &alpha, <double*>b, &lda_, <double*>a, &ldb_, &beta, c, &ldc_)


# A streaming panel (k, n) is stored as column strips of STRIP_BYTES: strip s holds columns
# s*S .. s*S+w-1 (S = STRIP_BYTES / itemsize, w = S but for the last) as its own contiguous
# (k, w) block, so that one row's product keeps a strip's sums in registers (8 AVX registers)
# and reads the strip once, in order.  ``rnnfast.stepper._pack`` lays them out.
cdef enum:
    STRIP_BYTES = 256
    STRIP_MAX = 64  # the most columns a strip has (float32)


cdef inline void _strip_sums(Py_ssize_t w, Py_ssize_t k, const floating* x, const floating* a,
                             floating* acc) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating xi
    cdef const floating* r
    for j in range(w):
        acc[j] = 0
    for i in range(k):
        xi = x[i]
        r = a + i * w
        for j in range(w):
            acc[j] = acc[j] + xi * r[j]


cdef inline void strip_matvec(Py_ssize_t w, Py_ssize_t k, const floating* x, const floating* a,
                              floating* y) noexcept nogil:
    """``y(1, w) += x(1, k) @ A(k, w)``, A contiguous, w at most a strip's width.

    Memory-bound: measured (H=1024, 32 MiB of panels) 0.50 ms a token on 2 threads where the
    previous loop over y in memory, four rows of A a pass, took 1.50 ms; OpenBLAS's GEMV 0.53 ms."""
    cdef floating acc[STRIP_MAX]
    cdef Py_ssize_t j, S = STRIP_BYTES // sizeof(floating)
    if w == S:  # a full strip: inlined with a constant width, so the sums stay in registers
        _strip_sums(S, k, x, a, acc)
    else:
        _strip_sums(w, k, x, a, acc)
    for j in range(w):
        y[j] = y[j] + acc[j]


cdef inline void row_product(Py_ssize_t N, Py_ssize_t n, Py_ssize_t k, const floating* x, const floating* a,
                             floating* y) noexcept nogil:
    """Row-major ``y(N, n) += x(N, k) @ A(k, n)`` for the steppers, A a panel of column strips
    (above): ``strip_matvec`` for one row (which calls no BLAS, so nothing needs pinning at every
    token), BLAS's GEMM strip by strip for a batch."""
    cdef floating one = 1
    cdef Py_ssize_t s0 = 0, w, S = STRIP_BYTES // sizeof(floating)
    while s0 < n:
        w = min(S, n - s0)
        if N == 1:
            strip_matvec(w, k, x, a + s0 * k, y + s0)
        else:  # BLAS; strip_matvec row by row lost at N = 2-4 and at H <= 512 (won only N = 8-16, H = 1024)
            gemm(False, False, N, w, k, one, x, k, a + s0 * k, w, one, y + s0, n)
        s0 = s0 + w


cdef extern from "interrupt.h" nogil:
    int rnnfast_install_sigint()
    long interrupt_mark "rnnfast_interrupt_mark"()
    bint interrupted_since "rnnfast_interrupted_since"(long mark)

# Time steps between two looks at the Ctrl-C count (a window costs one fork/join of the
# thread team): at most ~0.1 s of work at the largest sizes measured.
cdef enum:
    STEPS_PER_CHECK = 16
    K_CHUNK = 16384


cdef inline int check_interrupt(long mark) except -1:
    """After a kernel stopped early on Ctrl-C: run Python's handler (KeyboardInterrupt)."""
    if interrupted_since(mark):
        PyErr_CheckSignals()
        raise KeyboardInterrupt("interrupted inside an rnnfast kernel")
    return 0


cdef extern from "packed_gemm.h" nogil:
    # Step GEMMs on weights packed once per call (float32, AVX2 + FMA builds only).
    int RNNFAST_PACKED_GEMM  # 1 where the micro-kernel was compiled in
    int PANEL "RNNFAST_NR"   # columns per packed panel
    void packed_gemm_s "rnnfast_packed_gemm_s"(Py_ssize_t m, Py_ssize_t K, const float* a, Py_ssize_t lda,
                                               const float* panels, Py_ssize_t panel_stride, Py_ssize_t npanels,
                                               Py_ssize_t per_group, Py_ssize_t group_stride, float* c,
                                               Py_ssize_t ldc)
    void pack_gate_columns_s "rnnfast_pack_gate_columns_s"(const float* W, Py_ssize_t K, Py_ssize_t H,
                                                           Py_ssize_t gates, Py_ssize_t j0, Py_ssize_t w,
                                                           float* out)
    void pack_rows_transposed_s "rnnfast_pack_rows_transposed_s"(const float* W, Py_ssize_t G, Py_ssize_t j0,
                                                                 Py_ssize_t w, float* out)
    Py_ssize_t sliver_floats "rnnfast_sliver_floats"(Py_ssize_t m, Py_ssize_t K)
    void pack_slivers_s "rnnfast_pack_slivers_s"(Py_ssize_t m, Py_ssize_t K, const float* a, Py_ssize_t lda,
                                                 float* out)
    void packed_gemm_slivers_s "rnnfast_packed_gemm_slivers_s"(Py_ssize_t m, Py_ssize_t K, const float* slivers,
                                                               const float* panels, Py_ssize_t panel_stride,
                                                               Py_ssize_t npanels, Py_ssize_t per_group,
                                                               Py_ssize_t group_stride, float* c, Py_ssize_t ldc)
    void slivers_times_panels_s "rnnfast_slivers_times_panels_s"(Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t k0,
                                                                 Py_ssize_t K, const float* slivers,
                                                                 const float* panels, Py_ssize_t panel_stride,
                                                                 Py_ssize_t npanels, Py_ssize_t per_group,
                                                                 Py_ssize_t group_stride, float* c, Py_ssize_t ldc)
    int KBLOCK "RNNFAST_KC"  # depth of one k-block
    int SLIVER "RNNFAST_MR"  # rows per sliver
    void copy_slivers_s "rnnfast_copy_slivers_s"(int trans, Py_ssize_t mc, Py_ssize_t kc, const float* a,
                                                 Py_ssize_t lda, float* dst)
    void pack_panels_s "rnnfast_pack_panels_s"(int trans, Py_ssize_t w, Py_ssize_t kc, const float* b,
                                               Py_ssize_t ldb, float* dst)
    void edge_panel_s "rnnfast_edge_panel_s"(Py_ssize_t mc, Py_ssize_t kc, const float* slivers, const float* panel,
                                             Py_ssize_t w, float* c, Py_ssize_t ldc)


cdef struct SliverCache:
    # One thread's copy of a tile's rows of A in the micro-kernel's slivers, kept for the next
    # tiles with the same rows (``packed_gemm_tile_s``); data is NULL where there is none.
    float* data
    Py_ssize_t key  # which rows it holds (the caller's label, e.g. step * n_blocks + block); -1: none


cdef inline SliverCache new_sliver_cache(bint packed, Py_ssize_t rows, Py_ssize_t K) noexcept nogil:
    """Room for ``rows`` x ``K`` of A when the steps are packed (NULL data otherwise, or if malloc fails:
    then every tile copies its own A, as ``packed_gemm_s`` does)."""
    cdef SliverCache c
    c.key = -1
    c.data = <float*>malloc(sliver_floats(rows, K) * sizeof(float)) if packed else NULL
    return c


cdef inline void packed_gemm_tile_s(SliverCache* cache, Py_ssize_t key, Py_ssize_t m, Py_ssize_t K, const float* a,
                                    Py_ssize_t lda, const float* panels, Py_ssize_t panel_stride,
                                    Py_ssize_t npanels, Py_ssize_t per_group, Py_ssize_t group_stride, float* c,
                                    Py_ssize_t ldc) noexcept nogil:
    """``packed_gemm_s``, copying A into slivers only when the thread's last tile had other rows
    (``key``): a backward step's tiles are 128 units wide but 4H deep, and copying A per tile took
    ~12% of the micro-kernel's time.  The same arithmetic, so the same bits."""
    if cache.data == NULL:
        packed_gemm_s(m, K, a, lda, panels, panel_stride, npanels, per_group, group_stride, c, ldc)
        return
    if cache.key != key:
        pack_slivers_s(m, K, a, lda, cache.data)
        cache.key = key
    packed_gemm_slivers_s(m, K, cache.data, panels, panel_stride, npanels, per_group, group_stride, c, ldc)


cdef inline void pack_step_panels(bint forward, const floating* Wh, floating* panels, Py_ssize_t H,
                                  Py_ssize_t gates, Py_ssize_t chunk_h, int num_threads) noexcept nogil:
    """A cell's (H, gates*H) step weights in the micro-kernel's panels, chunk of units by chunk
    (in parallel): each chunk's gate columns for the forward product (K = H), or its rows
    transposed for the backward one (K = gates*H).  float32 only; a no-op for float64."""
    cdef Py_ssize_t n_chunks = (H + chunk_h - 1) // chunk_h
    cdef Py_ssize_t c, j0
    if floating is float:
        for c in prange(n_chunks, nogil=True, num_threads=team(n_chunks, num_threads), schedule="static"):
            j0 = c * chunk_h
            if forward:
                pack_gate_columns_s(Wh, H, H, gates, j0, min(chunk_h, H - j0), panels + gates * j0 * H)
            else:
                pack_rows_transposed_s(Wh, gates * H, j0, min(chunk_h, H - j0), panels + j0 * gates * H)


cdef extern from "fastmath.h" nogil:
    # Branch-free, vectorizable; error bounds stated in the header and tested.
    float rnnfast_expf(float x) noexcept
    double rnnfast_exp(double x) noexcept
    float rnnfast_sigmoidf(float x) noexcept
    double rnnfast_sigmoid(double x) noexcept
    float rnnfast_tanhf(float x) noexcept
    double rnnfast_tanh(double x) noexcept


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return rnnfast_expf(x)
    else:
        return rnnfast_exp(x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    if floating is float:
        return rnnfast_sigmoidf(x)
    else:
        return rnnfast_sigmoid(x)


cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return rnnfast_tanhf(x)
    else:
        return rnnfast_tanh(x)


cdef inline void tiled_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const floating* a, Py_ssize_t lda,
                            const floating* b, Py_ssize_t ldb,
                            floating beta, floating* c, Py_ssize_t ldc,
                            const floating* bias, int num_threads, long mark) noexcept nogil:
    """``C = op(A) @ op(B) + beta * C`` (or ``+ bias`` per column when bias is
    not NULL), split into output tiles (``output_grid``) run in parallel.

    Each tile is a fixed sequence of single-threaded BLAS calls on shapes that depend
    only on (m, n, k): the bits do not depend on the thread count.  A long inner
    dimension (the weight gradients sum over all N*T rows) is cut into K_CHUNK
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
            kc = min(<Py_ssize_t>K_CHUNK, k - k0)
            gemm(trans_a, trans_b, mm, nn, kc, one, a_tile + (k0 * lda if trans_a else k0), lda,
                 b_tile + (k0 if trans_b else k0 * ldb), ldb, beta_tile if k0 == 0 else one, c_tile, ldc)
            k0 = k0 + kc
            if interrupted_since(mark):
                break


# The packed all-step products (``packed_tiled_gemm_s``): rows of op(A) per group, copied into
# slivers just before the panels stream past them (22 slivers of a k-block, 135 KiB: they stay in L2).
cdef enum:
    GROUP_ROWS = 132
    PACKED_MIN_SIDE = 256


cdef struct GemmPart:
    # One thread's share of C: rows i0:i1 (whole slivers but the last) and panels p0:p1.
    Py_ssize_t i0, i1, p0, p1


cdef inline GemmPart gemm_part(int tid, int nt, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Cut C into a grid of nt parts, pr row parts x pc panel parts, that copies least: each row part
    packs its panels of op(B) and each panel part its slivers of op(A), so op(B) is packed pr times
    and op(A) pc times.  Any cut gives the same bits (``packed_tiled_gemm_s``)."""
    cdef Py_ssize_t n_sliv = (m + SLIVER - 1) // SLIVER, npan = (n + PANEL - 1) // PANEL
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


cdef inline void _init_rows(float* c, Py_ssize_t ldc, Py_ssize_t rows, Py_ssize_t j0, Py_ssize_t j1,
                            const float* bias) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(j0, j1):
            c[i * ldc + j] = bias[j] if bias != NULL else 0


cdef inline Py_ssize_t part_floats(GemmPart q) noexcept nogil:
    """Packing room for one part: a group's slivers and the part's panels, one k-block deep."""
    return (GROUP_ROWS + (q.p1 - q.p0) * PANEL) * KBLOCK


cdef struct Stacked:
    # op(A) and C as two blocks of rows stacked: rows below ``split`` are op(a)'s and c's, rows from
    # ``split`` on are op(a2)'s and c2's (row r is their row r - split).  One product then gives
    # both weight gradients, x^T @ dG and h^T @ dG, packing dG once.
    const float* a
    const float* a2
    float* c
    float* c2
    Py_ssize_t lda, lda2, ldc, ldc2, split


cdef inline Py_ssize_t _rows_of(Stacked* g, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t k0, bint trans_a,
                                const float** a, Py_ssize_t* lda, float** c, Py_ssize_t* ldc) noexcept nogil:
    """Where op(A)'s row r0 (at depth k0) and C's row r0 are, and the end of their block (<= r1)."""
    if r0 < g.split:
        a[0] = g.a + (k0 * g.lda + r0 if trans_a else r0 * g.lda + k0)
        lda[0], c[0], ldc[0] = g.lda, g.c + r0 * g.ldc, g.ldc
        return min(r1, g.split)
    a[0] = g.a2 + (k0 * g.lda2 + r0 - g.split if trans_a else (r0 - g.split) * g.lda2 + k0)
    lda[0], c[0], ldc[0] = g.lda2, g.c2 + (r0 - g.split) * g.ldc2, g.ldc2
    return r1


cdef inline void _packed_part_s(GemmPart q, Stacked* g, bint trans_a, bint trans_b, Py_ssize_t n, Py_ssize_t k,
                                const float* b, Py_ssize_t ldb, const float* bias, float* slivers,
                                long mark) noexcept nogil:
    """One thread's part of ``packed_tiled_gemm_s``.  For each k-block: its columns of op(B) into
    panels, then group by group of its rows, the rows into slivers and the slivers times the panels
    (the first k-block sets C to the bias, or zero, first).  ``slivers``: ``part_floats(q)`` floats."""
    cdef Py_ssize_t npan = q.p1 - q.p0, j0 = q.p0 * PANEL, j1 = min(n, q.p1 * PANEL)
    cdef Py_ssize_t full = npan if j1 - j0 == npan * PANEL else npan - 1
    cdef float* panels = slivers + GROUP_ROWS * KBLOCK
    # k-blocks of equal depth, at most KBLOCK: k = 280 gives 140 + 140, not 256 + a thin 24
    cdef Py_ssize_t kb = (k + ((k + KBLOCK - 1) // KBLOCK) - 1) // ((k + KBLOCK - 1) // KBLOCK) if k > 0 else 1
    cdef Py_ssize_t k0, kc, r0, mc, lda, ldc
    cdef const float* a
    cdef float* c
    if q.i1 <= q.i0 or npan == 0:
        return
    r0 = q.i0
    while k == 0 and r0 < q.i1:  # no products: C is the bias (or zero)
        mc = _rows_of(g, r0, q.i1, 0, trans_a, &a, &lda, &c, &ldc) - r0
        _init_rows(c, ldc, mc, j0, j1, bias)
        r0 = r0 + mc
    k0 = 0
    while k0 < k and not interrupted_since(mark):
        kc = min(kb, k - k0)
        pack_panels_s(trans_b, j1 - j0, kc, b + (j0 * ldb + k0 if trans_b else k0 * ldb + j0), ldb, panels)
        r0 = q.i0
        while r0 < q.i1:  # groups of GROUP_ROWS rows at most, within one block of the stack
            mc = _rows_of(g, r0, min(q.i1, r0 + GROUP_ROWS), k0, trans_a, &a, &lda, &c, &ldc) - r0
            copy_slivers_s(trans_a, mc, kc, a, lda, slivers)
            if k0 == 0:
                _init_rows(c, ldc, mc, j0, j1, bias)
            if full > 0:
                slivers_times_panels_s(mc, kc, 0, kc, slivers, panels, kc * PANEL, full, full, 0, c + j0, ldc)
            if full < npan:  # the last panel, narrower than 16 columns
                edge_panel_s(mc, kc, slivers, panels + full * kc * PANEL, j1 - j0 - full * PANEL,
                             c + j0 + full * PANEL, ldc)
            r0 = r0 + mc
        k0 = k0 + kc


cdef inline bint _packed_gemm_s(Stacked* g, bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                const float* b, Py_ssize_t ldb, const float* bias, int num_threads,
                                long mark) noexcept nogil:
    cdef Py_ssize_t most = ((m + SLIVER - 1) // SLIVER) * ((n + PANEL - 1) // PANEL)
    cdef int nt = <int>min(<Py_ssize_t>max(num_threads, 1), most)
    cdef Py_ssize_t room = 0
    cdef int tid
    cdef float* buf
    if m == 0 or n == 0:
        return True
    for tid in range(nt):  # one allocation, here: worker threads' own heaps give pages back and fault
        room = max(room, part_floats(gemm_part(tid, nt, m, n)))
    buf = <float*>malloc(nt * room * sizeof(float))
    if buf == NULL:
        return False
    if nt == 1:
        _packed_part_s(gemm_part(0, 1, m, n), g, trans_a, trans_b, n, k, b, ldb, bias, buf, mark)
    else:
        for tid in prange(nt, nogil=True, num_threads=nt, schedule="static"):
            _packed_part_s(gemm_part(tid, nt, m, n), g, trans_a, trans_b, n, k, b, ldb, bias, buf + tid * room,
                           mark)
    free(buf)
    return True


cdef inline bint packed_tiled_gemm_s(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                     const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                                     float* c, Py_ssize_t ldc, const float* bias, int num_threads,
                                     long mark) noexcept nogil:
    """``C = op(A) @ op(B)`` (``+ bias`` per column when not NULL) on the micro-kernel, float32.  Each
    thread takes a part of C (``gemm_part``) and packs what it reads itself: no barriers, and its
    panels are in its own cache.  Every C element is summed in the same order for any cut (register
    sums over a k-block of equal depth <= 256, added to C block after block), so the cut may follow
    the thread count and the bits still do not.  False if the packing buffer cannot be allocated:
    the caller then uses BLAS for all of C."""
    cdef Stacked g
    g.a, g.lda, g.c, g.ldc, g.split = a, lda, c, ldc, m
    g.a2, g.lda2, g.c2, g.ldc2 = NULL, 0, NULL, 0
    return _packed_gemm_s(&g, trans_a, trans_b, m, n, k, b, ldb, bias, num_threads, mark)


cdef inline void all_steps_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                                floating* c, Py_ssize_t ldc, const floating* bias, int num_threads,
                                long mark) noexcept nogil:
    """``C = op(A) @ op(B)`` (``+ bias``) for a product over all steps: on the micro-kernel where this
    build has it (float32, ``packed_tiled_gemm_s``) and every side is at least PACKED_MIN_SIDE, else
    BLAS tiles (``tiled_gemm``).  Measured against the BLAS tiles, 2 threads, LSTM shapes: 0.86-0.97x
    the time from N*T = 560 rows up; up to 1.1x where one side was 128-140 (OpenBLAS packs less)."""
    if floating is float:
        if (RNNFAST_PACKED_GEMM and min(m, n, k) >= PACKED_MIN_SIDE
                and packed_tiled_gemm_s(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, bias, num_threads, mark)):
            return
    tiled_gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, 0, c, ldc, bias, num_threads, mark)


cdef inline void weight_gradients(Py_ssize_t D, Py_ssize_t H, Py_ssize_t G, Py_ssize_t rows, const floating* x,
                                  const floating* h, const floating* dG, floating* dWx, floating* dWh,
                                  int num_threads, long mark) noexcept nogil:
    """``dWx = x^T @ dG`` and ``dWh = h^T @ dG`` over all ``rows`` = N*T steps (x: (rows, D), h: (rows, H),
    dG: (rows, G), outputs G wide).  On the micro-kernel as one stacked product, ``[x | h]^T @ dG``,
    which packs dG once (float32, ``all_steps_gemm``'s rule on the stacked shape); else two BLAS
    products."""
    cdef Stacked g
    if floating is float:
        if RNNFAST_PACKED_GEMM and min(D + H, G, rows) >= PACKED_MIN_SIDE:
            g.a, g.lda, g.c, g.ldc, g.split = x, D, dWx, G, D
            g.a2, g.lda2, g.c2, g.ldc2 = h, H, dWh, G
            if _packed_gemm_s(&g, True, False, D + H, G, rows, dG, G, NULL, num_threads, mark):
                return
    tiled_gemm(True, False, D, G, rows, x, D, dG, G, 0, dWx, G, NULL, num_threads, mark)
    tiled_gemm(True, False, H, G, rows, h, H, dG, G, 0, dWh, G, NULL, num_threads, mark)


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


cdef struct Tiling:
    # The per-step work split: tiles of block_n batch rows x chunk_h hidden units (T: the steps).
    Py_ssize_t N, T, H, block_n, chunk_h, n_blocks, n_chunks
    # Where the BLAS path finds a tile's step weights (``weight_block``): gate q's columns of the chunk
    # at unit j0 start at (j0 // chunk_h) * w_chunk + q * w_gate, rows w_ld apart.
    Py_ssize_t w_ld, w_chunk, w_gate


cdef inline Tiling make_tiling(Py_ssize_t N, Py_ssize_t T, Py_ssize_t H, Py_ssize_t gates, Py_ssize_t block_n,
                               Py_ssize_t chunk_h) noexcept nogil:
    """Tiles of the (N, H) state; the step weights are read as given, (H, gates*H) row-major."""
    cdef Tiling s
    s.N = N
    s.T = T
    s.H = H
    s.block_n = block_n
    s.chunk_h = chunk_h
    s.n_blocks = (N + block_n - 1) // block_n
    s.n_chunks = (H + chunk_h - 1) // chunk_h
    s.w_ld = gates * H
    s.w_chunk = chunk_h
    s.w_gate = H
    return s


cdef inline Py_ssize_t batch_row(Tiling s, Py_ssize_t n, Py_ssize_t t, Py_ssize_t width) noexcept nogil:
    """Offset of row (n, t) in a batch-major (N, T, width) array, such as the user's ``dhs``."""
    return (n * s.T + t) * width


cdef inline Py_ssize_t weight_block(Tiling s, Py_ssize_t j0, Py_ssize_t q) noexcept nogil:
    """Offset of gate q's step-weight columns for the chunk starting at unit j0 (BLAS path)."""
    return (j0 // s.chunk_h) * s.w_chunk + q * s.w_gate


cdef inline void chunk_step_weights(const floating* W, floating* out, Tiling* s, Py_ssize_t gates,
                                    int num_threads) noexcept nogil:
    """Copy the (H, gates*H) step weights chunk-major for the BLAS path and point ``s`` at the copy:
    chunk c is an (H, gates*chunk_h) block with its gate blocks side by side.  As given, a gate
    block's rows are gates*H floats apart (8 KiB at H=512 in an LSTM: every row a new page, which
    the hardware prefetchers do not cross); in the copy, gates*chunk_h (1 KiB).  The GEMMs keep
    their shapes, so the bits do not change: LSTM forward steps, N=64, H=512, 2 threads,
    35.2 -> 28.5 ms."""
    cdef Py_ssize_t H = s.H, chunk_h = s.chunk_h, ld = gates * s.chunk_h
    cdef Py_ssize_t c, k, q, j0, w
    for c in prange(s.n_chunks, nogil=True, num_threads=team(s.n_chunks, num_threads), schedule="static"):
        j0 = c * chunk_h
        w = min(chunk_h, H - j0)
        for k in range(H):
            for q in range(gates):
                copy(out + c * H * ld + k * ld + q * chunk_h, W + k * gates * H + q * H + j0, w)
    s.w_ld = ld
    s.w_chunk = H * ld
    s.w_gate = chunk_h


cdef inline Py_ssize_t tile_count(Tiling s) noexcept nogil:
    return s.n_blocks * s.n_chunks


cdef inline void tile_bounds(Tiling s, Py_ssize_t tile, Py_ssize_t* n0, Py_ssize_t* n1,
                             Py_ssize_t* j0, Py_ssize_t* j1) noexcept nogil:
    n0[0] = (tile // s.n_chunks) * s.block_n
    n1[0] = min(s.N, n0[0] + s.block_n)
    j0[0] = (tile % s.n_chunks) * s.chunk_h
    j1[0] = min(s.H, j0[0] + s.chunk_h)


cdef inline bint owns_rows(Tiling s, int num_threads) noexcept nogil:
    """Schedule (not shape): when the row blocks share out evenly, each thread takes whole row
    blocks for a window of steps -- batch rows never read each other, so no barrier is needed.
    Which thread runs a tile never changes its arithmetic: the bits stay the same."""
    return s.n_blocks >= num_threads and s.n_blocks % num_threads == 0


cdef inline void emit_output_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* hst,
                                  floating* hs, const Py_ssize_t* lengths) noexcept nogil:
    """The user's batch-major output ``hs[n, t]`` for one tile of step t, written while the tile's
    new state is still in cache (a separate transposing pass over hs cost as much as a step at N=32):
    ``h_t``, or 0 past a sequence's end."""
    cdef Py_ssize_t n0, n1, j0, j1, n
    cdef floating zero = 0
    tile_bounds(s, tile, &n0, &n1, &j0, &j1)
    cdef const floating* h_next = hst + (t + 1) * s.N * s.H
    for n in range(n0, n1):
        if t < lengths[n]:
            copy(hs + batch_row(s, n, t, s.H) + j0, h_next + n * s.H + j0, j1 - j0)
        else:
            fill(hs + batch_row(s, n, t, s.H) + j0, j1 - j0, zero)


# Gate passes over one row's units: each is a single simple loop, which gcc
# turns into SIMD code (a fused loop writing four gate blocks did not vectorize).
cdef inline void sigmoid_inplace(floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = sigmoid(a[j])


cdef inline void tanh_inplace(floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = tanh_(a[j])


cdef inline void fill(floating* a, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = value


cdef inline void copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j]
