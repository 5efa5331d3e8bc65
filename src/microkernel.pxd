# cython: language_level=3
"""The packed 6 x 16 FMA micro-kernel and its AVX-512 form (``packed_gemm.h``; float32, AVX2 + FMA builds), and the
float64 step kernels (``packed_gemm_f64.h``): their C entry points, the per-thread sliver copy of a tile's rows, and
the packing of a cell's step weights into their panels."""
from cython cimport floating
from cython.parallel cimport prange
from thread_scratch cimport STEP_SLIVERS, thread_scratch

from finite cimport any_nonfinite
from threads cimport team


cdef extern from "packed_gemm.h" nogil:
    # Step GEMMs on weights packed once per call (float32, AVX2 + FMA builds only).
    int RNNFAST_PACKED_GEMM  # 1 where the micro-kernel was compiled in
    int PANEL "RNNFAST_NR"   # columns per packed panel
    void packed_gemm_s "rnnfast_packed_gemm_s"(Py_ssize_t m, Py_ssize_t K, const float* a, Py_ssize_t lda,
                                               const float* panels, Py_ssize_t panel_stride, Py_ssize_t npanels,
                                               Py_ssize_t per_group, Py_ssize_t group_stride, float* c,
                                               Py_ssize_t ldc)
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
                                                                 Py_ssize_t group_stride, float* c, Py_ssize_t ldc,
                                                                 const float* init, int c_ahead)
    int select_wide_kernel "rnnfast_select_wide_kernel"(int on)  # AVX-512 pairs of panels; returns if on
    int select_sliver_rows "rnnfast_select_sliver_rows"(int rows)  # 6 or 12 (with the AVX-512 kernel); in use
    int force_sliver_rows "rnnfast_force_sliver_rows"(int rows)  # tests: 6 or 12 whichever kernel is on
    int KBLOCK "RNNFAST_KC"  # depth of one k-block
    int SLIVER "rnnfast_mr"  # rows per sliver in this module (``select_sliver_rows``)
    int GROUP_ROWS "RNNFAST_MC"  # rows of op(A) per group of an all-step product (``all_steps``)
    void copy_slivers_s "rnnfast_copy_slivers_s"(int trans, Py_ssize_t mc, Py_ssize_t kc, const float* a,
                                                 Py_ssize_t lda, float* dst)
    void pack_panels_s "rnnfast_pack_panels_s"(int trans, Py_ssize_t w, Py_ssize_t kc, const float* b,
                                               Py_ssize_t ldb, float* dst)
    ctypedef struct row_sums "rnnfast_row_sums":
        float* columns
        const Py_ssize_t* ids
        float* rows
        Py_ssize_t ld
    void pack_panels_sums_s "rnnfast_pack_panels_sums_s"(Py_ssize_t w, Py_ssize_t kc, const float* b, Py_ssize_t ldb,
                                                         float* dst, row_sums sums)
    # A k-block packed in pieces (the running rows of a ragged batch's staircase): kc rows at a depth of slivers and
    # panels ``depth`` deep (``dst`` points at that depth).
    void copy_sliver_rows_s "rnnfast_copy_sliver_rows_s"(int trans, Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t depth,
                                                         const float* a, Py_ssize_t lda, float* dst)
    void pack_panel_rows_s "rnnfast_pack_panel_rows_s"(Py_ssize_t w, Py_ssize_t kc, Py_ssize_t depth, const float* b,
                                                       Py_ssize_t ldb, float* dst, row_sums sums)
    void edge_panel_s "rnnfast_edge_panel_s"(Py_ssize_t mc, Py_ssize_t kc, const float* slivers, const float* panel,
                                             Py_ssize_t w, float* c, Py_ssize_t ldc, const float* init)


