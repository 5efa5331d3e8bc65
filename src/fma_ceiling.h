/* The machine's arithmetic ceiling: multiply-adds per second of one thread running nothing but
 * independent FMAs on registers, in the widest vectors the CPU has (AVX-512, else AVX2 + FMA).  No
 * GEMM can beat it, so it bounds any claim of "x times faster" (``rnnfast bench`` prints it beside
 * the BLAS GEMM peak).  Twelve accumulators: more than FMA latency x FMA units on any x86 core, so
 * the loop runs at the FMA units' throughput.  Returns the flops done (0 where unmeasured: other
 * compilers and CPUs). */
#ifndef RNNFAST_FMA_CEILING_H
#define RNNFAST_FMA_CEILING_H

#include "cpu_features.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>

/* ``iters`` rounds of 12 FMAs in vectors V of LANES lanes, then the flops done.  The asm barrier keeps the
 * compiler from folding the chains: every FMA must run. */
#define RNNFAST_FMA_RUN(V, SET1, FMA, LANES)                                               \
    {                                                                                     \
        V x = SET1(1.0), m = SET1(0.999999), c = SET1(1e-6);                              \
        V a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x; \
        for (long i = 0; i < iters; i++) {                                                \
            a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c); a3 = FMA(a3, m, c); \
            a4 = FMA(a4, m, c); a5 = FMA(a5, m, c); a6 = FMA(a6, m, c); a7 = FMA(a7, m, c); \
            a8 = FMA(a8, m, c); a9 = FMA(a9, m, c); a10 = FMA(a10, m, c); a11 = FMA(a11, m, c); \
            __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), \
                             "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11)); \
        }                                                                                 \
        V s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;                \
        __asm__ volatile("" : : "x"(s));                                                  \
        return 12.0 * 2 * (LANES) * iters;                                                \
    }

__attribute__((target("avx512f"))) static double rnnfast_fma_loop_avx512(long iters, int wide)
{
    if (wide)
        RNNFAST_FMA_RUN(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, 8)
    RNNFAST_FMA_RUN(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}

__attribute__((target("avx2,fma"))) static double rnnfast_fma_loop_avx2(long iters, int wide)
{
    if (wide)
        RNNFAST_FMA_RUN(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, 4)
    RNNFAST_FMA_RUN(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}

/* ``iters`` rounds of 12 vector FMAs; ``wide``: float64 lanes, else float32.  The flops done. */
static double rnnfast_fma_loop(long iters, int wide)
{
    if (rnnfast_cpu_has_avx512f())
        return rnnfast_fma_loop_avx512(iters, wide);
    if (rnnfast_cpu_has_avx2_fma())
        return rnnfast_fma_loop_avx2(iters, wide);
    return 0.0;
}
#else
static double rnnfast_fma_loop(long iters, int wide) { (void)iters; (void)wide; return 0.0; }
#endif
#endif
