# cython: language_level=3
"""Ctrl-C inside a kernel call (``interrupt.h``): a count the kernels look at between windows of steps."""
from cpython.exc cimport PyErr_CheckSignals


cdef extern from "interrupt.h" nogil:
    int rnnfast_install_sigint()
    long interrupt_mark "rnnfast_interrupt_mark"()
    bint interrupted_since "rnnfast_interrupted_since"(long mark)

# A window: the time steps between two looks at the Ctrl-C count (a window costs one fork/join of
# the thread team): at most ~0.1 s of work at the largest sizes.  A k-slice: the rows of the summed
# dimension per BLAS call of an all-step product (``all_steps.tiled_gemm``), for the same reason.
cdef enum:
    STEPS_PER_WINDOW = 16
    K_SLICE = 16384


cdef inline int check_interrupt(long mark) except -1:
    """After a kernel stopped early on Ctrl-C: run Python's handler (KeyboardInterrupt)."""
    if interrupted_since(mark):
        PyErr_CheckSignals()
        raise KeyboardInterrupt("interrupted inside an rnnfast kernel")
    return 0
