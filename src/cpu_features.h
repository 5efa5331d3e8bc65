/* Does this CPU run the x86-64-v3 (AVX2 + FMA) twins of the kernels, their AVX-512 micro-kernel, and the
 * x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) twins?  Is it Intel's (whose AVX-512 cores take 12-row slivers)?  How large
 * is a core's L2 (the plan's whole-width row blocks)? */
#ifndef RNNFAST_CPU_FEATURES_H
#define RNNFAST_CPU_FEATURES_H
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <cpuid.h>
static int rnnfast_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int rnnfast_cpu_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
static int rnnfast_cpu_has_x86_64_v4(void) {
    __builtin_cpu_init();
    return rnnfast_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
           && __builtin_cpu_supports("avx512vl");
}
static int rnnfast_cpu_is_intel(void) {
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
}
/* KiB of L2 a core, from CPUID's leaf 0x80000006 (ECX[31:16], on AMD's and Intel's CPUs alike); 0 where the CPU
 * does not say. */
static long rnnfast_cpu_l2_kib(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000006u)
        return 0;
    if (!__get_cpuid(0x80000006u, &a, &b, &c, &d))
        return 0;
    return (long)(c >> 16);
}
#else
static int rnnfast_cpu_has_avx2_fma(void) { return 0; }
static int rnnfast_cpu_has_avx512f(void) { return 0; }
static int rnnfast_cpu_has_x86_64_v4(void) { return 0; }
static int rnnfast_cpu_is_intel(void) { return 0; }
static long rnnfast_cpu_l2_kib(void) { return 0; }
#endif
#endif
