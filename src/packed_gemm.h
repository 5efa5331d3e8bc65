/* Step GEMMs on weights packed once per call.
 *
 * A recurrent step multiplies the same weights by a new state at every time step.  Through
 * BLAS, every step re-packs both operands (OpenBLAS's sgemm copy routines took ~20% of an
 * LSTM training step at N=128, H=1024 on two threads, and the step products ran at 60% of
 * the machine's GEMM speed).  Here the weights are packed once per kernel call into panels
 * of 16 columns, k-major (``K x 16`` contiguous floats), and each step streams them through
 * a 6 x 16 register-blocked FMA micro-kernel (the BLIS Haswell shape: 12 accumulators,
 * two panel loads and six broadcasts per k).  The state rows (at most a tile's 128) are
 * copied into slivers of 6 rows (12 on cores with two 512-bit FMA units: ``rnnfast_mr``)
 * per k-block, a small cost shared by all the tile's panels.
 *
 *     C[r, cols of panel p] += sum_k A[r, k] * P[p][k, 0:16]
 *
 * The sum runs over k in blocks of RNNFAST_KC, each block added to C in order, so the
 * bits depend only on the shapes -- never on the thread that runs a tile.
 *
 * float32 (float64: ``packed_gemm_f64.h``), and only where the compiler targets AVX2 + FMA (the ``_avx2``
 * builds); elsewhere RNNFAST_PACKED_GEMM is 0 and the kernels keep the BLAS path.
 */
#ifndef RNNFAST_PACKED_GEMM_H
#define RNNFAST_PACKED_GEMM_H

#include <stddef.h>
#include <string.h>

#define RNNFAST_NR 16
#define RNNFAST_MR 6       /* rows per sliver of the 6 x 16 kernel */
#define RNNFAST_MR_MAX 12  /* rows per sliver at most (``rnnfast_mr``) */
#define RNNFAST_KC 256
#define RNNFAST_MC 132 /* rows per group: 22 slivers of 6 or 11 of 12, 132 KiB of stack at most */

/* Rows per sliver in this module: 6, or 12 where the AVX-512 kernel runs on cores with two 512-bit FMA
 * units (``rnnfast_select_sliver_rows``, at import).  Chosen once, like ``rnnfast_use_avx512``; a row's
 * sums do not depend on the sliver it is in, so neither do the bits. */
static int rnnfast_mr = RNNFAST_MR;
static int rnnfast_mr_wanted = RNNFAST_MR;  /* the height asked for: 12 takes effect with the AVX-512 kernel */

/* The panels that come next, asked for into L2 while a kernel call runs (``RNNFAST_AHEAD_STEP``). */
typedef struct {
    const float *p0, *p1;
    ptrdiff_t lines;
} rnnfast_ahead;

static inline rnnfast_ahead rnnfast_no_ahead(void)
{
    rnnfast_ahead none = {NULL, NULL, 0};
    return none;
}

#if defined(__AVX2__) && defined(__FMA__)
#define RNNFAST_PACKED_GEMM 1
#include <immintrin.h>

/* ``rnnfast_ahead`` in a kernel call: ``lines`` k-rows (one cache line each) of ``p0`` and of ``p1`` (16 floats
 * apart), one of each every RNNFAST_AHEAD_EVERY k at most, so they are all asked for
 * in the call's first part.  All at once before the call (a run of up to 172 prefetches before each sliver), they
 * held up the kernel's own loads, and the step products ran slower than with no prefetch at all; spread out, the
 * next panels still arrive in time where a step's weights come from L3 (H = 1024).  Measured: bench/RESULTS.md. */
#define RNNFAST_AHEAD_EVERY 4
#define RNNFAST_AHEAD_START /* lines <= kc: a line pair every kc / lines k, or every RNNFAST_AHEAD_EVERY */ \
    ptrdiff_t ahead_every = ahead.lines * RNNFAST_AHEAD_EVERY > kc ? kc / ahead.lines : RNNFAST_AHEAD_EVERY; \
    ptrdiff_t ahead_wait = ahead_every, ahead_left = ahead.lines;
#define RNNFAST_AHEAD_LINES                                                 \
    if (ahead_left > 0) {                                                   \
        ahead_left--;                                                       \
        _mm_prefetch((const char *)ahead.p0, _MM_HINT_T1);                  \
        _mm_prefetch((const char *)ahead.p1, _MM_HINT_T1);                  \
        ahead.p0 += RNNFAST_NR;                                             \
        ahead.p1 += RNNFAST_NR;                                             \
    }
#define RNNFAST_AHEAD_STEP                                                  \
    if (--ahead_wait == 0) {                                                \
        ahead_wait = ahead_every;                                           \
        RNNFAST_AHEAD_LINES                                                 \
    }

/* The AVX2 kernels' k loops, eight k a pass.  Each k issues 20 instructions for its 12 FMAs, and the loop's own
 * counting and the ahead lines' countdown added 5-7 more; a pass over eight k counts once (the countdown stays per
 * k).  On a core of its own the FMAs bound the loop either way (level, within 1.3%), but where another thread
 * shares the core (an SMT sibling: a cloud vCPU beside another tenant's) the two share the instruction dispatch,
 * and the fewer instructions lose less time in those spells (``bench/kernel_spells.c`` measures both loops;
 * bench/RESULTS.md, stop 54).  The same FMAs in the same order: the bits do not change. */
#if defined(__GNUC__)
#define RNNFAST_UNROLL_K _Pragma("GCC unroll 8")
#else
#define RNNFAST_UNROLL_K
#endif

/* C[0:mr, 0:16] += A[0:mr, 0:kc] @ B[0:kc, 0:16], one function per mr = 1..6 and sliver height ms = 6 or 12
 * (``rnnfast_mr``; A's rows at k are a[ms * k + r]); where ``init`` is not
 * NULL, C[r, 0:16] = init[0:16] + the sums instead (a product's first k-block: its bias, or zeros), the
 * same addition as setting C to init and adding, without the pass that sets C (whose stores missed the
 * cache).  Written with one named variable per
 * accumulator: with arrays, gcc kept the accumulators on the stack inside the Cython-built modules (a
 * store per FMA; half speed). */
#define RNNFAST_UK_DECL(r)                                                  \
    __m256 c0_##r = _mm256_setzero_ps(), c1_##r = _mm256_setzero_ps();
#define RNNFAST_UK_FMA(r)                                                   \
    {                                                                       \
        __m256 av = _mm256_broadcast_ss(a + ms * k + (r));                  \
        c0_##r = _mm256_fmadd_ps(av, b0, c0_##r);                           \
        c1_##r = _mm256_fmadd_ps(av, b1, c1_##r);                           \
    }
