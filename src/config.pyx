# cython: language_level=3
"""Build-time facts of the compiled kernels (is OpenMP in?) and what the CPU can run."""

cdef extern from "omp_helpers.h":
    int rnnfast_openmp_enabled() nogil
    int rnnfast_openmp_version() nogil
    int rnnfast_omp_max_threads() nogil


def openmp_enabled() -> bool:
    """True if the kernels were compiled with OpenMP."""
    return bool(rnnfast_openmp_enabled())


def openmp_version() -> int:
    """The ``_OPENMP`` date macro of the build (0 without OpenMP)."""
    return rnnfast_openmp_version()


def omp_max_threads() -> int:
    """What the OpenMP runtime would use by default (1 without OpenMP)."""
    return rnnfast_omp_max_threads()


cdef extern from "cpu_features.h":
    int rnnfast_cpu_has_avx2_fma() nogil
    int rnnfast_cpu_has_avx512f() nogil
    int rnnfast_cpu_has_x86_64_v4() nogil
    int rnnfast_cpu_is_intel() nogil


def cpu_has_avx2_fma() -> bool:
    """True if this CPU can run the ``*_avx2`` kernel twins (AVX2 and FMA)."""
    return bool(rnnfast_cpu_has_avx2_fma())


def cpu_has_avx512f() -> bool:
    """True if this CPU can run the AVX-512 micro-kernel of the ``*_avx2`` twins."""
    return bool(rnnfast_cpu_has_avx512f())


def cpu_has_x86_64_v4() -> bool:
    """True if this CPU can run the ``*_avx512`` kernel twins (AVX-512 F, BW, CD, DQ and VL)."""
    return bool(rnnfast_cpu_has_x86_64_v4())


def cpu_is_intel() -> bool:
    """True on an Intel x86-64 CPU (``dispatch.sliver_rows``: its AVX-512 cores take 12-row slivers)."""
    return bool(rnnfast_cpu_is_intel())
