/* The step GEMMs of ``packed_gemm.h`` in float64, and the pieces of its all-step products (``all_steps``).
 *
 * Through BLAS a float64 step ran OpenBLAS's dgemm on one small tile after another, whose small-matrix path is
 * slow in float64; a register-blocked kernel on operands packed once ran the steps far faster (bench/RESULTS.md,
 * stop 47), and the all-step products on it a little faster than dgemm's tiles (stop 48).  The scheme is the
 * float32 one: the step weights packed once per call into panels of 8 columns (one
 * cache line a k-row), k-major; a tile's rows copied into slivers of ``rnnfast_mr`` rows per k-block; each C
 * element summed with one FMA per k, in order, over k-blocks of RNNFAST_KC, each block's sum added to C in order.
 * So the bits depend on the shapes only -- never on the thread that runs a tile, the sliver a row is in, or the
 * kernel: the AVX2 kernel (6 rows x 8 columns, two 4-lane halves a row) and the AVX-512 one (up to 12 rows x two
 * panels) make the same sums.
 *
 * float64 only; where RNNFAST_PACKED_GEMM is 0 the kernels keep the BLAS path.
 */
#ifndef RNNFAST_PACKED_GEMM_F64_H
#define RNNFAST_PACKED_GEMM_F64_H

#include "packed_gemm.h"

#define RNNFAST_NR_D 8
#define RNNFAST_MC_D 66 /* rows per group of ``rnnfast_packed_gemm_d``'s stack copy (156 KiB: whole slivers) */
/* Rows of op(A) per group of a float64 all-step product (``all_steps``): whole slivers of 6 and of 12, in about
 * the bytes of the float32 group (RNNFAST_MC). */
#define RNNFAST_GROUP_ROWS_D 72

/* The next panels' lines (``rnnfast_ahead``): a k-row of a float64 panel is one cache line, as a float32 one
 * is, so the float32 scheme's pointers step through them (RNNFAST_NR floats = 64 bytes). */
static inline rnnfast_ahead rnnfast_sliver_ahead_d(const double *next0, const double *next1, ptrdiff_t kc,
                                                   ptrdiff_t nslivers, ptrdiff_t i)
{
    return rnnfast_sliver_ahead((const float *)next0, (const float *)next1, kc, nslivers, i);
}

#if RNNFAST_PACKED_GEMM

/* C[0:mr, 0:8] += A[0:mr, 0:kc] @ B[0:kc, 0:8] (A's rows at k: a[ms * k + r]), mr = 1..6: AVX2.  Where ``init`` is
 * not NULL, C[r, 0:8] = init[0:8] + the sums instead (an all-step product's first k-block), as in float32. */
#define RNNFAST_UKD_DECL(r)                                                 \
    __m256d c0_##r = _mm256_setzero_pd(), c1_##r = _mm256_setzero_pd();
#define RNNFAST_UKD_FMA(r)                                                  \
    {                                                                       \
        __m256d av = _mm256_broadcast_sd(a + ms * k + (r));                 \
        c0_##r = _mm256_fmadd_pd(av, b0, c0_##r);                           \
        c1_##r = _mm256_fmadd_pd(av, b1, c1_##r);                           \
    }
