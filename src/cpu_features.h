/* Does this CPU run the x86-64-v3 (AVX2 + FMA) twins of the kernels, their AVX-512 micro-kernel, and the
 * x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) twins?  Is it Intel's (whose AVX-512 cores take 12-row slivers)? */
#ifndef RNNFAST_CPU_FEATURES_H
#define RNNFAST_CPU_FEATURES_H
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
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
#else
static int rnnfast_cpu_has_avx2_fma(void) { return 0; }
static int rnnfast_cpu_has_avx512f(void) { return 0; }
static int rnnfast_cpu_has_x86_64_v4(void) { return 0; }
static int rnnfast_cpu_is_intel(void) { return 0; }
#endif
#endif
