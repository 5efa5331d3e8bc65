# cython: language_level=3
"""Zoneout's masks (Krueger et al. 2016): a counter-based generator, so a unit's mask depends on the seed,
the step, the sequence and the unit alone, never on which thread computes it.  NumPy twin:
``rnnfast/reference/zoneout.py`` (``splitmix64``, ``masks``)."""
from libc.stdint cimport uint64_t


cdef inline uint64_t splitmix64(uint64_t z) noexcept nogil:
    z = z + <uint64_t>0x9E3779B97F4A7C15ULL
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline bint zones_out(uint64_t key, uint64_t counter, double rate) noexcept nogil:
    """True where the uniform number of ``counter`` (53 bits of ``splitmix64(key + counter)``) is below ``rate``."""
    return <double>(splitmix64(key + counter) >> 11) * (1.0 / 9007199254740992.0) < rate