#define RNNFAST_UK_STORE(r)                                                 \
    {                                                                       \
        float *cr = c + (r) * ldc;                                          \
        const float *base = init != NULL ? init : cr;                       \
        _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(base), c0_##r)); \
        _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(base + 8), c1_##r)); \
    }
/* C's rows are wanted only after the k loop: ask for them now, so a row that is not in cache
 * (rows of the all-step products are 4 KiB and more apart) arrives while the FMAs run.  (Spread over the
 * loop, as the AVX-512 kernel's 12-row slivers ask for theirs, these twelve ran no faster: bench/RESULTS.md.) */
#define RNNFAST_UK_PREFETCH_C(r)                                            \
    {                                                                       \
        _mm_prefetch((const char *)(c + (r) * ldc), _MM_HINT_T0);           \
        _mm_prefetch((const char *)(c + (r) * ldc + 15), _MM_HINT_T0);      \
    }
#define RNNFAST_ROWS1(X) X(0)
#define RNNFAST_ROWS2(X) RNNFAST_ROWS1(X) X(1)
#define RNNFAST_ROWS3(X) RNNFAST_ROWS2(X) X(2)
#define RNNFAST_ROWS4(X) RNNFAST_ROWS3(X) X(3)
#define RNNFAST_ROWS5(X) RNNFAST_ROWS4(X) X(4)
#define RNNFAST_ROWS6(X) RNNFAST_ROWS5(X) X(5)
#define RNNFAST_ROWS7(X) RNNFAST_ROWS6(X) X(6)
#define RNNFAST_ROWS8(X) RNNFAST_ROWS7(X) X(7)
#define RNNFAST_ROWS9(X) RNNFAST_ROWS8(X) X(8)
#define RNNFAST_ROWS10(X) RNNFAST_ROWS9(X) X(9)
#define RNNFAST_ROWS11(X) RNNFAST_ROWS10(X) X(10)
#define RNNFAST_ROWS12(X) RNNFAST_ROWS11(X) X(11)
#define RNNFAST_UKERNEL(MR, MS)                                             \
    static inline void rnnfast_ukernel_s##MR##_##MS(ptrdiff_t kc, const float *a, \
                                             const float *b, float *c, ptrdiff_t ldc, \
                                             const float *init, rnnfast_ahead ahead) \
    {                                                                       \
        const ptrdiff_t ms = MS; /* a constant: a variable stride ran slower */ \
        RNNFAST_ROWS##MR(RNNFAST_UK_DECL)                                   \
        RNNFAST_ROWS##MR(RNNFAST_UK_PREFETCH_C)                             \
        RNNFAST_AHEAD_START                                                 \
        RNNFAST_UNROLL_K                                                    \
        for (ptrdiff_t k = 0; k < kc; k++) {                                \
            __m256 b0 = _mm256_loadu_ps(b + 16 * k);                        \
            __m256 b1 = _mm256_loadu_ps(b + 16 * k + 8);                    \
            RNNFAST_AHEAD_STEP                                              \
            RNNFAST_ROWS##MR(RNNFAST_UK_FMA)                                \
        }                                                                   \
        RNNFAST_ROWS##MR(RNNFAST_UK_STORE)                                  \
    }
RNNFAST_UKERNEL(1, 6)
RNNFAST_UKERNEL(2, 6)
RNNFAST_UKERNEL(3, 6)
RNNFAST_UKERNEL(4, 6)
RNNFAST_UKERNEL(5, 6)
RNNFAST_UKERNEL(6, 6)
RNNFAST_UKERNEL(1, 12)
RNNFAST_UKERNEL(2, 12)
RNNFAST_UKERNEL(3, 12)
RNNFAST_UKERNEL(4, 12)
RNNFAST_UKERNEL(5, 12)
RNNFAST_UKERNEL(6, 12)

/* The same sums two panels at a time in AVX-512 registers: C[0:mr, panel p0] and C[0:mr, panel p1] +=
 * A[0:mr, 0:kc] @ each panel, mr = 1..12: up to 24 accumulators of 16 lanes.  Each C element still gets one
 * FMA per k in order, then one add to C: the bits of the 6 x 16 kernel.  Where a core has two 512-bit FMA
 * units (Intel servers) it does twice the 6 x 16 kernel's flops per cycle, and 12-row slivers keep both
 * units busier than 6-row ones (``rnnfast_mr``); the build targets AVX2, so these functions carry their own
 * target and run only where the CPU has AVX-512 (``rnnfast_use_avx512``). */
#if defined(__GNUC__)
#define RNNFAST_HAVE_AVX512_KERNEL 1
#define RNNFAST_TARGET_AVX512 __attribute__((target("avx512f")))
#define RNNFAST_UK2_DECL(r)                                                 \
    __m512 c0_##r = _mm512_setzero_ps(), c1_##r = _mm512_setzero_ps();
#define RNNFAST_UK2_FMA(r)                                                  \
    {                                                                       \
        __m512 av = _mm512_set1_ps(a[ms * k + (r)]);                        \
        c0_##r = _mm512_fmadd_ps(av, b0, c0_##r);                           \
        c1_##r = _mm512_fmadd_ps(av, b1, c1_##r);                           \
    }
