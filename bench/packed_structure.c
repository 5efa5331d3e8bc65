/* The structure of the packed micro-kernel's product (src/all_steps.pxd, src/packed_gemm.h) on 2048^3, one
 * private problem a thread: each k-block's panels of B packed, the rows of A copied into 6-row slivers in groups
 * of MC rows, and each pair of panels times the group's slivers (the 6 x 32 AVX-512 kernel), for MC = 132 (ours),
 * 264 and 528, the full width or 512-column blocks, with and without the L2 prefetch of the next pair.
 *
 *     gcc -O3 -march=x86-64-v4 -mprefer-vector-width=512 -fopenmp bench/packed_structure.c -o /tmp/structure
 *     /tmp/structure THREADS
 *
 * Prints GF/s a thread (best of three rounds); compare with OpenBLAS on the same machine in the same run
 * (bench/microkernel_forms.py).  What it measured: bench/RESULTS.md. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#define S 2048
#define KC 256
#define MR 6
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static inline void uk(long kc, const float *a, const float *p0, const float *p1, float *c, long ldc, int first) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(p0 + 16 * k), b1 = _mm512_loadu_ps(p1 + 16 * k);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[k * MR + r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *p = c + r * ldc;
        _mm512_storeu_ps(p, first ? acc[r][0] : _mm512_add_ps(_mm512_loadu_ps(p), acc[r][0]));
        _mm512_storeu_ps(p + 16, first ? acc[r][1] : _mm512_add_ps(_mm512_loadu_ps(p + 16), acc[r][1]));
    }
}
static void gemm(const float *A, const float *B, float *C, long MC, long NC, int prefetch, float *pan, float *sl) {
    for (long k0 = 0; k0 < S; k0 += KC)
        for (long j0 = 0; j0 < S; j0 += NC) {
            long np = NC / 16;
            for (long p = 0; p < np; p++)          /* panels: kc x 16, contiguous */
                for (long k = 0; k < KC; k++)
                    memcpy(pan + (p * KC + k) * 16, B + (k0 + k) * S + j0 + p * 16, 64);
            for (long i0 = 0; i0 < S; i0 += MC) {
                long mc = MC < S - i0 ? MC : S - i0, ns = (mc + MR - 1) / MR;
                for (long s = 0; s < ns; s++)      /* slivers: row r at k -> sl[s][k*6 + r] */
                    for (long r = 0; r < MR; r++) {
                        long row = i0 + s * MR + r;
                        for (long k = 0; k < KC; k++) sl[s * MR * KC + k * MR + r] = row < S ? A[row * S + k0 + k] : 0;
                    }
                long whole = mc / MR;
                for (long p = 0; p < np; p += 2) {
                    const float *p0 = pan + p * KC * 16, *p1 = p0 + KC * 16;
                    if (prefetch && p + 2 < np)
                        for (long q = 0; q < 2 * KC * 16; q += 16) _mm_prefetch((const char *)(p0 + 2 * KC * 16 + q), _MM_HINT_T1);
                    for (long s = 0; s < whole; s++)
                        uk(KC, sl + s * MR * KC, p0, p1, C + (i0 + s * MR) * S + j0 + p * 16, S, k0 == 0);
                }
            }
        }
}
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    long MCs[] = {132, 264, 528, 132, 264, 132}, NCs[] = {2048, 2048, 2048, 512, 512, 2048};
    int pf[] = {1, 1, 1, 1, 1, 0}, nv = 6, rounds = 3;
    double best[8] = {1e9, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9};
#pragma omp parallel num_threads(threads)
    {
        float *A = aligned_alloc(64, 4L * S * S), *B = aligned_alloc(64, 4L * S * S), *C = aligned_alloc(64, 4L * S * S);
        float *pan = aligned_alloc(64, 4L * KC * S), *sl = aligned_alloc(64, 4L * 540 * KC);
        for (long i = 0; i < (long)S * S; i++) { A[i] = (i % 7) * 0.01f; B[i] = (i % 5) * 0.01f; }
        for (int round = 0; round < rounds; round++)
            for (int v = 0; v < nv; v++) {
#pragma omp barrier
                double t0 = now();
                gemm(A, B, C, MCs[v], NCs[v], pf[v], pan, sl);
                double t = now() - t0;
#pragma omp barrier
#pragma omp master
                if (t < best[v]) best[v] = t;
            }
    }
    for (int v = 0; v < nv; v++)
        printf("threads %2d  MC %3ld NC %4ld prefetch %d: %6.1f GF/s per thread\n", threads, MCs[v], NCs[v], pf[v],
               2.0 * S * S * S / best[v] / 1e9);
    return 0;
}
