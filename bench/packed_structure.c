/* The structure of the packed micro-kernel's all-step product on 2048^3, one private problem a thread, run on
 * the library's own code (src/packed_gemm.h, as src/all_steps.pxd calls it): for each k-block, the panels of B's
 * columns packed, then group by group of MC rows, the rows copied into slivers and the slivers times the panels
 * (first k-block: C = 0 + the sums).  MC = RNNFAST_GROUP (ours) against 2x and 4x, the full width against
 * 512-column blocks.
 *
 *     gcc -O3 -march=x86-64-v4 -mprefer-vector-width=512 -fopenmp -Isrc bench/packed_structure.c -o /tmp/structure
 *     /tmp/structure THREADS [SLIVER_ROWS]
 *
 * SLIVER_ROWS: 6 (default) or 12, the heights ``rnnfast._core.dispatch.sliver_rows`` chooses between.
 * Prints GF/s a thread (best of three rounds); compare with OpenBLAS on the same machine in the same run
 * (bench/microkernel_forms.py).  What it measured: bench/RESULTS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <omp.h>
#include "packed_gemm.h"
#define S 2048
#define KC RNNFAST_KC
#define RNNFAST_GROUP RNNFAST_MC /* the all-step products' group of rows (microkernel.pxd's GROUP_ROWS) */
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

static void product(const float *A, const float *B, float *C, long mc_max, long nc, float *panels, float *slivers,
                    const float *zeros) {
    for (long k0 = 0; k0 < S; k0 += KC)
        for (long j0 = 0; j0 < S; j0 += nc) {
            rnnfast_pack_panels_s(0, nc, KC, B + k0 * S + j0, S, panels);
            for (long i0 = 0; i0 < S; i0 += mc_max) {
                long mc = mc_max < S - i0 ? mc_max : S - i0;
                rnnfast_copy_slivers_s(0, mc, KC, A + i0 * S + k0, S, slivers);
                rnnfast_slivers_times_panels_s(mc, KC, 0, KC, slivers, panels, KC * RNNFAST_NR, nc / RNNFAST_NR,
                                               nc / RNNFAST_NR, 0, C + i0 * S + j0, S, k0 == 0 ? zeros : NULL, 1);
            }
        }
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, rounds = 3;
    long MCs[] = {RNNFAST_GROUP, 2 * RNNFAST_GROUP, 4 * RNNFAST_GROUP, RNNFAST_GROUP, 2 * RNNFAST_GROUP};
    long NCs[] = {S, S, S, 512, 512};
    enum { NV = 5 };
    double best[NV];
    for (int v = 0; v < NV; v++) best[v] = 1e9;
    rnnfast_select_wide_kernel(1);
    rnnfast_select_sliver_rows(argc > 2 ? atoi(argv[2]) : RNNFAST_MR);
#pragma omp parallel num_threads(threads)
    {
        float *A = aligned_alloc(64, 4L * S * S), *B = aligned_alloc(64, 4L * S * S);
        float *C = aligned_alloc(64, 4L * S * S);
        float *panels = aligned_alloc(64, 4L * KC * S), *slivers = aligned_alloc(64, 4L * 4 * RNNFAST_GROUP * KC);
        float *zeros = calloc(S, sizeof(float));
        for (long i = 0; i < (long)S * S; i++) { A[i] = (i % 7) * 0.01f; B[i] = (i % 5) * 0.01f; }
        for (int round = 0; round < rounds; round++)
            for (int v = 0; v < NV; v++) {
#pragma omp barrier
                double t0 = now();
                product(A, B, C, MCs[v], NCs[v], panels, slivers, zeros);
                double t = now() - t0;
#pragma omp barrier
#pragma omp master
                if (t < best[v]) best[v] = t;
            }
        free(A); free(B); free(C); free(panels); free(slivers); free(zeros);
    }
    for (int v = 0; v < NV; v++)
        printf("threads %2d  MC %3ld NC %4ld%s: %6.1f GF/s per thread\n", threads, MCs[v], NCs[v],
               v == 0 ? " (ours)" : "       ", 2.0 * S * S * S / best[v] / 1e9);
    return 0;
}
