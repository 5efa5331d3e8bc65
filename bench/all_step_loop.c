/* The all-step products' loop alone (``_packed_part`` in src/all_steps.pxd, without its packing): for each
 * k-block of 256, for each group of 132 rows of A, the group's slivers times all of B's panels
 * (``rnnfast_slivers_times_panels_s`` of src/packed_gemm.h, 12-row slivers, AVX-512), the slivers and panels
 * packed once before the timing.  C is M x N floats: from M = 2240 and N = 2048 on (18 MiB) it outgrows L2 and comes
 * from L3 or memory, as the input product's and the weight gradients' C do in a call; a few hundred rows keep it in
 * L2.  One
 * thread.
 *
 *     gcc -O3 -march=x86-64-v4 -mprefer-vector-width=512 -Isrc bench/all_step_loop.c -o /tmp/all_step_loop
 *     /tmp/all_step_loop M N K [REPS]
 *
 * Prints GF/s (best of REPS passes).  What it measured: bench/RESULTS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "packed_gemm.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

int main(int argc, char **argv) {
    long M = argc > 3 ? atol(argv[1]) : 0, N = argc > 3 ? atol(argv[2]) : 0, K = argc > 3 ? atol(argv[3]) : 0;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    if (M < 1 || N < 32 || N % 32 || K < RNNFAST_KC || K % RNNFAST_KC || reps < 1) {
        fprintf(stderr, "usage: %s M N K [REPS]: M >= 1, N a multiple of 32, K a multiple of %d\n", argv[0],
                RNNFAST_KC);
        return 2;
    }
    if (!rnnfast_select_wide_kernel(1) || rnnfast_select_sliver_rows(RNNFAST_MR_MAX) != RNNFAST_MR_MAX) {
        fprintf(stderr, "this CPU has no AVX-512: the loop times the AVX-512 kernel only\n");
        return 1;
    }
    long kb = RNNFAST_KC, nk = K / kb, groups = (M + RNNFAST_MC - 1) / RNNFAST_MC, npan = N / RNNFAST_NR;
    float *panels = aligned_alloc(64, sizeof(float) * kb * N);
    float *slivers = aligned_alloc(64, sizeof(float) * RNNFAST_MC * kb * groups);
    float *C = aligned_alloc(64, sizeof(float) * M * N), *init = aligned_alloc(64, sizeof(float) * N);
    for (long i = 0; i < kb * N; i++) panels[i] = (i % 5) * 0.01f;
    for (long i = 0; i < RNNFAST_MC * kb * groups; i++) slivers[i] = (i % 7) * 0.01f;
    for (long i = 0; i < N; i++) init[i] = 0.1f;
    memset(C, 0, sizeof(float) * M * N);
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (long k = 0; k < nk; k++)  /* each k-block reuses the same panels: the loop, not the packing */
            for (long g = 0; g < groups; g++) {
                long m0 = g * RNNFAST_MC, mc = M - m0 < RNNFAST_MC ? M - m0 : RNNFAST_MC;
                rnnfast_slivers_times_panels_s(mc, kb, 0, kb, slivers + g * RNNFAST_MC * kb, panels, kb * RNNFAST_NR,
                                               npan, npan, 0, C + m0 * N, N, k == 0 ? init : NULL, 1);
            }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("%ld x %ld x %ld: %.1f GF/s\n", M, N, K, 2.0 * M * N * K / best / 1e9);
    return 0;
}
