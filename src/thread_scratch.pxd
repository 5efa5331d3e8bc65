# cython: language_level=3
"""Per-thread scratch that outlives a call (``thread_scratch.h``): the all-step products' packing buffer and
the step tiles' sliver caches, which a thread used to take from malloc and give back at every call."""

cdef extern from "thread_scratch.h" nogil:
    void* thread_scratch "rnnfast_thread_scratch"(int slot, size_t bytes)
    void scratch_done "rnnfast_scratch_done"(void* block)  # after each thread_scratch: frees it only on MSVC

cdef enum ScratchSlot:
    PRODUCT_PACKING = 0  # ``all_steps._packed_gemm``: every thread's part, taken by the calling thread
    STEP_SLIVERS = 1  # ``microkernel.new_sliver_cache``: each thread of a step loop its own