#define RNNFAST_UK2_STORE(r)                                                \
    {                                                                       \
        float *cr = c0 + (r) * ldc, *dr = c1 + (r) * ldc;                   \
        _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(init0 != NULL ? init0 : cr), c0_##r)); \
        _mm512_storeu_ps(dr, _mm512_add_ps(_mm512_loadu_ps(init1 != NULL ? init1 : dr), c1_##r)); \
    }
#define RNNFAST_UK2_PREFETCH_C(r)                                           \
    {                                                                       \
        _mm_prefetch((const char *)(c0 + (r) * ldc), _MM_HINT_T0);          \
        _mm_prefetch((const char *)(c1 + (r) * ldc), _MM_HINT_T0);          \
    }
/* C's rows of a 12-row sliver, one row of both panels with each ahead slot (RNNFAST_AHEAD_EVERY k at most
 * apart): all by k = 48 of 256.  All 24 lines at once at the call's start, where C is not in L2 (the
 * all-step products' C outgrows it), they held up the slivers' own loads, as the panels' did; spread
 * out, the products and the steps ran faster.  A 6-row sliver's 12 lines did not hold them up, and spread out
 * ran no faster (bench/RESULTS.md): those, and a k-block too short to spread them over, are asked for at the
 * start. */
#define RNNFAST_UK2_C_START(MR, MS)                                         \
    ptrdiff_t c_asked = 0;                                                  \
    if ((MS) < RNNFAST_MR_MAX || kc < (MR) * ahead_every) {                 \
        RNNFAST_ROWS##MR(RNNFAST_UK2_PREFETCH_C)                            \
        c_asked = (MR);                                                     \
    }
#define RNNFAST_UK2_AHEAD_STEP(MR)                                          \
    if (--ahead_wait == 0) {                                                \
        ahead_wait = ahead_every;                                           \
        if (c_asked < (MR)) {                                               \
            RNNFAST_UK2_PREFETCH_C(c_asked)                                 \
            c_asked++;                                                      \
        }                                                                   \
        RNNFAST_AHEAD_LINES                                                 \
    }
#define RNNFAST_UKERNEL2(MR, MS)                                            \
    RNNFAST_TARGET_AVX512 static inline void rnnfast_ukernel2_s##MR##_##MS( \
        ptrdiff_t kc, const float *a, const float *p0, const float *p1,    \
        float *c0, float *c1, ptrdiff_t ldc, const float *init0, const float *init1, \
        rnnfast_ahead ahead)                                                \
    {                                                                       \
        const ptrdiff_t ms = MS;                                            \
        RNNFAST_ROWS##MR(RNNFAST_UK2_DECL)                                  \
        RNNFAST_AHEAD_START                                                 \
        RNNFAST_UK2_C_START(MR, MS)                                         \
        for (ptrdiff_t k = 0; k < kc; k++) {                                \
            __m512 b0 = _mm512_loadu_ps(p0 + 16 * k);                       \
            __m512 b1 = _mm512_loadu_ps(p1 + 16 * k);                       \
            RNNFAST_UK2_AHEAD_STEP(MR)                                      \
            RNNFAST_ROWS##MR(RNNFAST_UK2_FMA)                               \
        }                                                                   \
        RNNFAST_ROWS##MR(RNNFAST_UK2_STORE)                                 \
    }
RNNFAST_UKERNEL2(1, 6)
RNNFAST_UKERNEL2(2, 6)
RNNFAST_UKERNEL2(3, 6)
RNNFAST_UKERNEL2(4, 6)
RNNFAST_UKERNEL2(5, 6)
RNNFAST_UKERNEL2(6, 6)
RNNFAST_UKERNEL2(1, 12)
RNNFAST_UKERNEL2(2, 12)
RNNFAST_UKERNEL2(3, 12)
RNNFAST_UKERNEL2(4, 12)
RNNFAST_UKERNEL2(5, 12)
RNNFAST_UKERNEL2(6, 12)
RNNFAST_UKERNEL2(7, 12)
RNNFAST_UKERNEL2(8, 12)
RNNFAST_UKERNEL2(9, 12)
RNNFAST_UKERNEL2(10, 12)
RNNFAST_UKERNEL2(11, 12)
RNNFAST_UKERNEL2(12, 12)

/* One dispatcher per sliver height, each inlined into its own loop (``RNNFAST_PANEL_PAIRS``): gcc stopped
 * inlining one for both heights, and the 6-row loop ran slower (bench/RESULTS.md, stop 43).  ``CASES``: the
 * height's row counts from MS down to 2 (``RNNFAST_UK2_CASE``); one row is the default. */
#define RNNFAST_UK2_CASE(R, MS) \
    case R: rnnfast_ukernel2_s##R##_##MS(kc, a, p0, p1, c0, c1, ldc, init0, init1, ahead); break;
#define RNNFAST_UK2_DISPATCHER(MS, CASES)                                                                  \
    RNNFAST_TARGET_AVX512 static inline void rnnfast_ukernel2_s_any##MS(                                   \
        int mr, ptrdiff_t kc, const float *a, const float *p0, const float *p1, float *c0, float *c1,      \
        ptrdiff_t ldc, const float *init0, const float *init1, rnnfast_ahead ahead)                        \
    {                                                                                                      \
        switch (mr) {                                                                                      \
        CASES                                                                                              \
        default: rnnfast_ukernel2_s1_##MS(kc, a, p0, p1, c0, c1, ldc, init0, init1, ahead); break;         \
        }                                                                                                  \
    }
RNNFAST_UK2_DISPATCHER(6, RNNFAST_UK2_CASE(6, 6) RNNFAST_UK2_CASE(5, 6) RNNFAST_UK2_CASE(4, 6)
                          RNNFAST_UK2_CASE(3, 6) RNNFAST_UK2_CASE(2, 6))
RNNFAST_UK2_DISPATCHER(12, RNNFAST_UK2_CASE(12, 12) RNNFAST_UK2_CASE(11, 12) RNNFAST_UK2_CASE(10, 12)
                           RNNFAST_UK2_CASE(9, 12) RNNFAST_UK2_CASE(8, 12) RNNFAST_UK2_CASE(7, 12)
                           RNNFAST_UK2_CASE(6, 12) RNNFAST_UK2_CASE(5, 12) RNNFAST_UK2_CASE(4, 12)
                           RNNFAST_UK2_CASE(3, 12) RNNFAST_UK2_CASE(2, 12))
#else
#define RNNFAST_HAVE_AVX512_KERNEL 0
#endif

#define RNNFAST_UK_CASE(R, MS) case R: rnnfast_ukernel_s##R##_##MS(kc, a, b, c, ldc, init, ahead); break;
static inline void rnnfast_ukernel_s_six(int mr, ptrdiff_t kc, const float *a, ptrdiff_t ms,
                                         const float *b, float *c, ptrdiff_t ldc, const float *init,
                                         rnnfast_ahead ahead)
{
    if (ms == RNNFAST_MR_MAX) {
        switch (mr) {
        RNNFAST_UK_CASE(6, 12) RNNFAST_UK_CASE(5, 12) RNNFAST_UK_CASE(4, 12) RNNFAST_UK_CASE(3, 12)
        RNNFAST_UK_CASE(2, 12)
        default: rnnfast_ukernel_s1_12(kc, a, b, c, ldc, init, ahead); break;
        }
        return;
    }
    switch (mr) {
    RNNFAST_UK_CASE(6, 6) RNNFAST_UK_CASE(5, 6) RNNFAST_UK_CASE(4, 6) RNNFAST_UK_CASE(3, 6) RNNFAST_UK_CASE(2, 6)
    default: rnnfast_ukernel_s1_6(kc, a, b, c, ldc, init, ahead); break;
    }
}

/* The 6 x 16 kernel over a sliver of up to 12 rows (``ms`` high): six rows at a time.  Each row's sums are
 * the same whichever call makes them. */
