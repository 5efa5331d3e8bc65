/* Branch-free exp, sigmoid and tanh that the compiler can vectorize.
 *
 * The gate loops call these once per gate per unit per step; glibc's scalar
 * expf/tanhf cost more than all the GEMMs at H >= 128.  These use the classic
 * Cephes range reduction and polynomials (exp(x) = 2^n * exp(r), |r| <= ln2/2),
 * written without branches (both tanh forms are computed and one is selected),
 * so a loop over units becomes SIMD code.
 *
 * Measured error bounds (tests/test_fastmath.py checks them against NumPy over
 * a dense grid, relative error):
 *   float:  exp <= 2 ulp, sigmoid <= 3 ulp, tanh <= 3 ulp  (ulp = 2^-23 relative)
 *   double: exp <= 2 ulp, sigmoid <= 3 ulp, tanh <= 3 ulp  (ulp = 2^-52 relative)
 * Inputs of exp are clamped to the range where the result is a normal number
 * (sigmoid and tanh saturate there anyway); +-inf saturate; NaN gives NaN
 * (the polynomial carries it) and no undefined behaviour: the exponent
 * arithmetic is unsigned.
 */
#ifndef RNNFAST_FASTMATH_H
#define RNNFAST_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float rnnfast_expf(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float kk = x * 1.44269504088896341f + magic;
    float k = kk - magic;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float z = r * r;
    float y = (((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r
                 + 4.1665795894E-2f) * r + 1.6666665459E-1f) * r + 5.0000001201E-1f) * z + r + 1.0f;
    uint32_t bits_kk, bits_magic, bits; /* unsigned: NaN's bits must not overflow a signed shift (UB) */
    memcpy(&bits_kk, &kk, sizeof bits_kk);
    memcpy(&bits_magic, &magic, sizeof bits_magic);
    bits = (bits_kk - bits_magic + 127u) << 23; /* 2^n as a float */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline double rnnfast_exp(double x) {
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    double kk = x * 1.4426950408889634074 + magic;
    double k = kk - magic;
    double r = x - k * 6.93145751953125E-1;
    r = r - k * 1.42860682030941723212E-6;
    double rr = r * r;
    double px = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr
                     + 9.99999999999999999910E-1);
    double qx = ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr
                 + 2.27265548208155028766E-1) * rr + 2.00000000000000000009E0;
    double y = 1.0 + 2.0 * (px / (qx - px));
    uint64_t bits_kk, bits_magic, bits;
    memcpy(&bits_kk, &kk, sizeof bits_kk);
    memcpy(&bits_magic, &magic, sizeof bits_magic);
    bits = (bits_kk - bits_magic + 1023u) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float rnnfast_sigmoidf(float x) { return 1.0f / (1.0f + rnnfast_expf(-x)); }
static inline double rnnfast_sigmoid(double x) { return 1.0 / (1.0 + rnnfast_exp(-x)); }

static inline float rnnfast_tanhf(float x) {
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    /* |x| < 0.625: odd polynomial, no cancellation near 0 */
    float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z
                    + 1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    float big = 1.0f - 2.0f / (rnnfast_expf(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

static inline double rnnfast_tanh(double x) {
    double ax = x < 0.0 ? -x : x;
    double z = x * x;
    double small = x + x * z * ((-9.64399179425052238628E-1 * z - 9.92877231001918586564E1) * z
                                - 1.61468768441708447952E3)
                       / (((z + 1.12811678491632931402E2) * z + 2.23548839060100448583E3) * z
                          + 4.84406305325125486048E3);
    double big = 1.0 - 2.0 / (rnnfast_exp(2.0 * ax) + 1.0);
    big = x < 0.0 ? -big : big;
    return ax < 0.625 ? small : big;
}

#endif