cdef extern from "packed_gemm_f64.h" nogil:
    # The step GEMMs in float64 (AVX2 + FMA builds only): the float32 ones' sums, on panels of PANEL_D columns.
    int PANEL_D "RNNFAST_NR_D"
    void packed_gemm_d "rnnfast_packed_gemm_d"(Py_ssize_t m, Py_ssize_t K, const double* a, Py_ssize_t lda,
                                               const double* panels, Py_ssize_t panel_stride, Py_ssize_t npanels,
                                               Py_ssize_t per_group, Py_ssize_t group_stride, double* c,
                                               Py_ssize_t ldc)
    void pack_slivers_d "rnnfast_pack_slivers_d"(Py_ssize_t m, Py_ssize_t K, const double* a, Py_ssize_t lda,
                                                 double* out)
    void packed_gemm_slivers_d "rnnfast_packed_gemm_slivers_d"(Py_ssize_t m, Py_ssize_t K, const double* slivers,
                                                               const double* panels, Py_ssize_t panel_stride,
                                                               Py_ssize_t npanels, Py_ssize_t per_group,
                                                               Py_ssize_t group_stride, double* c, Py_ssize_t ldc)
    void pack_panels_d "rnnfast_pack_panels_d"(int trans, Py_ssize_t w, Py_ssize_t kc, const double* b,
                                               Py_ssize_t ldb, double* dst)
    # The all-step products' pieces in float64 (``all_steps.packed_tiled_gemm``).
    int GROUP_ROWS_D "RNNFAST_GROUP_ROWS_D"  # rows of op(A) per group of a float64 all-step product
    void copy_slivers_d "rnnfast_copy_slivers_d"(int trans, Py_ssize_t mc, Py_ssize_t kc, const double* a,
                                                 Py_ssize_t lda, double* dst)
    void copy_sliver_rows_d "rnnfast_copy_sliver_rows_d"(int trans, Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t depth,
                                                         const double* a, Py_ssize_t lda, double* dst)
    void pack_panel_rows_d "rnnfast_pack_panel_rows_d"(int trans, Py_ssize_t w, Py_ssize_t kc, Py_ssize_t depth,
                                                       const double* b, Py_ssize_t ldb, double* dst)
    void slivers_times_panels_d "rnnfast_slivers_times_panels_d"(Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t k0,
                                                                 Py_ssize_t K, const double* slivers,
                                                                 const double* panels, Py_ssize_t panel_stride,
                                                                 Py_ssize_t npanels, Py_ssize_t per_group,
                                                                 Py_ssize_t group_stride, double* c, Py_ssize_t ldc,
                                                                 const double* init)
    void edge_panel_d "rnnfast_edge_panel_d"(Py_ssize_t mc, Py_ssize_t kc, const double* slivers,
                                             const double* panel, Py_ssize_t w, double* c, Py_ssize_t ldc,
                                             const double* init)


cdef struct SliverCache:
    # One thread's copy of a tile's rows of A in the micro-kernel's slivers (floats or doubles, as the call),
    # kept for the next tiles with the same rows (``packed_gemm_tile``); data is NULL where there is none.
    void* data
    Py_ssize_t key  # which rows it holds (the caller's label, e.g. step * n_blocks + block); -1: none


cdef inline SliverCache new_sliver_cache(bint packed, Py_ssize_t rows, Py_ssize_t K,
                                         size_t itemsize) noexcept nogil:
    """Room for ``rows`` x ``K`` of A (``itemsize`` bytes each) when the steps are packed, the thread's own scratch:
    give it back with ``scratch_done(data)`` (NULL data otherwise, or if memory runs out: then every tile copies its
    own A, as ``packed_gemm_s`` does)."""
    cdef SliverCache c
    c.key = -1
    c.data = thread_scratch(STEP_SLIVERS, sliver_floats(rows, K) * itemsize) if packed else NULL
    return c


