/* The packed micro-kernel's register blocking, alone: ours (6 rows x a pair of 16-column panels, the AVX-512
 * kernel of src/packed_gemm.h) against other blockings of R broadcast rows x NB 16-float vectors, on one k-block
 * (K = 256) of a 336 x 1536 product, the panels of B in L1 and the slivers of A from L2, as in rnnfast's
 * slivers-times-panels loop.  Each thread runs its own copy.
 *
 *     gcc -O3 -march=x86-64-v4 -mprefer-vector-width=512 -fopenmp -Isrc bench/register_blockings.c -o /tmp/blockings
 *     /tmp/blockings THREADS [REPS]
 *
 * Prints GF/s a thread for each blocking (best of five rounds), then two bounds on one thread's kernel: the
 * library's 12-row kernel on one sliver and one pair of panels, all in L1 (so no load ever misses), and the FMA
 * ceiling (``fma_ceiling.h``: FMAs on registers only).  What it measured: bench/RESULTS.md. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#include "packed_gemm.h"
#include "fma_ceiling.h"
#define M 336
#define N 1536
#define K 256
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

#define DEF(R, NB)                                                                                    \
__attribute__((noinline)) static void uk_##R##x##NB(const float *a, const float *b, float *c, long ldc) { \
    __m512 acc[R][NB];                                                                                \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                              \
        _Pragma("GCC unroll 4") for (int j = 0; j < NB; j++) acc[r][j] = _mm512_setzero_ps();         \
    for (long k = 0; k < K; k++) {                                                                    \
        __m512 bv[NB];                                                                                \
        _Pragma("GCC unroll 4") for (int j = 0; j < NB; j++) bv[j] = _mm512_loadu_ps(b + (k * NB + j) * 16); \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                        \
            __m512 av = _mm512_set1_ps(a[k * R + r]);                                                 \
            _Pragma("GCC unroll 4") for (int j = 0; j < NB; j++) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]); \
        }                                                                                             \
    }                                                                                                 \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                              \
        _Pragma("GCC unroll 4") for (int j = 0; j < NB; j++) {                                        \
            float *p = c + r * ldc + j * 16;                                                          \
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), acc[r][j]));                        \
        }                                                                                             \
}                                                                                                     \
static double run_##R##x##NB(const float *A, const float *B, float *C, int reps) {                    \
    double t0 = now();                                                                                \
    for (int rep = 0; rep < reps; rep++)                                                              \
        for (long p = 0; p < N / (16 * NB); p++)      /* a panel block of B stays in L1 */           \
            for (long s = 0; s < M / R; s++)           /* slivers of A stream from L2 */             \
                uk_##R##x##NB(A + s * R * K, B + p * 16 * NB * K, C + s * R * N + p * 16 * NB, N);    \
    return now() - t0;                                                                                \
}
/* Ours, from the library: panels kc x 16 each, the pair kc * 16 floats apart. */
static double run_ours(const float *A, const float *B, float *C, int reps) {
    double t0 = now();
    for (int rep = 0; rep < reps; rep++)
        for (long p = 0; p < N / 32; p++)
            for (long s = 0; s < M / 6; s++) {
                const float *p0 = B + p * 32 * K;
                float *c = C + s * 6 * N + p * 32;
                rnnfast_ukernel2_s6_6(K, A + s * 6 * K, p0, p0 + 16 * K, c, c + 16, N, NULL, NULL, rnnfast_no_ahead());
            }
    return now() - t0;
}
DEF(8, 2) DEF(12, 2) DEF(14, 2) DEF(4, 3) DEF(6, 3) DEF(8, 3) DEF(4, 4) DEF(6, 4)
/* The library's 12 x 32 kernel on one sliver and one pair of panels, both in L1 (12 + 32 KiB of a 48 KiB L1):
 * what it does when no load misses. */
static double run_ours_in_l1(const float *A, const float *B, float *C, int reps) {
    double t0 = now();
    for (long rep = 0; rep < (long)reps * (M / 12) * (N / 32); rep++)
        rnnfast_ukernel2_s12_12(K, A, B, B + 16 * K, C, C + 16, N, NULL, NULL, rnnfast_no_ahead());
    return now() - t0;
}
typedef double (*runner)(const float *, const float *, float *, int);
static const struct { const char *name; runner f; } V[] = {
    {"6x32 (ours)", run_ours}, {"8x32", run_8x2}, {"12x32", run_12x2}, {"14x32", run_14x2}, {"4x48", run_4x3},
    {"6x48", run_6x3}, {"8x48", run_8x3}, {"4x64", run_4x4}, {"6x64", run_6x4},
    {"12x32 lib, L1", run_ours_in_l1}};
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 60, rounds = 5;
    int nv = sizeof V / sizeof V[0];
    double best[16][8];
    #pragma omp parallel num_threads(threads)
    {
        float *A = aligned_alloc(64, sizeof(float) * M * K), *B = aligned_alloc(64, sizeof(float) * N * K);
        float *C = aligned_alloc(64, sizeof(float) * M * N);
        for (long i = 0; i < M * K; i++) A[i] = (i % 7) * 0.01f;
        for (long i = 0; i < N * K; i++) B[i] = (i % 5) * 0.01f;
        memset(C, 0, sizeof(float) * M * N);
        for (int round = 0; round < rounds; round++)
            for (int v = 0; v < nv; v++) {
                #pragma omp barrier
                double t = V[v].f(A, B, C, reps);
                #pragma omp barrier
                #pragma omp master
                best[v][round] = t;
            }
        free(A); free(B); free(C);
    }
    double flops = 2.0 * M * N * K * reps * threads;
    for (int v = 0; v < nv; v++) {
        double b = best[v][0];
        for (int r = 1; r < rounds; r++) if (best[v][r] < b) b = best[v][r];
        printf("threads %2d  %-11s %6.1f GF/s (all threads)  %6.1f per thread\n", threads, V[v].name, flops / b / 1e9,
               flops / b / 1e9 / threads);
    }
    double ceiling = 0;
    for (int round = 0; round < rounds; round++) {
        double t0 = now(), flops_done = rnnfast_fma_loop(100000000L, 0), t = now() - t0;
        if (flops_done / t > ceiling) ceiling = flops_done / t;
    }
    printf("threads  1  FMA ceiling  %6.1f GF/s (registers only)\n", ceiling / 1e9);
    return 0;
}
