"""The buffers of a kernel call: the arrays the compiled driver reads and writes (``SequenceBuffers``), and
the layout passes between the user's batch-major arrays and the kernels' time-major ones.  No arithmetic
but the finiteness checks folded into the copies."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import training_passes
from .counter_rng import dropout_draw
from .dispatch import kernel_module
from .workspace import pool

_layout = kernel_module("layout")  # the copies and the finiteness checks run 8-16 lanes wide in the twins

# Below this many elements a copy is faster than starting a thread team.
PARALLEL_COPY_MIN = 1 << 16


@dataclass(frozen=True)
class Staircase:
    """Which rows a time-major array gives each step.  Without lengths: N rows a step, ``t*N`` on.  With
    ``lengths`` (ragged batches) the sequences are sorted longest first, stably (``order[i]`` is the user's
    row of sorted row i), and step t's block holds ``active[t-1]`` rows (N for step 0), of which the first
    ``active[t]`` are still running: a step computes only those, the all-step products run over the
    blocks' rows (about ``sum(lengths)``), and the state a sequence ends with stays in its row.  A state
    history has one more block (the final states).  The blocks keep the rows that ended at the step before so
    that a state history's block and a gradient's block pair row for row in the weight gradients; a call that
    keeps no history (inference: per-step states in a ring of two) takes ``running_only`` blocks, of
    ``active[t]`` rows, and its input product computes no row it does not use."""

    N: int
    T: int
    order: Optional[np.ndarray]  # (N,) intp, None when unsorted
    lengths: np.ndarray  # (N,) intp, sorted like the rows
    active: np.ndarray  # (T,) intp, rows running at each step
    offsets: np.ndarray  # (T+1,) intp, first row of each step's block; offsets[T]: rows of a time-major array

    @classmethod
    def make(cls, lengths: Optional[np.ndarray], N: int, T: int, running_only: bool = False) -> "Staircase":
        if lengths is None or (N and lengths.min() == T):
            return _dense_staircase(N, T)
        order = np.argsort(-lengths, kind="stable").astype(np.intp)
        sorted_lengths = np.ascontiguousarray(lengths[order], dtype=np.intp)
        active = (sorted_lengths[None, :] > np.arange(T)[:, None]).sum(axis=1).astype(np.intp)
        sizes = active if running_only else np.concatenate([[N], active[:-1]])
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        return cls(N, T, order, sorted_lengths, active, offsets)

    @property
    def rows(self) -> int:
        """Rows of a time-major array (``x_tm``, ``act``, ``dGx``)."""
        return int(self.offsets[-1])

    @property
    def history_rows(self) -> int:
        """Rows of a state history that keeps every step: the blocks, and the final states' block (not of a
        ``running_only`` staircase, whose blocks have no room for the states of the sequences that ended)."""
        return self.rows + int(self.active[-1])

    def sort(self, a: np.ndarray) -> np.ndarray:
        """A per-sequence array ``(N, ...)`` in the kernels' row order (C-contiguous; a new array)."""
        return np.array(a if self.order is None else a[self.order], order="C")

    def unsort(self, a: np.ndarray) -> np.ndarray:
        """A per-sequence array from the kernels' row order back to the user's (a new array)."""
        if self.order is None:
            return a.copy()
        out = np.empty_like(a)
        out[self.order] = a
        return out

    def final_rows(self, ring: bool):
        """The rows of a state history where the sorted sequences' last states are (each one's last step's
        block, or its slot of the ring of two): an index array, or a slice where all end at step T (a few
        tiny NumPy calls on cold caches cost as much as a step of a small batch)."""
        if self.order is None:
            first = (self.T % 2) * self.N if ring else self.T * self.N
            return slice(first, first + self.N)
        blocks = (self.lengths % 2) * self.N if ring else self.offsets[self.lengths]
        return blocks + np.arange(self.N)


@functools.lru_cache(maxsize=64)
def _dense_staircase(N: int, T: int) -> Staircase:
    """Every row at every step: a training loop repeats its shapes, so it is made once per shape (its arrays
    are read-only)."""
    arrays = [np.full(N, T, dtype=np.intp), np.full(T, N, dtype=np.intp), np.arange(T + 1, dtype=np.intp) * N]
    for a in arrays:
        a.flags.writeable = False
    return Staircase(N, T, None, *arrays)


