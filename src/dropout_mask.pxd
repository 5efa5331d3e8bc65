# cython: language_level=3
"""Inverted dropout's mask, element by element: element i is kept where the top 24 bits of
``splitmix64(key + i)`` are at least ``threshold``.  The dropout passes (``training.pyx``) and the layout copies
that drop on the way (``layout.pyx``) share it.  NumPy twin: ``rnnfast._core.counter_rng.dropout_mask``."""
from cython cimport floating
from libc.stdint cimport uint64_t

from zoneout cimport splitmix64


cdef inline floating kept_value(uint64_t key, uint64_t i, uint64_t threshold, floating kept) noexcept nogil:
    """Element i's mask value: ``kept`` (``1 / (1 - p)``) where it is kept, else 0."""
    return kept if (splitmix64(key + i) >> 40) >= threshold else 0
