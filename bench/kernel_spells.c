/* The AVX2 6-row micro-kernel as built (its k loop unrolled, RNNFAST_UNROLL_K in src/packed_gemm.h) against the same
 * loop rolled, on a step's product: M rows in 6-row slivers times N columns of panels, one k-block of 256, the panels
 * (N x 256, 1 MiB at N = 1024) streamed as a step streams its weights.  One thread; the two alternate round by
 * round, and each is split into the machine's quiet and busy thirds by the other's times (a shared machine's
 * spells: bench/busy_spells.py).  float32, or float64 (``d``) on its own kernel (src/packed_gemm_f64.h).
 *
 *     gcc -O3 -march=x86-64-v3 -Isrc bench/kernel_spells.c -o /tmp/kernel_spells
 *     /tmp/kernel_spells M N ROUNDS STEPS [d]
 *
 * Prints GF/s: the median, and the medians of the quiet and of the busy third.  What it measured: bench/RESULTS.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "packed_gemm_f64.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int by_value(const void *x, const void *y) { double a = *(const double *)x, b = *(const double *)y; return (a > b) - (a < b); }

/* the kernels' loops as they were, without RNNFAST_UNROLL_K */
static void rolled_s(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, const float *init,
                     rnnfast_ahead ahead)
{
    const ptrdiff_t ms = 6;
    RNNFAST_ROWS6(RNNFAST_UK_DECL)
    RNNFAST_ROWS6(RNNFAST_UK_PREFETCH_C)
    RNNFAST_AHEAD_START
#pragma GCC unroll 1
    for (ptrdiff_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b + 16 * k);
        __m256 b1 = _mm256_loadu_ps(b + 16 * k + 8);
        RNNFAST_AHEAD_STEP
        RNNFAST_ROWS6(RNNFAST_UK_FMA)
    }
    RNNFAST_ROWS6(RNNFAST_UK_STORE)
}

static void rolled_d(ptrdiff_t kc, const double *a, const double *b, double *c, ptrdiff_t ldc, const double *init,
                     rnnfast_ahead ahead)
{
    const ptrdiff_t ms = 6;
    RNNFAST_ROWS6(RNNFAST_UKD_DECL)
    RNNFAST_ROWS6(RNNFAST_UKD_PREFETCH_C)
    RNNFAST_AHEAD_START
#pragma GCC unroll 1
    for (ptrdiff_t k = 0; k < kc; k++) {
        __m256d b0 = _mm256_loadu_pd(b + 8 * k);
        __m256d b1 = _mm256_loadu_pd(b + 8 * k + 4);
        RNNFAST_AHEAD_STEP
        RNNFAST_ROWS6(RNNFAST_UKD_FMA)
    }
    RNNFAST_ROWS6(RNNFAST_UKD_STORE)
}

int main(int argc, char **argv)
{
    long M = argc > 4 ? atol(argv[1]) : 0, N = argc > 4 ? atol(argv[2]) : 0, K = RNNFAST_KC;
    int rounds = argc > 4 ? atoi(argv[3]) : 0, steps = argc > 4 ? atoi(argv[4]) : 0, dbl = argc > 5 && argv[5][0] == 'd';
    long nr = dbl ? RNNFAST_NR_D : RNNFAST_NR;
    if (M < 6 || M % 6 || N < nr || N % nr || rounds < 3 || steps < 1) {
        fprintf(stderr, "usage: %s M N ROUNDS STEPS [d]: M a multiple of 6, N of %ld, ROUNDS >= 3\n", argv[0], nr);
        return 2;
    }
    size_t item = dbl ? sizeof(double) : sizeof(float);
    long npan = N / nr, nsl = M / 6;
    char *panels = aligned_alloc(64, item * K * N), *sl = aligned_alloc(64, item * M * K), *C = aligned_alloc(64, item * M * N);
    for (long i = 0; i < K * N; i++) dbl ? (((double *)panels)[i] = (i % 5) * 0.01) : (((float *)panels)[i] = (i % 5) * 0.01f);
    for (long i = 0; i < M * K; i++) dbl ? (((double *)sl)[i] = (i % 7) * 0.01) : (((float *)sl)[i] = (i % 7) * 0.01f);
    memset(C, 0, item * M * N);
    double *t = malloc(sizeof(double) * rounds * 2);
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < 2; v++) {
            double t0 = now();
            for (int s = 0; s < steps; s++)
                for (long p = 0; p < npan; p++) {
                    const char *b = panels + item * p * K * nr, *next = p + 1 < npan ? b + item * K * nr : NULL;
                    for (long i = 0; i < nsl; i++) {
                        const char *a = sl + item * i * 6 * K;
                        char *c = C + item * (i * 6 * N + p * nr);
                        rnnfast_ahead ahead = rnnfast_sliver_ahead((const float *)next, NULL, K, nsl, i);
                        if (dbl && v == 0)
                            rnnfast_ukernel_d6_6(K, (const double *)a, (const double *)b, (double *)c, N, NULL, ahead);
                        else if (dbl)
                            rolled_d(K, (const double *)a, (const double *)b, (double *)c, N, NULL, ahead);
                        else if (v == 0)
                            rnnfast_ukernel_s6_6(K, (const float *)a, (const float *)b, (float *)c, N, NULL, ahead);
                        else
                            rolled_s(K, (const float *)a, (const float *)b, (float *)c, N, NULL, ahead);
                    }
                }
            t[2 * r + v] = (now() - t0) / steps;
        }
    double flops = 2.0 * M * N * K, *own = malloc(sizeof(double) * rounds), *other = malloc(sizeof(double) * rounds);
    double *sorted = malloc(sizeof(double) * rounds), *quiet = malloc(sizeof(double) * rounds), *busy = malloc(sizeof(double) * rounds);
    printf("%s, %ld x %ld x %ld, %d rounds:\n", dbl ? "float64" : "float32", M, N, K, rounds);
    for (int v = 0; v < 2; v++) {
        int nq = 0, nb = 0;
        for (int r = 0; r < rounds; r++) {
            own[r] = t[2 * r + v];
            other[r] = t[2 * r + 1 - v];
        }
        memcpy(sorted, other, sizeof(double) * rounds);
        qsort(sorted, rounds, sizeof(double), by_value);
        for (int r = 0; r < rounds; r++) {
            if (other[r] <= sorted[rounds / 3]) quiet[nq++] = own[r];
            if (other[r] >= sorted[2 * rounds / 3]) busy[nb++] = own[r];
        }
        qsort(own, rounds, sizeof(double), by_value);
        qsort(quiet, nq, sizeof(double), by_value);
        qsort(busy, nb, sizeof(double), by_value);
        printf("  %-8s median %5.1f GF/s  quiet %5.1f  busy %5.1f\n", v == 0 ? "as built" : "rolled",
               flops / own[rounds / 2] / 1e9, flops / quiet[nq / 2] / 1e9, flops / busy[nb / 2] / 1e9);
    }
    return 0;
}