@dataclass
class SequenceBuffers:
    """Every array a forward or backward kernel call touches (``kernels.forward``/``backward``), C-contiguous
    and of the call's dtype (the staircase's: intp); None where the cell or the path has none.  G = gates * H;
    time-major arrays have ``steps.rows`` rows, in blocks per step; the user's are (N, T, ...)."""

    cell: int  # kernels.CELLS[spec.name]
    reset_after: bool
    relu: bool
    x_tm: Optional[np.ndarray]  # (rows, D), zero past each step's running rows; None: token input (``act`` given)
    Wx: np.ndarray  # (D, G)
    Wh: np.ndarray  # (H, G)
    offsets: np.ndarray  # Staircase.offsets
    active: np.ndarray  # Staircase.active
    order: Optional[np.ndarray]  # Staircase.order
    ring: bool  # inference: per-step histories in a ring of two N-row slots
    hst: np.ndarray  # (history rows, H), or (2N, H) in the ring
    act: np.ndarray  # (rows, G)
    bias_x: Optional[np.ndarray] = None  # (G,) added to x @ Wx: b, or the GRU's bx
    bias_h: Optional[np.ndarray] = None  # (G,) the GRU's bh
    peep: Optional[np.ndarray] = None  # (3H,) the peephole LSTM's diagonal weights
    zoneout: Optional[tuple] = None  # the LSTM with zoneout: (z_c, z_h) ...
    zoneout_key: Optional[int] = None  # ... and splitmix64(seed) in training (None: evaluation)
    cst: Optional[np.ndarray] = None  # like hst: LSTM
    hg: Optional[np.ndarray] = None  # (rows, G) GRU (ring: (2N, G))
    rh: Optional[np.ndarray] = None  # (rows, H) reset-before GRU (ring: (2N, H))
    hs: Optional[np.ndarray] = None  # (N, T, H) forward output
    table: Optional[np.ndarray] = None  # (V, G) token input: embedding @ Wx + bias_x, a row per token ...
    tokens: Optional[np.ndarray] = None  # (rows,) intp ... and each row's token (``time_major_ids``)
    panels: Optional[np.ndarray] = None  # micro-kernel panels of Wh (plan.step_weights == "microkernel")
    weights_packed: bool = False  # forward: ``kernels.prepare_forward`` has filled ``panels``
    blocked: Optional[np.ndarray] = None  # the blocked copy of Wh (plan.step_weights == "blocked")
    WhT: Optional[np.ndarray] = None  # (G, H) backward, BLAS path and the whole-row-block paths (projection: (G, P))
    dhs: Optional[np.ndarray] = None  # (N, T, H)
    dh: Optional[np.ndarray] = None  # (N, H) in: dL/dh_T, out: dL/dh_0
    dc: Optional[np.ndarray] = None
    drh: Optional[np.ndarray] = None  # (N, H) reset-before GRU
    dGx: Optional[np.ndarray] = None  # (rows, G)
    dGh: Optional[np.ndarray] = None  # (rows, G), dGx itself where the two coincide
    dx_tm: Optional[np.ndarray] = None  # (rows, D); None: token input (the caller reads dGx)
    dWx: Optional[np.ndarray] = None
    dWh: Optional[np.ndarray] = None
    dbx: Optional[np.ndarray] = None  # (G,) gradient of bias_x
    dbh: Optional[np.ndarray] = None  # (G,) gradient of bias_h
    dpeep: Optional[np.ndarray] = None  # (3H,) gradient of peep
    token_sums: Optional[np.ndarray] = None  # (V, G) zeros, backward of token input: dGx's rows summed by token
    # the projection LSTM (``kernels.projected_forward``/``backward``); its hst, hs, dhs, dh are P wide
    Whr: Optional[np.ndarray] = None  # (H, P)
    WhrT: Optional[np.ndarray] = None  # (P, H) backward
    mst: Optional[np.ndarray] = None  # (rows, H) o * tanh(c) of every step (ring: (N, H))
    dhst: Optional[np.ndarray] = None  # (rows, P) dL/dh_t of every step
    dm: Optional[np.ndarray] = None  # (N, H) scratch
    zeros: Optional[np.ndarray] = None  # (H,)
    dWhr: Optional[np.ndarray] = None  # (H, P)
    # the layer-normalized LSTM and GRU (``kernels.layer_norm_forward``/``backward``; reference/layer_norm.py)
    ln: Optional[np.ndarray] = None  # (10H,) [g_x | g_h | g_c | b_c]; the GRU's (6H,) [g_x | g_h]
    x_hat: Optional[np.ndarray] = None  # (rows, G) the normalized x @ Wx (training) ...
    x_rstd: Optional[np.ndarray] = None  # (rows,) ... and its 1 / std
    h_hat: Optional[np.ndarray] = None  # (rows, G) the normalized h @ Wh (ring: (N, G)) ...
    h_rstd: Optional[np.ndarray] = None  # (rows,) ...
    c_hat: Optional[np.ndarray] = None  # (rows, H) the normalized c (ring: (N, H)) ...
    c_rstd: Optional[np.ndarray] = None  # (rows,) ...
    dR: Optional[np.ndarray] = None  # (rows, G) at h @ Wh
    dCN: Optional[np.ndarray] = None  # (rows, H) at LN(c)
    dQ: Optional[np.ndarray] = None  # (rows, G) at x @ Wx
    dAH: Optional[np.ndarray] = None  # (rows, G) the GRU's gradient at LN(h @ Wh) * g_h + b_h
    dln: Optional[np.ndarray] = None  # (10H,), the GRU's (6H,)