#define RNNFAST_UKD_STORE(r)                                                \
    {                                                                       \
        double *cr = c + (r) * ldc;                                         \
        const double *base = init != NULL ? init : cr;                      \
        _mm256_storeu_pd(cr, _mm256_add_pd(_mm256_loadu_pd(base), c0_##r)); \
        _mm256_storeu_pd(cr + 4, _mm256_add_pd(_mm256_loadu_pd(base + 4), c1_##r)); \
    }
#define RNNFAST_UKD_PREFETCH_C(r) _mm_prefetch((const char *)(c + (r) * ldc), _MM_HINT_T0);
#define RNNFAST_UKERNEL_D(MR, MS)                                           \
    static inline void rnnfast_ukernel_d##MR##_##MS(ptrdiff_t kc, const double *a, const double *b, \
                                                   double *c, ptrdiff_t ldc, const double *init, \
                                                   rnnfast_ahead ahead)                           \
    {                                                                       \
        const ptrdiff_t ms = MS;                                            \
        RNNFAST_ROWS##MR(RNNFAST_UKD_DECL)                                  \
        RNNFAST_ROWS##MR(RNNFAST_UKD_PREFETCH_C)                            \
        RNNFAST_AHEAD_START                                                 \
        RNNFAST_UNROLL_K /* as the float32 kernel's (packed_gemm.h) */      \
        for (ptrdiff_t k = 0; k < kc; k++) {                                \
            __m256d b0 = _mm256_loadu_pd(b + 8 * k);                        \
            __m256d b1 = _mm256_loadu_pd(b + 8 * k + 4);                    \
            RNNFAST_AHEAD_STEP                                              \
            RNNFAST_ROWS##MR(RNNFAST_UKD_FMA)                               \
        }                                                                   \
        RNNFAST_ROWS##MR(RNNFAST_UKD_STORE)                                 \
    }
RNNFAST_UKERNEL_D(1, 6)
RNNFAST_UKERNEL_D(2, 6)
RNNFAST_UKERNEL_D(3, 6)
RNNFAST_UKERNEL_D(4, 6)
RNNFAST_UKERNEL_D(5, 6)
RNNFAST_UKERNEL_D(6, 6)
RNNFAST_UKERNEL_D(1, 12)
RNNFAST_UKERNEL_D(2, 12)
RNNFAST_UKERNEL_D(3, 12)
RNNFAST_UKERNEL_D(4, 12)
RNNFAST_UKERNEL_D(5, 12)
RNNFAST_UKERNEL_D(6, 12)

#define RNNFAST_UKD_CASE(R, MS) case R: rnnfast_ukernel_d##R##_##MS(kc, a, b, c, ldc, init, ahead); break;
static inline void rnnfast_ukernel_d_six(int mr, ptrdiff_t kc, const double *a, ptrdiff_t ms, const double *b,
                                         double *c, ptrdiff_t ldc, const double *init, rnnfast_ahead ahead)
{
    if (ms == RNNFAST_MR_MAX) {
        switch (mr) {
        RNNFAST_UKD_CASE(6, 12) RNNFAST_UKD_CASE(5, 12) RNNFAST_UKD_CASE(4, 12) RNNFAST_UKD_CASE(3, 12)
        RNNFAST_UKD_CASE(2, 12)
        default: rnnfast_ukernel_d1_12(kc, a, b, c, ldc, init, ahead); break;
        }
        return;
    }
    switch (mr) {
    RNNFAST_UKD_CASE(6, 6) RNNFAST_UKD_CASE(5, 6) RNNFAST_UKD_CASE(4, 6) RNNFAST_UKD_CASE(3, 6)
    RNNFAST_UKD_CASE(2, 6)
    default: rnnfast_ukernel_d1_6(kc, a, b, c, ldc, init, ahead); break;
    }
}

/* The 6-row kernel over a sliver of up to 12 rows: six rows at a time. */
static inline void rnnfast_ukernel_d_any(int mr, ptrdiff_t kc, const double *a, ptrdiff_t ms, const double *b,
                                         double *c, ptrdiff_t ldc, const double *init, rnnfast_ahead ahead)
{
    if (mr > RNNFAST_MR) {
        rnnfast_ukernel_d_six(RNNFAST_MR, kc, a, ms, b, c, ldc, init, rnnfast_no_ahead());
        a += RNNFAST_MR;
        c += RNNFAST_MR * ldc;
        mr -= RNNFAST_MR;
    }
    rnnfast_ukernel_d_six(mr, kc, a, ms, b, c, ldc, init, ahead);
}

#if RNNFAST_HAVE_AVX512_KERNEL
/* Two panels at a time in AVX-512 registers, mr = 1..12: up to 24 accumulators of 8 lanes, the same sums. */
#define RNNFAST_UKD2_DECL(r)                                                \
    __m512d c0_##r = _mm512_setzero_pd(), c1_##r = _mm512_setzero_pd();
#define RNNFAST_UKD2_FMA(r)                                                 \
    {                                                                       \
        __m512d av = _mm512_set1_pd(a[ms * k + (r)]);                       \
        c0_##r = _mm512_fmadd_pd(av, b0, c0_##r);                           \
        c1_##r = _mm512_fmadd_pd(av, b1, c1_##r);                           \
    }
#define RNNFAST_UKD2_STORE(r)                                               \
    {                                                                       \
        double *cr = c0 + (r) * ldc, *dr = c1 + (r) * ldc;                  \
        _mm512_storeu_pd(cr, _mm512_add_pd(_mm512_loadu_pd(init0 != NULL ? init0 : cr), c0_##r)); \
        _mm512_storeu_pd(dr, _mm512_add_pd(_mm512_loadu_pd(init1 != NULL ? init1 : dr), c1_##r)); \
    }
#define RNNFAST_UKERNEL2_D(MR, MS)                                          \
    RNNFAST_TARGET_AVX512 static inline void rnnfast_ukernel2_d##MR##_##MS( \
        ptrdiff_t kc, const double *a, const double *p0, const double *p1, double *c0, double *c1, \
        ptrdiff_t ldc, const double *init0, const double *init1, rnnfast_ahead ahead) \
    {                                                                       \
        const ptrdiff_t ms = MS;                                            \
        RNNFAST_ROWS##MR(RNNFAST_UKD2_DECL)                                 \
        RNNFAST_ROWS##MR(RNNFAST_UK2_PREFETCH_C) /* all at the start: spread, they ran no faster */ \
        RNNFAST_AHEAD_START                                                 \
        for (ptrdiff_t k = 0; k < kc; k++) {                                \
            __m512d b0 = _mm512_loadu_pd(p0 + 8 * k);                       \
            __m512d b1 = _mm512_loadu_pd(p1 + 8 * k);                       \
            RNNFAST_AHEAD_STEP                                              \
            RNNFAST_ROWS##MR(RNNFAST_UKD2_FMA)                              \
        }                                                                   \
        RNNFAST_ROWS##MR(RNNFAST_UKD2_STORE)                                \
    }
RNNFAST_UKERNEL2_D(1, 6)
RNNFAST_UKERNEL2_D(2, 6)
RNNFAST_UKERNEL2_D(3, 6)
RNNFAST_UKERNEL2_D(4, 6)
RNNFAST_UKERNEL2_D(5, 6)
RNNFAST_UKERNEL2_D(6, 6)
RNNFAST_UKERNEL2_D(1, 12)
RNNFAST_UKERNEL2_D(2, 12)
RNNFAST_UKERNEL2_D(3, 12)
RNNFAST_UKERNEL2_D(4, 12)
RNNFAST_UKERNEL2_D(5, 12)
RNNFAST_UKERNEL2_D(6, 12)
RNNFAST_UKERNEL2_D(7, 12)
RNNFAST_UKERNEL2_D(8, 12)
RNNFAST_UKERNEL2_D(9, 12)
RNNFAST_UKERNEL2_D(10, 12)
RNNFAST_UKERNEL2_D(11, 12)
RNNFAST_UKERNEL2_D(12, 12)

#define RNNFAST_UKD2_CASE(R, MS) \
    case R: rnnfast_ukernel2_d##R##_##MS(kc, a, p0, p1, c0, c1, ldc, init0, init1, ahead); break;
RNNFAST_TARGET_AVX512 static inline void rnnfast_ukernel2_d_any(int mr, ptrdiff_t kc, const double *a, ptrdiff_t ms,
                                                                const double *p0, const double *p1, double *c0,
                                                                double *c1, ptrdiff_t ldc, const double *init0,
                                                                const double *init1, rnnfast_ahead ahead)
{
    if (ms == RNNFAST_MR_MAX) {
        switch (mr) {
        RNNFAST_UKD2_CASE(12, 12) RNNFAST_UKD2_CASE(11, 12) RNNFAST_UKD2_CASE(10, 12) RNNFAST_UKD2_CASE(9, 12)
        RNNFAST_UKD2_CASE(8, 12) RNNFAST_UKD2_CASE(7, 12) RNNFAST_UKD2_CASE(6, 12) RNNFAST_UKD2_CASE(5, 12)
        RNNFAST_UKD2_CASE(4, 12) RNNFAST_UKD2_CASE(3, 12) RNNFAST_UKD2_CASE(2, 12)
        default: rnnfast_ukernel2_d1_12(kc, a, p0, p1, c0, c1, ldc, init0, init1, ahead); break;
        }
        return;
    }
    switch (mr) {
    RNNFAST_UKD2_CASE(6, 6) RNNFAST_UKD2_CASE(5, 6) RNNFAST_UKD2_CASE(4, 6) RNNFAST_UKD2_CASE(3, 6)
    RNNFAST_UKD2_CASE(2, 6)
    default: rnnfast_ukernel2_d1_6(kc, a, p0, p1, c0, c1, ldc, init0, init1, ahead); break;
    }
}
#endif
#else
static inline void rnnfast_ukernel_d_any(int mr, ptrdiff_t kc, const double *a, ptrdiff_t ms, const double *b,
                                         double *c, ptrdiff_t ldc, const double *init, rnnfast_ahead ahead)
{
    (void)mr; (void)kc; (void)a; (void)ms; (void)b; (void)c; (void)ldc; (void)init; (void)ahead;  /* never called */
}
#endif

/* C[0:mc, panel columns] += the slivers of one k-block (rows k0 .. k0+kc of the panels); panel p's 8 columns
 * start at C + (p / per_group) * group_stride + (p % per_group) * 8, as in ``rnnfast_slivers_times_panels_s``;
 * with ``init`` (one value per panel column, panels in order), C = init + the sums instead.  The next panel (or
 * the first one's next k-block) is asked for into L2 a share per sliver. */
static inline void rnnfast_slivers_times_panels_d(ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t k0, ptrdiff_t K,
                                                  const double *slivers, const double *panels,
                                                  ptrdiff_t panel_stride, ptrdiff_t npanels, ptrdiff_t per_group,
                                                  ptrdiff_t group_stride, double *c, ptrdiff_t ldc,
                                                  const double *init)
{
    ptrdiff_t nslivers = rnnfast_sliver_count(mc), ms = rnnfast_mr;
    int pairs = 0;
#if RNNFAST_HAVE_AVX512_KERNEL
    pairs = rnnfast_use_avx512;
#endif
    for (ptrdiff_t p = 0; p < npanels; p += pairs ? 2 : 1) {
        int pair = pairs && p + 1 < npanels;
        const double *b0 = panels + p * panel_stride + k0 * RNNFAST_NR_D, *b1 = pair ? b0 + panel_stride : NULL;
        double *c0 = c + (p / per_group) * group_stride + (p % per_group) * RNNFAST_NR_D;
        double *c1 = pair ? c + ((p + 1) / per_group) * group_stride + ((p + 1) % per_group) * RNNFAST_NR_D : NULL;
        const double *init0 = init != NULL ? init + p * RNNFAST_NR_D : NULL;
        const double *init1 = init != NULL && pair ? init0 + RNNFAST_NR_D : NULL;
        ptrdiff_t step = pair ? 2 : 1;
        const double *next0 = NULL, *next1 = NULL;
        if (p + step < npanels) {
            next0 = b0 + step * panel_stride;
            next1 = pair && p + step + 1 < npanels ? next0 + panel_stride : NULL;
        } else if (k0 + RNNFAST_KC < K) {
            next0 = panels + (k0 + RNNFAST_KC) * RNNFAST_NR_D;
            next1 = pair && npanels > 1 ? next0 + panel_stride : NULL;
        }
        for (ptrdiff_t i = 0; i < nslivers; i++) {
            ptrdiff_t r0 = rnnfast_sliver_start(mc, i);
            int mr = rnnfast_sliver_rows(mc, i);
            rnnfast_ahead ahead = rnnfast_sliver_ahead_d(next0, next1, kc, nslivers, i);
#if RNNFAST_HAVE_AVX512_KERNEL
            if (pair) {
                rnnfast_ukernel2_d_any(mr, kc, slivers + i * ms * kc, ms, b0, b1, c0 + r0 * ldc, c1 + r0 * ldc, ldc,
                                       init0, init1, ahead);
                continue;
            }
#else
            (void)b1; (void)c1; (void)init1;  /* pairs of panels need the AVX-512 kernel */
#endif
            rnnfast_ukernel_d_any(mr, kc, slivers + i * ms * kc, ms, b0, c0 + r0 * ldc, ldc, init0, ahead);
        }
    }
}

/* A last panel narrower than 8 columns (``RNNFAST_EDGE_PANEL``). */
RNNFAST_EDGE_PANEL(d, double, RNNFAST_NR_D)

#if RNNFAST_PACKED_GEMM
/* Four rows of a sliver ``ms`` high (row r at k goes to dst[ms * k + r]), four k at a time through AVX
 * transposes: one double at a time, every load and store moved 8 bytes, and the copy showed in the all-step
 * products' profile. */
static inline void rnnfast_pack_four_d(ptrdiff_t kc, const double *a, ptrdiff_t lda, double *dst, ptrdiff_t ms)
{
    ptrdiff_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        __m256d r0 = _mm256_loadu_pd(a + k), r1 = _mm256_loadu_pd(a + lda + k);
        __m256d r2 = _mm256_loadu_pd(a + 2 * lda + k), r3 = _mm256_loadu_pd(a + 3 * lda + k);
        __m256d lo01 = _mm256_unpacklo_pd(r0, r1), hi01 = _mm256_unpackhi_pd(r0, r1);  /* k, k+1 | k+2, k+3 */
        __m256d lo23 = _mm256_unpacklo_pd(r2, r3), hi23 = _mm256_unpackhi_pd(r2, r3);
        double *d = dst + ms * k;
        _mm256_storeu_pd(d, _mm256_permute2f128_pd(lo01, lo23, 0x20));           /* rows 0..3 at k */
        _mm256_storeu_pd(d + ms, _mm256_permute2f128_pd(hi01, hi23, 0x20));      /* at k + 1 */
        _mm256_storeu_pd(d + 2 * ms, _mm256_permute2f128_pd(lo01, lo23, 0x31));  /* at k + 2 */
        _mm256_storeu_pd(d + 3 * ms, _mm256_permute2f128_pd(hi01, hi23, 0x31));  /* at k + 3 */
    }
    for (; k < kc; k++)
        for (ptrdiff_t r = 0; r < 4; r++)
            dst[ms * k + r] = a[r * lda + k];
}
#endif

/* op(A)'s rows 0 .. mc at depths 0 .. kc of slivers ``depth`` deep: row r of sliver i at k goes to
 * dst[i * mr * depth + mr * k + r] (mr = ``rnnfast_mr``), as ``rnnfast_copy_sliver_rows_s`` lays them out (a k-block
 * may be packed in pieces; ``rnnfast_copy_slivers_d``: the whole block, depth = kc).  ``a`` points at op(A)[0, k0]:
 * A[0, k0], rows lda apart, or A[k0, 0] when ``trans`` (op(A)[r, k] = a[k * lda + r]: a k-row of a sliver is a run
 * of A's row). */
static inline void rnnfast_copy_sliver_rows_d(int trans, ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t depth, const double *a,
                                              ptrdiff_t lda, double *dst)
{
    ptrdiff_t ms = rnnfast_mr;
    for (ptrdiff_t i = 0; i < rnnfast_sliver_count(mc); i++) {
        ptrdiff_t r0 = rnnfast_sliver_start(mc, i);
        int mr = rnnfast_sliver_rows(mc, i);
        double *d = dst + i * ms * depth;
        if (trans) {
            for (ptrdiff_t k = 0; k < kc; k++)
                memcpy(d + ms * k, a + k * lda + r0, (size_t)mr * sizeof(double));
            continue;
        }
        ptrdiff_t r = 0;
#if RNNFAST_PACKED_GEMM
        for (; r + 4 <= mr; r += 4)
            rnnfast_pack_four_d(kc, a + (r0 + r) * lda, lda, d + r, ms);
#endif
        for (; r < mr; r++) {
            const double *row = a + (r0 + r) * lda;
            for (ptrdiff_t k = 0; k < kc; k++)
                d[ms * k + r] = row[k];
        }
    }
}

static inline void rnnfast_copy_slivers_d(int trans, ptrdiff_t mc, ptrdiff_t kc, const double *a, ptrdiff_t lda,
                                          double *dst)
{
    rnnfast_copy_sliver_rows_d(trans, mc, kc, kc, a, lda, dst);
}

/* op(B)'s columns 0 .. w of rows 0 .. kc as ceil(w / 8) panels ``depth`` k-rows deep (depth * 8 doubles apart; a
 * k-block may be packed in pieces), zeros past w (op(B)[k, u] is b[k * ldb + u], or b[u * ldb + k] when ``trans``). */
static inline void rnnfast_pack_panel_rows_d(int trans, ptrdiff_t w, ptrdiff_t kc, ptrdiff_t depth, const double *b,
                                             ptrdiff_t ldb, double *dst)
{
    for (ptrdiff_t p = 0; p * RNNFAST_NR_D < w; p++) {
        ptrdiff_t u0 = p * RNNFAST_NR_D, cols = w - u0 < RNNFAST_NR_D ? w - u0 : RNNFAST_NR_D;
        double *d = dst + p * depth * RNNFAST_NR_D;
        if (!trans && cols == RNNFAST_NR_D) {  /* a k-row of the panel is a run of B's row: one line */
            for (ptrdiff_t k = 0; k < kc; k++)
                memcpy(d + k * RNNFAST_NR_D, b + k * ldb + u0, RNNFAST_NR_D * sizeof(double));
            continue;
        }
        for (ptrdiff_t k = 0; k < kc; k++)
            for (ptrdiff_t u = 0; u < RNNFAST_NR_D; u++)
                d[k * RNNFAST_NR_D + u] = u >= cols ? 0.0 : trans ? b[(u0 + u) * ldb + k] : b[k * ldb + u0 + u];
    }
}

static inline void rnnfast_pack_panels_d(int trans, ptrdiff_t w, ptrdiff_t kc, const double *b, ptrdiff_t ldb,
                                         double *dst)
{
    rnnfast_pack_panel_rows_d(trans, w, kc, kc, b, ldb, dst);
}

/* ``rnnfast_packed_gemm_s`` in float64: C[0:m, panel columns] += A[0:m, 0:K] @ panels, A copied into slivers a
 * group of rows and a k-block at a time on the stack; and its two halves for tiles that share their rows
 * (``rnnfast_pack_slivers_d``: all of A, block k0 at out + k0 * m6; ``rnnfast_packed_gemm_slivers_d``). */
static inline void rnnfast_packed_gemm_d(ptrdiff_t m, ptrdiff_t K, const double *a, ptrdiff_t lda,
                                         const double *panels, ptrdiff_t panel_stride, ptrdiff_t npanels,
                                         ptrdiff_t per_group, ptrdiff_t group_stride, double *c, ptrdiff_t ldc)
{
    double slivers[(RNNFAST_MC_D + RNNFAST_MR_MAX) * RNNFAST_KC];
    for (ptrdiff_t m0 = 0; m0 < m; m0 += RNNFAST_MC_D) {
        ptrdiff_t mc = m - m0 < RNNFAST_MC_D ? m - m0 : RNNFAST_MC_D;
        for (ptrdiff_t k0 = 0; k0 < K; k0 += RNNFAST_KC) {
            ptrdiff_t kc = K - k0 < RNNFAST_KC ? K - k0 : RNNFAST_KC;
            rnnfast_copy_slivers_d(0, mc, kc, a + m0 * lda + k0, lda, slivers);
            rnnfast_slivers_times_panels_d(mc, kc, k0, K, slivers, panels, panel_stride, npanels, per_group,
                                           group_stride, c + m0 * ldc, ldc, NULL);
        }
    }
}

static inline void rnnfast_pack_slivers_d(ptrdiff_t m, ptrdiff_t K, const double *a, ptrdiff_t lda, double *out)
{
    ptrdiff_t m6 = rnnfast_sliver_floats(m, 1);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += RNNFAST_KC) {
        ptrdiff_t kc = K - k0 < RNNFAST_KC ? K - k0 : RNNFAST_KC;
        rnnfast_copy_slivers_d(0, m, kc, a + k0, lda, out + k0 * m6);
    }
}

static inline void rnnfast_packed_gemm_slivers_d(ptrdiff_t m, ptrdiff_t K, const double *slivers,
                                                 const double *panels, ptrdiff_t panel_stride, ptrdiff_t npanels,
                                                 ptrdiff_t per_group, ptrdiff_t group_stride, double *c,
                                                 ptrdiff_t ldc)
{
    ptrdiff_t m6 = rnnfast_sliver_floats(m, 1);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += RNNFAST_KC) {
        ptrdiff_t kc = K - k0 < RNNFAST_KC ? K - k0 : RNNFAST_KC;
        rnnfast_slivers_times_panels_d(m, kc, k0, K, slivers + k0 * m6, panels, panel_stride, npanels, per_group,
                                       group_stride, c, ldc, NULL);
    }
}

#endif
