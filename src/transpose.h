/* One tile of a matrix transpose, dst (n x m) = src (m x n)^T over src rows
 * [i0, i1) and columns [j0, j1).
 *
 * On x86-64 the tile moves in 4 x 4 (float) or 2 x 2 (double) register
 * blocks: row loads, an in-register shuffle, row stores (SSE2, which every
 * x86-64 CPU has), because one element at a time the strided stores go one
 * per cycle at best (measurements: bench/RESULTS.md); elsewhere the plain
 * loop remains.
 */
#ifndef RNNFAST_TRANSPOSE_H
#define RNNFAST_TRANSPOSE_H

#include <stddef.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define RNNFAST_SSE2_TRANSPOSE 1
#endif

static inline void rnnfast_transpose_tile_f32(const float* s, float* d, ptrdiff_t m, ptrdiff_t n,
                                              ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t j0, ptrdiff_t j1) {
    ptrdiff_t i = i0, j, k;
#ifdef RNNFAST_SSE2_TRANSPOSE
    for (; i + 4 <= i1; i += 4) {
        for (j = j0; j + 4 <= j1; j += 4) {
            __m128 r0 = _mm_loadu_ps(s + (i + 0) * n + j);
            __m128 r1 = _mm_loadu_ps(s + (i + 1) * n + j);
            __m128 r2 = _mm_loadu_ps(s + (i + 2) * n + j);
            __m128 r3 = _mm_loadu_ps(s + (i + 3) * n + j);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d + (j + 0) * m + i, r0);
            _mm_storeu_ps(d + (j + 1) * m + i, r1);
            _mm_storeu_ps(d + (j + 2) * m + i, r2);
            _mm_storeu_ps(d + (j + 3) * m + i, r3);
        }
        for (; j < j1; j++)
            for (k = 0; k < 4; k++)
                d[j * m + i + k] = s[(i + k) * n + j];
    }
#endif
    for (; i < i1; i++)
        for (j = j0; j < j1; j++)
            d[j * m + i] = s[i * n + j];
}

static inline void rnnfast_transpose_tile_f64(const double* s, double* d, ptrdiff_t m, ptrdiff_t n,
                                              ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t j0, ptrdiff_t j1) {
    ptrdiff_t i = i0, j;
#ifdef RNNFAST_SSE2_TRANSPOSE
    for (; i + 2 <= i1; i += 2) {
        for (j = j0; j + 2 <= j1; j += 2) {
            __m128d r0 = _mm_loadu_pd(s + i * n + j);
            __m128d r1 = _mm_loadu_pd(s + (i + 1) * n + j);
            _mm_storeu_pd(d + j * m + i, _mm_unpacklo_pd(r0, r1));
            _mm_storeu_pd(d + (j + 1) * m + i, _mm_unpackhi_pd(r0, r1));
        }
        for (; j < j1; j++) {
            d[j * m + i] = s[i * n + j];
            d[j * m + i + 1] = s[(i + 1) * n + j];
        }
    }
#endif
    for (; i < i1; i++)
        for (j = j0; j < j1; j++)
            d[j * m + i] = s[i * n + j];
}

#endif