static inline void rnnfast_ukernel_s_any(int mr, ptrdiff_t kc, const float *a, ptrdiff_t ms,
                                         const float *b, float *c, ptrdiff_t ldc, const float *init,
                                         rnnfast_ahead ahead)
{
    if (mr > RNNFAST_MR) {
        rnnfast_ukernel_s_six(RNNFAST_MR, kc, a, ms, b, c, ldc, init, rnnfast_no_ahead());
        a += RNNFAST_MR;
        c += RNNFAST_MR * ldc;
        mr -= RNNFAST_MR;
    }
    rnnfast_ukernel_s_six(mr, kc, a, ms, b, c, ldc, init, ahead);
}
#else
#define RNNFAST_PACKED_GEMM 0
#define RNNFAST_HAVE_AVX512_KERNEL 0
static inline void rnnfast_ukernel_s_any(int mr, ptrdiff_t kc, const float *a, ptrdiff_t ms,
                                         const float *b, float *c, ptrdiff_t ldc, const float *init,
                                         rnnfast_ahead ahead)
{
    (void)mr; (void)kc; (void)a; (void)ms; (void)b; (void)c; (void)ldc; (void)init; (void)ahead;  /* never called */
}
#endif

/* Sliver i's share of the kc lines of the panels that come next (``next1`` NULL: one panel; ``next0`` NULL:
 * none), to be asked for while its kernel call runs. */
static inline rnnfast_ahead rnnfast_sliver_ahead(const float *next0, const float *next1, ptrdiff_t kc,
                                                 ptrdiff_t nslivers, ptrdiff_t i)
{
    rnnfast_ahead ahead = rnnfast_no_ahead();
    if (next0 != NULL) {
        ptrdiff_t l0 = i * kc / nslivers, l1 = (i + 1) * kc / nslivers;
        ahead.p0 = next0 + l0 * RNNFAST_NR;
        ahead.p1 = (next1 != NULL ? next1 : next0) + l0 * RNNFAST_NR;
        ahead.lines = l1 - l0;
    }
    return ahead;
}

/* How mc rows are cut into slivers: as few as hold them (``rnnfast_mr`` rows at most), as even as the rows allow,
 * the taller first (mr = 6: 16 -> 6, 5, 5; 32 -> 6, 6, 5, 5, 5, 5).  A short sliver's few accumulators leave the
 * FMA units waiting on their latency: a step's 16 rows ran 2% faster as 6, 5, 5 than as 6, 6, 4
 * (bench/sliver_heights.c; bench/RESULTS.md, stop 61).
 * Where shortening the last slivers by one row each is not enough (few slivers), the last two share their rows
 * if the last would be under two thirds of mr (13 -> 6, 4, 3; mr = 12: 16 -> 8, 8), without a division by a
 * variable.  Sliver i holds ``rnnfast_sliver_rows`` rows from row ``rnnfast_sliver_start``, and its copy starts
 * at i * mr * kc.  Each C element's sum is the same whatever sliver its row is in. */
static inline ptrdiff_t rnnfast_sliver_count(ptrdiff_t mc)
{
    /* divisions by constants: the kernels' loops ask for the cut of every sliver, and a division by a
     * variable height slowed the 6-row steps */
    return rnnfast_mr == RNNFAST_MR_MAX ? (mc + RNNFAST_MR_MAX - 1) / RNNFAST_MR_MAX
                                        : (mc + RNNFAST_MR - 1) / RNNFAST_MR;
}

static inline ptrdiff_t rnnfast_sliver_start(ptrdiff_t mc, ptrdiff_t i)
{
    ptrdiff_t mr = rnnfast_mr, n = rnnfast_sliver_count(mc), short_by = mr * n - mc, rest = mc - mr * (n - 1);
    if (short_by <= n)  /* the last short_by slivers one row short */
        return mr * i - (i > n - short_by ? i - (n - short_by) : 0);
    if (n >= 2 && 3 * rest < 2 * mr && i == n - 1)
        return mr * (n - 2) + (mr + rest + 1) / 2;
    return mr * i;
}

static inline int rnnfast_sliver_rows(ptrdiff_t mc, ptrdiff_t i)
{
    ptrdiff_t n = rnnfast_sliver_count(mc);
    ptrdiff_t end = i + 1 < n ? rnnfast_sliver_start(mc, i + 1) : mc;
    return (int)(end - rnnfast_sliver_start(mc, i));
}

/* ---- Packing: the micro-kernel reads A as 6-row slivers and B as 16-column panels ----
 *
 * ``a`` points at op(A)[r0, k0] (A[r0, k0], or A[k0, r0] when transposed) and ``b`` at
 * op(B)[k0, j0].  Slivers: row r at k goes to dst[6k + r]; a last sliver of mr < 6 rows keeps the
 * stride of 6 (the mr-row kernel reads only its own rows, so the rest is never filled).  Panels:
 * column u at k goes to dst[16k + u], panels kc * 16 floats apart, zeros past the last column. */
#if RNNFAST_PACKED_GEMM
/* Two floats to or from any address: the ``__m64 *`` forms of SSE assume 8-byte alignment. */
static inline __m128 rnnfast_load2(const float *p) { return _mm_castsi128_ps(_mm_loadl_epi64((const __m128i_u *)p)); }
static inline void rnnfast_store2(float *p, __m128 v) { _mm_storel_epi64((__m128i_u *)p, _mm_castps_si128(v)); }
#endif

#if RNNFAST_PACKED_GEMM
/* Six rows of a sliver ``ms`` high (row r at k goes to dst[ms * k + r]) in SSE registers, untransposed
 * four k at a time through SSE transposes: the scalar copy of dx's rows of dG took a fifth of that
 * product's time. */
static inline void rnnfast_pack_six_s(int trans, ptrdiff_t kc, const float *a, ptrdiff_t lda, float *dst,
                                           ptrdiff_t ms)
{
    ptrdiff_t k = 0;
    if (trans) {
        for (; k < kc; k++) {
            _mm_storeu_ps(dst + ms * k, _mm_loadu_ps(a + k * lda));
            rnnfast_store2(dst + ms * k + 4, rnnfast_load2(a + k * lda + 4));
        }
        return;
    }
    for (; k + 4 <= kc; k += 4) {
        __m128 r0 = _mm_loadu_ps(a + k), r1 = _mm_loadu_ps(a + lda + k);
        __m128 r2 = _mm_loadu_ps(a + 2 * lda + k), r3 = _mm_loadu_ps(a + 3 * lda + k);
        __m128 r4 = _mm_loadu_ps(a + 4 * lda + k), r5 = _mm_loadu_ps(a + 5 * lda + k);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  /* now r_j = rows 0..3 at k + j */
        __m128 lo = _mm_unpacklo_ps(r4, r5), hi = _mm_unpackhi_ps(r4, r5);  /* rows 4, 5 at k, k+1 | k+2, k+3 */
        float *d = dst + ms * k;
        _mm_storeu_ps(d, r0);
        rnnfast_store2(d + 4, lo);
        _mm_storeu_ps(d + ms, r1);
        rnnfast_store2(d + ms + 4, _mm_movehl_ps(lo, lo));
        _mm_storeu_ps(d + 2 * ms, r2);
        rnnfast_store2(d + 2 * ms + 4, hi);
        _mm_storeu_ps(d + 3 * ms, r3);
        rnnfast_store2(d + 3 * ms + 4, _mm_movehl_ps(hi, hi));
    }
    for (float *d = dst + ms * k; k < kc; k++, d += ms)  /* kc not a multiple of 4 */
        for (ptrdiff_t r = 0; r < 6; r++)
            d[r] = a[r * lda + k];
}
#endif