cdef inline void packed_gemm_tile(SliverCache* cache, Py_ssize_t key, Py_ssize_t m, Py_ssize_t K, const floating* a,
                                  Py_ssize_t lda, const floating* panels, Py_ssize_t panel_stride,
                                  Py_ssize_t npanels, Py_ssize_t per_group, Py_ssize_t group_stride, floating* c,
                                  Py_ssize_t ldc) noexcept nogil:
    """``packed_gemm_s`` (float64: ``packed_gemm_d``), copying A into slivers only when the thread's last tile had
    other rows (``key``): a backward step's tiles are 128 units wide but 4H deep, and copying A per tile took
    ~12% of the micro-kernel's time.  The same arithmetic, so the same bits."""
    if cache.data == NULL:
        if floating is float:
            packed_gemm_s(m, K, a, lda, panels, panel_stride, npanels, per_group, group_stride, c, ldc)
        else:
            packed_gemm_d(m, K, a, lda, panels, panel_stride, npanels, per_group, group_stride, c, ldc)
        return
    if cache.key != key:
        if floating is float:
            pack_slivers_s(m, K, a, lda, <float*>cache.data)
        else:
            pack_slivers_d(m, K, a, lda, <double*>cache.data)
        cache.key = key
    if floating is float:
        packed_gemm_slivers_s(m, K, <float*>cache.data, panels, panel_stride, npanels, per_group, group_stride, c,
                              ldc)
    else:
        packed_gemm_slivers_d(m, K, <double*>cache.data, panels, panel_stride, npanels, per_group, group_stride, c,
                              ldc)


cdef inline Py_ssize_t pack_step_panels(bint forward, const floating* Wh, floating* panels, Py_ssize_t H,
                                        Py_ssize_t gates, Py_ssize_t units, int num_threads,
                                        bint count=False) noexcept nogil:
    """A cell's (H, gates*H) step weights in the micro-kernel's panels (PANEL floats or PANEL_D doubles wide),
    unit block by unit block: each block's gate columns for the forward product (K = H), or its rows transposed for
    the backward one (K = gates*H).  The threads share (unit block, gate) pairs forward, (unit block, panel) pairs
    backward: by unit blocks alone, one block (H = 256 in 256-unit blocks) left all but one thread waiting on a
    copy of the whole matrix.  A copy: the bits never depend on who makes it.  ``count`` (forward): each task then
    tests the panels it has just written, still in its cache, for NaN or Inf (the weights' check, in the pass that
    reads them anyway); returns how many tasks found one, else 0."""
    cdef Py_ssize_t panel = PANEL if floating is float else PANEL_D
    cdef Py_ssize_t unit_blocks = (H + units - 1) // units
    cdef Py_ssize_t per_block = gates if forward else (units + panel - 1) // panel
    cdef Py_ssize_t tasks = unit_blocks * per_block, task, j0, w, q, u0, G = gates * H, bad = 0
    for task in prange(tasks, nogil=True, num_threads=team(tasks, num_threads), schedule="static"):
        j0 = (task // per_block) * units
        w = min(units, H - j0)
        q = task % per_block
        if forward:  # gate q's columns of the block: its panels follow the block's earlier gates'
            if floating is float:
                pack_panels_s(False, w, H, Wh + q * H + j0, G, panels + gates * j0 * H + q * w * H)
            else:
                pack_panels_d(False, w, H, Wh + q * H + j0, G, panels + gates * j0 * H + q * w * H)
            if count:  # w is whole panels on the micro-kernel's path: the task's panels are w * H values
                bad += any_nonfinite(panels + gates * j0 * H + q * w * H, w * H)
        elif q * panel < w:  # the block's rows j0 + panel * q ..., transposed: its panel q
            u0 = j0 + q * panel
            if floating is float:
                pack_panels_s(True, min(panel, j0 + w - u0), G, Wh + u0 * G, G, panels + u0 * G)
            else:
                pack_panels_d(True, min(panel, j0 + w - u0), G, Wh + u0 * G, G, panels + u0 * G)
    return bad