def _threads_for(a: np.ndarray, num_threads: int) -> int:
    return num_threads if a.size >= PARALLEL_COPY_MIN else 1


def count_nonfinite(a: np.ndarray, num_threads: int) -> int:
    """0 if every value of a C-contiguous float32/float64 array is finite (the compiled pass: NumPy's
    ``isfinite(a).all()`` is one thread and a temporary), on ``num_threads`` threads once it is large."""
    return _layout.count_nonfinite(a.reshape(-1), _threads_for(a, num_threads))


def time_major(name: str, a: np.ndarray, steps: Staircase, mask: Optional[np.ndarray], num_threads: int,
               take, check_finite: bool = True, dropout: Optional[tuple] = None) -> np.ndarray:
    """(N, T, F) -> C-contiguous time-major ``(steps.rows, F)`` copy in an array from ``take(shape, dtype)``
    (a workspace scope's ``take``; a step's rows become contiguous for BLAS), zero past the running rows.  The
    same pass checks that the valid steps are finite (ValueError naming ``name``; unless ``check_finite=False``):
    one read of ``a`` instead of three.  ``dropout`` ``(p, key)``: the copy is of ``a`` times
    ``counter_rng.dropout_mask(key, p, a.shape)``."""
    N, T, F = a.shape
    threads = _threads_for(a, num_threads)
    if dropout is not None and steps.order is not None:  # ragged: the mask's own pass first
        a = _dropped(a, dropout, threads)
    if steps.order is None:
        out = take((T * N, F), a.dtype)  # the pool keeps whole arrays, never views
        bad = _layout.time_major_into(a, out.reshape(T, N, F), steps.lengths, threads, _drawn(dropout))
    else:
        out = take((steps.rows, F), a.dtype)
        bad = _layout.staircase_into(a, out, steps.order, steps.offsets, steps.active, threads)
    if bad and check_finite:
        raise ValueError(f"{name} contains NaN or Inf{' at a valid step' if mask is not None else ''}; "
                         "expected finite values")
    return out


def time_major_ids(ids: np.ndarray, steps: Staircase) -> np.ndarray:
    """Token ids ``(N, T)`` -> ``(steps.rows,)`` intp in the rows of a time-major array (``time_major``'s),
    0 past each step's running rows (those rows' gradients are zero, and 0 is a valid row)."""
    N, T = steps.N, steps.T
    if steps.order is None:
        return np.ascontiguousarray(ids.T, dtype=np.intp).reshape(-1)
    sorted_ids = np.where(steps.lengths[:, None] > np.arange(T), ids[steps.order], 0)
    sizes = np.diff(steps.offsets)  # the rows of each step's block
    in_block = np.arange(N)[:, None] < sizes[None, :]
    return np.ascontiguousarray(sorted_ids.T[in_block.T], dtype=np.intp)