#if RNNFAST_PACKED_GEMM
/* Four rows of a sliver ``ms`` high, as ``rnnfast_pack_six_s`` packs six: the rows of slivers under six rows high
 * (``rnnfast_sliver_start``). */
static inline void rnnfast_pack_four_s(int trans, ptrdiff_t kc, const float *a, ptrdiff_t lda, float *dst,
                                       ptrdiff_t ms)
{
    ptrdiff_t k = 0;
    if (trans) {
        for (; k < kc; k++)
            _mm_storeu_ps(dst + ms * k, _mm_loadu_ps(a + k * lda));
        return;
    }
    for (; k + 4 <= kc; k += 4) {
        __m128 r0 = _mm_loadu_ps(a + k), r1 = _mm_loadu_ps(a + lda + k);
        __m128 r2 = _mm_loadu_ps(a + 2 * lda + k), r3 = _mm_loadu_ps(a + 3 * lda + k);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        float *d = dst + ms * k;
        _mm_storeu_ps(d, r0);
        _mm_storeu_ps(d + ms, r1);
        _mm_storeu_ps(d + 2 * ms, r2);
        _mm_storeu_ps(d + 3 * ms, r3);
    }
    for (float *d = dst + ms * k; k < kc; k++, d += ms)
        for (ptrdiff_t r = 0; r < 4; r++)
            d[r] = a[r * lda + k];
}
#endif

/* One sliver (mr <= ``rnnfast_mr`` rows) of one k-block: whole groups of six rows, then of four, through SSE, the
 * rest one float at a time. */
static inline void rnnfast_pack_sliver_s(int trans, ptrdiff_t mr, ptrdiff_t kc, const float *a, ptrdiff_t lda,
                                         float *dst)
{
    ptrdiff_t ms = rnnfast_mr, r0 = 0;
#if RNNFAST_PACKED_GEMM
    for (; r0 + 6 <= mr; r0 += 6) {  /* the height as a constant, as in the kernels */
        if (ms == RNNFAST_MR_MAX)
            rnnfast_pack_six_s(trans, kc, a + (trans ? r0 : r0 * lda), lda, dst + r0, RNNFAST_MR_MAX);
        else
            rnnfast_pack_six_s(trans, kc, a + (trans ? r0 : r0 * lda), lda, dst + r0, RNNFAST_MR);
    }
    if (r0 + 4 <= mr) {
        rnnfast_pack_four_s(trans, kc, a + (trans ? r0 : r0 * lda), lda, dst + r0, ms);
        r0 += 4;
    }
#endif
    for (ptrdiff_t k = 0; k < kc && r0 < mr; k++)
        for (ptrdiff_t r = r0; r < mr; r++)
            dst[k * ms + r] = trans ? a[k * lda + r] : a[r * lda + k];
}

/* op(A)'s rows 0 .. mc at depths 0 .. kc of slivers ``depth`` deep (``rnnfast_sliver_rows``; sliver i starts at
 * dst + i * rnnfast_mr * depth): a k-block packed in pieces, each piece's slivers at its own depth in the block. */
static inline void rnnfast_copy_sliver_rows_s(int trans, ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t depth, const float *a,
                                              ptrdiff_t lda, float *dst)
{
    for (ptrdiff_t i = 0; i < rnnfast_sliver_count(mc); i++) {
        ptrdiff_t r0 = rnnfast_sliver_start(mc, i);
        rnnfast_pack_sliver_s(trans, rnnfast_sliver_rows(mc, i), kc, a + (trans ? r0 : r0 * lda), lda,
                              dst + i * rnnfast_mr * depth);
    }
}

/* op(A)'s rows 0 .. mc of one k-block as slivers (``rnnfast_sliver_rows``), kc * 6 floats apart. */
static inline void rnnfast_copy_slivers_s(int trans, ptrdiff_t mc, ptrdiff_t kc, const float *a, ptrdiff_t lda,
                                          float *dst)
{
    rnnfast_copy_sliver_rows_s(trans, mc, kc, kc, a, lda, dst);
}

/* op(B)'s columns j0 .. j0+w of one k-block as ceil(w / 16) panels, kc * 16 floats apart, zeros
 * past w.  Untransposed, RNNFAST_PACK_ROWS rows of B at a time, panel by panel: the rows are read
 * from end to end (reading a whole panel at a time took a new 4 KiB page per 64 bytes), and each panel
 * is written in runs of 8 cache lines (a row at a time, the stores went to 16 KiB-apart lines, one per
 * panel, and missed the cache).  Transposed, each panel's 16 rows of B four k at a time through SSE
 * transposes. */
#define RNNFAST_PACK_ROWS 8
/* Sums over the rows of B made while they are packed (``rnnfast_pack_panels_sums_s``): either may be NULL. */
typedef struct {
    float *columns;        /* columns[j] += B[k, j] for every k, in order */
    const ptrdiff_t *ids;  /* rows[ids[k] * ld + j] += B[k, j] for every k, in order */
    float *rows;
    ptrdiff_t ld;
} rnnfast_row_sums;

/* ``rnnfast_pack_panels_s`` of an untransposed B, and ``sums`` of its rows 0 .. kc, columns 0 .. w, each
 * strip of rows added while the copy has it in L1.  Every column is summed with k in order, one addition
 * at a time, as a plain loop over the rows does (column sums of the bias gradient, a scatter-add by token):
 * the same bits, without reading B from memory again.  The panels are ``depth`` k-rows deep (``dst`` at the
 * depth of B's row 0 in them): a k-block may be packed in pieces. */
