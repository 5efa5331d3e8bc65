/* The AVX2 micro-kernel on a step's product cut into slivers of given heights: M = the heights' sum rows times N
 * columns of panels, one k-block of 256, the panels (N x 256, 1 MiB at N = 1024) streamed as a step streams its
 * weights, one thread.  Compares the ways of cutting the same rows (``rnnfast_sliver_start`` in src/packed_gemm.h):
 * 16 rows as 6, 6, 4 or 6, 5, 5.  The copies into slivers are not timed.
 *
 *     gcc -O3 -march=x86-64-v3 -Isrc bench/sliver_heights.c -o /tmp/sliver_heights
 *     /tmp/sliver_heights N ROUNDS HEIGHT...
 *
 * Prints the median GF/s and microseconds of a product over ROUNDS rounds of 20.  What it measured:
 * bench/RESULTS.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "packed_gemm.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int by_value(const void *x, const void *y) { double a = *(const double *)x, b = *(const double *)y; return (a > b) - (a < b); }

int main(int argc, char **argv)
{
    long N = argc > 3 ? atol(argv[1]) : 0, K = RNNFAST_KC, M = 0;
    int rounds = argc > 3 ? atoi(argv[2]) : 0, nh = argc - 3, h[64];
    if (N < RNNFAST_NR || N % RNNFAST_NR || rounds < 1 || nh < 1 || nh > 64) {
        fprintf(stderr, "usage: %s N ROUNDS HEIGHT...: N a multiple of %d, 1 to 64 heights of 1 to 6\n", argv[0],
                RNNFAST_NR);
        return 2;
    }
    for (int i = 0; i < nh; i++) {
        h[i] = atoi(argv[3 + i]);
        if (h[i] < 1 || h[i] > 6) {
            fprintf(stderr, "a sliver holds 1 to 6 rows; got %d\n", h[i]);
            return 2;
        }
        M += h[i];
    }
    long npan = N / RNNFAST_NR;
    float *panels = aligned_alloc(64, sizeof(float) * K * N), *sl = aligned_alloc(64, sizeof(float) * 6 * K * nh);
    float *C = aligned_alloc(64, sizeof(float) * M * N);
    for (long i = 0; i < K * N; i++) panels[i] = (i % 5) * 0.01f;
    for (long i = 0; i < 6 * K * nh; i++) sl[i] = (i % 7) * 0.01f;
    memset(C, 0, sizeof(float) * M * N);
    double *t = malloc(sizeof(double) * rounds);
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int s = 0; s < 20; s++)
            for (long p = 0; p < npan; p++) {
                const float *b = panels + p * K * RNNFAST_NR, *next = p + 1 < npan ? b + K * RNNFAST_NR : NULL;
                long r0 = 0;
                for (int i = 0; i < nh; i++) {
                    rnnfast_ahead ahead = rnnfast_sliver_ahead(next, NULL, K, nh, i);
                    rnnfast_ukernel_s_six(h[i], K, sl + i * 6 * K, 6, b, C + r0 * N + p * RNNFAST_NR, N, NULL, ahead);
                    r0 += h[i];
                }
            }
        t[r] = (now() - t0) / 20;
    }
    qsort(t, rounds, sizeof(double), by_value);
    printf("M=%ld N=%ld heights", M, N);
    for (int i = 0; i < nh; i++) printf(" %d", h[i]);
    printf(": %.1f GF/s (%.1f us)\n", 2.0 * M * N * K / t[rounds / 2] / 1e9, t[rounds / 2] * 1e6);
    return 0;
}