def checked_in_place(name: str, a: np.ndarray, steps: np.ndarray, mask: Optional[np.ndarray],
                     num_threads: int, check_finite: bool = True) -> np.ndarray:
    """A batch-major (N, T, F) sequence that the kernels read in place (``dhs``: only at valid steps, a row
    at a time), C-contiguous (a copy only if it is not), after checking that its valid steps are finite
    (ValueError naming ``name``; unless ``check_finite=False``).  A time-major copy would cost a pass over the array."""
    a = np.ascontiguousarray(a)
    if check_finite and _layout.count_nonfinite_steps(a, steps, _threads_for(a, num_threads)):
        raise ValueError(f"{name} contains NaN or Inf{' at a valid step' if mask is not None else ''}; "
                         "expected finite values")
    return a


def batch_major(a_tm: np.ndarray, steps: Staircase, num_threads: int, dropout: Optional[tuple] = None) -> np.ndarray:
    """Time-major ``(steps.rows, F)`` -> a new C-contiguous (N, T, F) array (``dx``; zero at padded steps),
    copied by the threads: NumPy's one-thread copy took twice as long once the kernel had left ``a_tm`` out
    of cache.  Always a copy: a view would let a user's in-place edit write into a workspace.  ``dropout``
    ``(p, key)``: times ``time_major``'s mask (the gradient of the x it dropped)."""
    N, T, F = steps.N, steps.T, a_tm.shape[1]
    out = pool.output((N, T, F), a_tm.dtype)
    threads = _threads_for(a_tm, num_threads)
    if steps.order is None:
        _layout.batch_major_into(a_tm.reshape(T, N, F), out, threads, _drawn(dropout))
    else:
        _layout.staircase_to_batch(a_tm, out, steps.order, steps.offsets, steps.active, threads)
        if dropout is not None:
            out = _dropped(out, dropout, threads)
    return out


def _drawn(dropout: Optional[tuple]) -> Optional[tuple]:
    """``(p, key)`` -> the layout passes' ``(key, threshold, scale)``."""
    return None if dropout is None else (dropout[1], *dropout_draw(dropout[0]))


def _dropped(a: np.ndarray, dropout: tuple, num_threads: int) -> np.ndarray:
    """``a`` times ``counter_rng.dropout_mask(key, p, a.shape)``, a new array (the ragged layouts' own pass), on
    the call's threads."""
    p, key = dropout
    out = pool.output(a.shape, a.dtype)
    training_passes.dropout_times(key, *dropout_draw(p), np.ascontiguousarray(a), out, num_threads)
    return out


def contiguous(a: np.ndarray, num_threads: int) -> np.ndarray:
    """``a`` as a C-contiguous array: itself, or a copy -- by the blocked transpose when ``a`` is the
    transposed view of a C-contiguous matrix (PyTorch's ``weight_ih.T``), 5-10x NumPy's strided copy."""
    if a.flags.c_contiguous:
        return a
    if a.ndim == 2 and a.T.flags.c_contiguous and a.size >= PARALLEL_COPY_MIN // 16:
        out = np.empty(a.shape, dtype=a.dtype)
        _layout.transpose_into(a.T, out, _threads_for(a, num_threads))
        return out
    return np.ascontiguousarray(a)


def transposed(W: np.ndarray, num_threads: int, take) -> np.ndarray:
    """``W.T`` as a C-contiguous array from ``take(shape, dtype)`` (a blocked copy; NumPy's strided one is
    ~10x slower)."""
    out = take(W.shape[::-1], W.dtype)
    _layout.transpose_into(np.ascontiguousarray(W), out, num_threads)
    return out


def state_history(first: np.ndarray, steps: Staircase, ring: bool, take) -> np.ndarray:
    """A state history (from ``take(shape, dtype)``): every step's block (``steps.history_rows`` rows), or
    the ring of two N-row slots, with the given initial state (the user's rows, sorted) in block 0."""
    st = take((2 * steps.N if ring else steps.history_rows, first.shape[1]), first.dtype)
    st[:steps.N] = first if steps.order is None else first[steps.order]
    return st


def kernel_outputs(N: int, dtype, *shapes, zeros: bool = False):
    """Arrays for the caller that the kernel writes in full (BLAS with beta = 0 reads nothing), so they need
    no memset (``pool.output``); zeros when N = 0, where the kernel does not run, or where asked (``hs`` of a
    ragged batch: the kernel writes the valid steps only)."""
    if not N:
        return [np.zeros(shape, dtype=dtype) for shape in shapes]
    out = [pool.output(shape, dtype) for shape in shapes]
    if zeros:
        for a in out:
            a.fill(0)
    return out


