# cython: language_level=3
"""How many threads a parallel region takes."""


cdef inline int team(Py_ssize_t tasks, int num_threads) noexcept nogil:
    """Threads for a parallel region of ``tasks`` tasks: no more than there are tasks (idle team
    members would still be woken and wait at every barrier).  Who runs a task never changes its
    arithmetic, so the bits stay the same."""
    if tasks < num_threads:
        return <int>tasks if tasks > 1 else 1
    return num_threads