static inline void rnnfast_pack_panel_rows_s(ptrdiff_t w, ptrdiff_t kc, ptrdiff_t depth, const float *b,
                                             ptrdiff_t ldb, float *dst, rnnfast_row_sums sums)
{
    ptrdiff_t full = w / RNNFAST_NR, rest = w - full * RNNFAST_NR;
    if (rest > 0)
        memset(dst + full * depth * RNNFAST_NR, 0, (size_t)kc * RNNFAST_NR * sizeof(float));
    for (ptrdiff_t k0 = 0; k0 < kc; k0 += RNNFAST_PACK_ROWS) {
        ptrdiff_t k1 = k0 + RNNFAST_PACK_ROWS < kc ? k0 + RNNFAST_PACK_ROWS : kc;
        for (ptrdiff_t p = 0; p < full; p++)
            for (ptrdiff_t k = k0; k < k1; k++)
                memcpy(dst + (p * depth + k) * RNNFAST_NR, b + k * ldb + p * RNNFAST_NR, RNNFAST_NR * sizeof(float));
        if (rest > 0)
            for (ptrdiff_t k = k0; k < k1; k++)
                memcpy(dst + (full * depth + k) * RNNFAST_NR, b + k * ldb + full * RNNFAST_NR,
                       (size_t)rest * sizeof(float));
        for (ptrdiff_t k = k0; k < k1 && (sums.columns != NULL || sums.ids != NULL); k++) {
            const float *row = b + k * ldb;
            if (sums.columns != NULL)
                for (ptrdiff_t j = 0; j < w; j++)
                    sums.columns[j] += row[j];
            if (sums.ids != NULL) {
                float *out = sums.rows + sums.ids[k] * sums.ld;
                for (ptrdiff_t j = 0; j < w; j++)
                    out[j] += row[j];
            }
        }
    }
}

static inline void rnnfast_pack_panels_sums_s(ptrdiff_t w, ptrdiff_t kc, const float *b, ptrdiff_t ldb, float *dst,
                                              rnnfast_row_sums sums)
{
    rnnfast_pack_panel_rows_s(w, kc, kc, b, ldb, dst, sums);
}

static inline void rnnfast_pack_panels_s(int trans, ptrdiff_t w, ptrdiff_t kc, const float *b, ptrdiff_t ldb,
                                         float *dst)
{
    if (!trans) {
        rnnfast_row_sums none = {NULL, NULL, NULL, 0};
        rnnfast_pack_panels_sums_s(w, kc, b, ldb, dst, none);
        return;
    }
    ptrdiff_t full = w / RNNFAST_NR, rest = w - full * RNNFAST_NR;
    if (rest > 0)
        memset(dst + full * kc * RNNFAST_NR, 0, (size_t)kc * RNNFAST_NR * sizeof(float));
    for (ptrdiff_t p = 0; p <= full; p++) {  /* op(B)[k, u] = B[u, k]: panel p holds rows 16p .. of B */
        ptrdiff_t cols = p < full ? RNNFAST_NR : rest, k = 0;
        const float *src = b + p * RNNFAST_NR * ldb;
        float *d = dst + p * kc * RNNFAST_NR;
#if RNNFAST_PACKED_GEMM
        if (cols == RNNFAST_NR) {
            for (; k + 4 <= kc; k += 4)
                for (ptrdiff_t u = 0; u < RNNFAST_NR; u += 4) {
                    __m128 r0 = _mm_loadu_ps(src + u * ldb + k), r1 = _mm_loadu_ps(src + (u + 1) * ldb + k);
                    __m128 r2 = _mm_loadu_ps(src + (u + 2) * ldb + k), r3 = _mm_loadu_ps(src + (u + 3) * ldb + k);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  /* r_j = columns u .. u+3 at k + j */
                    _mm_storeu_ps(d + k * RNNFAST_NR + u, r0);
                    _mm_storeu_ps(d + (k + 1) * RNNFAST_NR + u, r1);
                    _mm_storeu_ps(d + (k + 2) * RNNFAST_NR + u, r2);
                    _mm_storeu_ps(d + (k + 3) * RNNFAST_NR + u, r3);
                }
        }
#endif
        for (ptrdiff_t u = 0; u < cols; u++)
            for (ptrdiff_t kk = k; kk < kc; kk++)
                d[kk * RNNFAST_NR + u] = src[u * ldb + kk];
    }
}

/* 1 where the panels go two at a time through the AVX-512 kernel: chosen once, at import
 * (``rnnfast_select_wide_kernel``, from ``RNNFAST_ISA``); the bits are the same either way. */
static int rnnfast_use_avx512 = 0;

static inline int rnnfast_select_wide_kernel(int on)
{
#if RNNFAST_PACKED_GEMM && RNNFAST_HAVE_AVX512_KERNEL
    __builtin_cpu_init();
    rnnfast_use_avx512 = on && __builtin_cpu_supports("avx512f");
#else
    (void)on;
    rnnfast_use_avx512 = 0;
#endif
    rnnfast_mr = rnnfast_use_avx512 ? rnnfast_mr_wanted : RNNFAST_MR;
    return rnnfast_use_avx512;
}

/* Slivers of ``rows`` (12) where the AVX-512 kernel is on, else of 6: chosen once, at import
 * (``rnnfast._core.dispatch``), and kept while the kernel is switched off and on; returns the height in use.
 * On a core with two 512-bit FMA units a 12-row sliver's 24 accumulators keep both busy where 6 rows' 12 did
 * not (bench/RESULTS.md); on one with a single unit (Zen 4) the 6-row kernel is as fast or faster.  The bits
 * are the same either way. */
static inline int rnnfast_select_sliver_rows(int rows)
{
    rnnfast_mr_wanted = rows == RNNFAST_MR_MAX ? RNNFAST_MR_MAX : RNNFAST_MR;
    rnnfast_mr = rnnfast_use_avx512 ? rnnfast_mr_wanted : RNNFAST_MR;
    return rnnfast_mr;
}

/* Tests only: slivers of ``rows`` (12, else 6) whichever kernel is on, so that a machine without AVX-512 runs the
 * 12-row slivers' cut and copies as well, through the 6 x 16 kernel six rows at a time
 * (``rnnfast_ukernel_s_any``).  The next ``rnnfast_select_*`` call undoes it.  The bits are the same either way. */
static inline int rnnfast_force_sliver_rows(int rows)
{
    rnnfast_mr = rows == RNNFAST_MR_MAX ? RNNFAST_MR_MAX : RNNFAST_MR;
    return rnnfast_mr;
}

#if RNNFAST_PACKED_GEMM && RNNFAST_HAVE_AVX512_KERNEL
/* The C rows of the sliver after this one (rows r0 .. r0+rows of both panels' columns), into L2 while this
 * sliver's kernel runs.  C's rows lie ldc apart (a page or more from 1024 columns on), so no hardware prefetcher
 * follows them; where C outgrows L2 (the all-step products from a few thousand rows on), the kernel's own
 * early requests for its rows (``RNNFAST_UK2_C_START``) then wait on memory.  Asked for a sliver ahead, they come
 * from L2 instead.  Only where the caller says C is far (``c_ahead``): in a step's product, with its few slivers,
 * the same requests made the call slower (bench/RESULTS.md, stop 52).  12-row slivers only, as the kernel's own
 * requests. */
RNNFAST_TARGET_AVX512 static inline void rnnfast_prefetch_c_rows(const float *c0, const float *c1, ptrdiff_t ldc,
                                                                 int rows)
{
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c0 + r * ldc), _MM_HINT_T1);
        _mm_prefetch((const char *)(c1 + r * ldc), _MM_HINT_T1);
    }
}

/* ``rnnfast_slivers_times_panels_s`` on the AVX-512 kernel, one function per sliver height MS: panels p and
 * p+1 together, a last odd panel on the 6 x 16 kernel.  The next two panels are asked for as the single-panel
 * loop asks for one. */
#define RNNFAST_PANEL_PAIRS(MS)                                                                                   \
RNNFAST_TARGET_AVX512 static void rnnfast_slivers_times_panel_pairs##MS##_s(                                      \
    ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t k0, ptrdiff_t K, const float *slivers, const float *panels,             \
    ptrdiff_t panel_stride, ptrdiff_t npanels, ptrdiff_t per_group, ptrdiff_t group_stride, float *c,             \
    ptrdiff_t ldc, const float *init, int c_ahead)                                                                \
{                                                                                                                 \
    ptrdiff_t nslivers = rnnfast_sliver_count(mc);                                                                \
    for (ptrdiff_t p = 0; p < npanels; p += 2) {                                                                  \
        int pair = p + 1 < npanels;                                                                               \
        const float *b0 = panels + p * panel_stride + k0 * RNNFAST_NR, *b1 = pair ? b0 + panel_stride : NULL;     \
        float *c0 = c + (p / per_group) * group_stride + (p % per_group) * RNNFAST_NR;                            \
        float *c1 = pair ? c + ((p + 1) / per_group) * group_stride + ((p + 1) % per_group) * RNNFAST_NR : NULL;  \
        const float *init0 = init != NULL ? init + p * RNNFAST_NR : NULL;                                         \
        const float *init1 = init != NULL && pair ? init0 + RNNFAST_NR : NULL;                                    \
        const float *next0 = NULL, *next1 = NULL;                                                                 \
        if (p + 2 < npanels) {                                                                                    \
            next0 = b0 + 2 * panel_stride;                                                                        \
            next1 = p + 3 < npanels ? next0 + panel_stride : NULL;                                                \
        } else if (k0 + RNNFAST_KC < K) {                                                                         \
            next0 = panels + (k0 + RNNFAST_KC) * RNNFAST_NR;                                                      \
            next1 = npanels > 1 ? next0 + panel_stride : NULL;                                                    \
        }                                                                                                         \
        for (ptrdiff_t i = 0; i < nslivers; i++) {                                                                \
            ptrdiff_t r0 = rnnfast_sliver_start(mc, i);                                                           \
            int mr = rnnfast_sliver_rows(mc, i);                                                                  \
            rnnfast_ahead ahead = rnnfast_sliver_ahead(next0, next1, kc, nslivers, i);                            \
            if ((MS) == RNNFAST_MR_MAX && c_ahead && pair && i + 1 < nslivers) {                                  \
                ptrdiff_t r1 = rnnfast_sliver_start(mc, i + 1);                                                   \
                rnnfast_prefetch_c_rows(c0 + r1 * ldc, c1 + r1 * ldc, ldc, rnnfast_sliver_rows(mc, i + 1));     \
            }                                                                                                     \
            if (pair)                                                                                             \
                rnnfast_ukernel2_s_any##MS(mr, kc, slivers + i * MS * kc, b0, b1, c0 + r0 * ldc, c1 + r0 * ldc,   \
                                           ldc, init0, init1, ahead);                                             \
            else                                                                                                  \
                rnnfast_ukernel_s_any(mr, kc, slivers + i * MS * kc, MS, b0, c0 + r0 * ldc, ldc, init0, ahead);   \
        }                                                                                                         \
    }                                                                                                             \
}
RNNFAST_PANEL_PAIRS(6)
RNNFAST_PANEL_PAIRS(12)
#endif

/* C[0:mc, panel columns] += the slivers of one k-block (rows k0 .. k0+kc of the panels); with ``init``
 * (one value per panel column, panels in order: per_group = npanels), C = init + the sums instead.
 * ``c_ahead``: C is far (beyond L2, the all-step products): each sliver's C rows are asked for a sliver
 * ahead (``rnnfast_prefetch_c_rows``).  A prefetch changes no value. */
static inline void rnnfast_slivers_times_panels_s(ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t k0, ptrdiff_t K,
                                                  const float *slivers, const float *panels,
                                                  ptrdiff_t panel_stride, ptrdiff_t npanels, ptrdiff_t per_group,
                                                  ptrdiff_t group_stride, float *c, ptrdiff_t ldc,
                                                  const float *init, int c_ahead)
{
#if RNNFAST_PACKED_GEMM && RNNFAST_HAVE_AVX512_KERNEL
    if (rnnfast_use_avx512 && npanels > 1) {
        if (rnnfast_mr == RNNFAST_MR_MAX)
            rnnfast_slivers_times_panel_pairs12_s(mc, kc, k0, K, slivers, panels, panel_stride, npanels, per_group,
                                                  group_stride, c, ldc, init, c_ahead);
        else
            rnnfast_slivers_times_panel_pairs6_s(mc, kc, k0, K, slivers, panels, panel_stride, npanels, per_group,
                                                 group_stride, c, ldc, init, c_ahead);
        return;
    }
#else
    (void)c_ahead;
#endif
    ptrdiff_t nslivers = rnnfast_sliver_count(mc);
    for (ptrdiff_t p = 0; p < npanels; p++) {
        const float *b = panels + p * panel_stride + k0 * RNNFAST_NR;
        float *cp = c + (p / per_group) * group_stride + (p % per_group) * RNNFAST_NR;
        /* The block that comes next (next panel, or the first panel's next k-block) is asked for
         * into L2 a share per sliver (``rnnfast_ahead``), so the first sliver over it does not wait
         * on L3: the weights of a step, 16 MiB at H = 1024, never stay in L2. */
        const float *next = p + 1 < npanels ? b + panel_stride
                          : k0 + RNNFAST_KC < K ? panels + (k0 + RNNFAST_KC) * RNNFAST_NR : NULL;
        for (ptrdiff_t i = 0; i < nslivers; i++) {
            ptrdiff_t r0 = rnnfast_sliver_start(mc, i);
            rnnfast_ukernel_s_any(rnnfast_sliver_rows(mc, i), kc, slivers + i * rnnfast_mr * kc, rnnfast_mr, b,
                                  cp + r0 * ldc, ldc,
                                  init != NULL ? init + p * RNNFAST_NR : NULL,
                                  rnnfast_sliver_ahead(next, NULL, kc, nslivers, i));
        }
    }
}

/* C[0:m, panel columns] += A[0:m, 0:K] @ panels, for ``npanels`` panels of K x 16 rows,
 * ``panel_stride`` floats apart (K * 16, or more when K is a slice of longer panels).
 * Panel p's 16 columns start at C + (p / per_group) * group_stride + (p % per_group) * 16: the
 * forward step's four gate blocks (per_group panels each), or one run of units in backward.
 *
 * A's rows are copied per k-block into 6-row slivers (row r at k: a[6k + r]): broadcasts then
 * come from one contiguous stream instead of six rows a multiple of 4 KiB apart, which all fall
 * in the same L1 set (H = 1024).  Rows go in groups of RNNFAST_MC so the copy fits the stack. */
static inline void rnnfast_packed_gemm_s(ptrdiff_t m, ptrdiff_t K, const float *a, ptrdiff_t lda,
                                         const float *panels, ptrdiff_t panel_stride, ptrdiff_t npanels,
                                         ptrdiff_t per_group, ptrdiff_t group_stride, float *c, ptrdiff_t ldc)
{
    float slivers[RNNFAST_MC * RNNFAST_KC];
    for (ptrdiff_t m0 = 0; m0 < m; m0 += RNNFAST_MC) {
        ptrdiff_t mc = m - m0 < RNNFAST_MC ? m - m0 : RNNFAST_MC;
        for (ptrdiff_t k0 = 0; k0 < K; k0 += RNNFAST_KC) {
            ptrdiff_t kc = K - k0 < RNNFAST_KC ? K - k0 : RNNFAST_KC;
            rnnfast_copy_slivers_s(0, mc, kc, a + m0 * lda + k0, lda, slivers);
            rnnfast_slivers_times_panels_s(mc, kc, k0, K, slivers, panels, panel_stride, npanels, per_group,
                                           group_stride, c + m0 * ldc, ldc, NULL, 0);
        }
    }
}

/* The same product in two halves, for tiles that share their rows of A (a step's unit blocks
 * in backward, where each tile is only 128 columns wide but K = 4H deep, so copying A per tile
 * took ~12% of the micro-kernel's time): ``rnnfast_pack_slivers_s`` copies all of A once, k-block
 * after k-block (block k0 at out + k0 * m6, m6 = m rounded up to whole slivers: ``rnnfast_sliver_floats``), and
 * ``rnnfast_packed_gemm_slivers_s`` runs each tile on the copy.  The arithmetic is the same, so are
 * the bits. */
static inline ptrdiff_t rnnfast_sliver_floats(ptrdiff_t m, ptrdiff_t K)
{
    return rnnfast_sliver_count(m) * rnnfast_mr * K;  /* rows rounded up to whole slivers */
}

static inline void rnnfast_pack_slivers_s(ptrdiff_t m, ptrdiff_t K, const float *a, ptrdiff_t lda, float *out)
{
    ptrdiff_t m6 = rnnfast_sliver_floats(m, 1);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += RNNFAST_KC) {
        ptrdiff_t kc = K - k0 < RNNFAST_KC ? K - k0 : RNNFAST_KC;
        rnnfast_copy_slivers_s(0, m, kc, a + k0, lda, out + k0 * m6);
    }
}

static inline void rnnfast_packed_gemm_slivers_s(ptrdiff_t m, ptrdiff_t K, const float *slivers,
                                                 const float *panels, ptrdiff_t panel_stride, ptrdiff_t npanels,
                                                 ptrdiff_t per_group, ptrdiff_t group_stride, float *c,
                                                 ptrdiff_t ldc)
{
    ptrdiff_t m6 = rnnfast_sliver_floats(m, 1);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += RNNFAST_KC) {
        ptrdiff_t kc = K - k0 < RNNFAST_KC ? K - k0 : RNNFAST_KC;
        rnnfast_slivers_times_panels_s(m, kc, k0, K, slivers + k0 * m6, panels, panel_stride, npanels, per_group,
                                       group_stride, c, ldc, NULL, 0);
    }
}

/* ---- All-step products: C = op(A) @ op(B), any shape, one k-block at a time ----
 *
 * The GEMMs over all N*T rows (input projection, dx, dWx, dWh) are large and run once per call.
 * Through SciPy's OpenBLAS they ran 5-20% below the micro-kernel's speed on the training shapes.
 * ``all_steps.packed_tiled_gemm`` gives each thread a part of C; per k-block the thread packs
 * its columns of op(B) into panels and, group by group, its rows of op(A) into slivers
 * (``rnnfast_copy_slivers_s``, ``rnnfast_pack_panels_s``), then runs
 * ``rnnfast_slivers_times_panels_s``.  Every C element gets the same sequence of additions whatever
 * the part (register sums over a k-block, added to C block after block), so the bits depend only
 * on the shapes. */

/* C[0:mc, 0:w] += slivers @ panel for a last panel narrower than NR columns: the micro-kernel
 * adds into a zeroed block, whose first w columns are added to C (to ``init``, where given).  One
 * definition for both dtypes: ``rnnfast_edge_panel_s`` here, ``_d`` in packed_gemm_f64.h. */
#define RNNFAST_EDGE_PANEL(S, T, NR)                                                                              \
static inline void rnnfast_edge_panel_##S(ptrdiff_t mc, ptrdiff_t kc, const T *slivers, const T *panel,          \
                                          ptrdiff_t w, T *c, ptrdiff_t ldc, const T *init)                       \
{                                                                                                                 \
    T tmp[RNNFAST_MR_MAX * (NR)];                                                                                 \
    for (ptrdiff_t i = 0; i < rnnfast_sliver_count(mc); i++) {                                                    \
        ptrdiff_t r0 = rnnfast_sliver_start(mc, i);                                                               \
        int mr = rnnfast_sliver_rows(mc, i);                                                                      \
        memset(tmp, 0, sizeof(tmp));                                                                              \
        rnnfast_ukernel_##S##_any(mr, kc, slivers + i * rnnfast_mr * kc, rnnfast_mr, panel, tmp, (NR), NULL,      \
                                  rnnfast_no_ahead());                                                            \
        for (ptrdiff_t r = 0; r < mr; r++)                                                                        \
            for (ptrdiff_t u = 0; u < w; u++)                                                                     \
                c[(r0 + r) * ldc + u] = (init != NULL ? init[u] : c[(r0 + r) * ldc + u]) + tmp[r * (NR) + u];     \
    }                                                                                                             \
}
RNNFAST_EDGE_PANEL(s, float, RNNFAST_NR)

#endif
