"""Argument checks shared by every public entry point (kernels and reference).

Everything a kernel relies on is established here, before any ``nogil`` code:
types, dtypes, shapes, finiteness, ``lengths`` and the 32-bit BLAS limits.
Errors name the argument and say what was expected and what came.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .buffers import count_nonfinite

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
BLAS_INT_MAX = 2**31 - 1


def check_float_array(name: str, a, ndim: int, layout: str, dtype: Optional[np.dtype] = None,
                      dtype_of: str = "x") -> np.ndarray:
    """``a`` must be a float32/float64 ndarray of ``ndim`` dimensions (and ``dtype``, that of the
    argument ``dtype_of``, if given)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of shape {layout}; got {type(a).__name__}")
    if a.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{name} has dtype {a.dtype}; expected float32 or float64")
    if not a.dtype.isnative:
        raise TypeError(f"{name} has non-native byte order ({a.dtype.str}); expected native "
                        f"{a.dtype.newbyteorder('=').name}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}; expected {dtype} (the dtype of {dtype_of}): dtypes may not "
                        "be mixed")
    if a.ndim != ndim:
        raise ValueError(f"{name} has {a.ndim} dimension(s), shape {a.shape}; expected {ndim}: {layout}")
    if not a.flags.aligned:  # the kernels read whole floats: an aligned copy (reading unaligned ones is UB in C)
        a = np.array(a, copy=True)
    return a


def check_shape(name: str, a: np.ndarray, expected: Tuple[int, ...], layout: str) -> None:
    if a.shape != tuple(expected):
        raise ValueError(f"{name} has shape {a.shape}; expected {tuple(expected)} = {layout}")


def check_finite(name: str, a: np.ndarray, where: str = "", num_threads: int = 1) -> None:
    """ValueError unless every value of ``a`` is finite.  A C-contiguous array is checked by the compiled
    pass (``buffers.count_nonfinite``) on ``num_threads`` threads: the weights' check in NumPy took most of
    the time around a small call's kernel on 16 cores."""
    if not a.size:
        return
    if a.flags.c_contiguous and a.flags.aligned and a.dtype in FLOAT_DTYPES and a.dtype.isnative:
        bad = count_nonfinite(a, num_threads)
    else:
        bad = not np.isfinite(a).all()
    if bad:
        raise ValueError(f"{name} contains NaN or Inf{where}; expected finite values")


def check_lengths(lengths, N: int, T: int) -> Optional[np.ndarray]:
    """``lengths``: None, or integers of shape (N,) in 1..T.  Returned as intp (None if absent)."""
    if lengths is None:
        return None
    if not isinstance(lengths, np.ndarray):
        raise TypeError(f"lengths must be a numpy.ndarray of integers, shape (N,) = ({N},); got {type(lengths).__name__}")
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths has dtype {lengths.dtype}; expected an integer dtype")
    if lengths.shape != (N,):
        raise ValueError(f"lengths has shape {lengths.shape}; expected ({N},) = (N,)")
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must lie in 1..T = 1..{T}; got values from {lengths.min()} to {lengths.max()}")
    return np.require(lengths, dtype=np.intp, requirements=["C", "A"])  # contiguous and aligned


def padding_mask(N: int, T: int, lengths: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Boolean (N, T), True at valid steps; None when nothing is padded."""
    if lengths is None or (N and lengths.min() == T):
        return None
    return np.arange(T)[None, :] < lengths[:, None]


def zero_padded(a: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """A copy of ``a`` (N, T, ...) with padded steps set to zero, or ``a`` itself if none are."""
    if mask is None:
        return a
    out = np.array(a, copy=True)
    out[~mask] = 0
    return out


def check_blas_sizes(N: int, T: int, D: int, GH: int) -> None:
    """The kernels call 32-bit-integer BLAS: every dimension and leading dimension must fit."""
    if N * T > BLAS_INT_MAX:
        raise ValueError(f"x has N*T = {N * T} rows; the BLAS limit is {BLAS_INT_MAX}")
    if D > BLAS_INT_MAX:
        raise ValueError(f"x has D = {D}; the BLAS limit is {BLAS_INT_MAX}")
    if GH > BLAS_INT_MAX:
        raise ValueError(f"Wh has {GH} gate columns; the BLAS limit is {BLAS_INT_MAX}")


@functools.lru_cache(maxsize=1)
def physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not reported here: no limit
        return 1 << 62


def check_memory(who: str, N: int, T: int, D: int, H: int, gates: int, dtype: np.dtype) -> None:
    """Refuse, before allocating, a call whose outputs and cache (about N*T*(D + (G+3)*H)
    elements) could not fit in this machine's memory at all."""
    need = np.dtype(dtype).itemsize * N * (T + 1) * (D + (gates + 3) * H)
    have = physical_memory_bytes()
    if need > have:
        raise MemoryError(f"{who} needs about {need / 2**30:,.0f} GiB for its outputs and cache "
                          f"(N={N}, T={T}, D={D}, H={H}); this machine has {have / 2**30:,.0f} GiB")


@dataclass
class SequenceArgs:
    """Validated arguments of a sequence forward pass."""

    x: np.ndarray  # (N, T, D), padded steps zeroed
    Wx: np.ndarray
    Wh: np.ndarray
    biases: list
    states: list  # each (N, H), zeros where None was given
    lengths: Optional[np.ndarray]  # intp (N,), or None
    mask: Optional[np.ndarray]  # (N, T) valid steps, or None
    N: int
    T: int
    D: int
    H: int
    Whr: Optional[np.ndarray] = None  # the projection LSTM's (H, P)

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype


def check_sequence_forward(
    spec,
    x,
    Wx,
    Wh,
    biases: Sequence[object],
    states: Sequence[Tuple[str, object]],
    lengths,
    check_x_values: bool = True,
    finite: bool = True,
    num_threads: int = 1,
    check_weight_values: bool = True,
) -> SequenceArgs:
    """Validate, for the cell ``spec`` (``rnnfast.cells``), ``x (N, T, D)``, ``Wx (D, G*H)``, ``Wh (H, G*H)``,
    its biases ``(G*H,)`` (named by the spec) and the named states ``(N, H)``.

    ``check_x_values=False``: the caller checks that x is finite at valid steps itself, in the
    pass that copies it (the kernels' time-major copy, ``buffers.time_major``).  ``finite=False``
    (``check_finite=False``) skips every finiteness check: NaN and Inf then flow through the arithmetic.
    ``num_threads``: the threads that check the weights' values.  ``check_weight_values=False``: the caller
    checks Wx and Wh itself, in the passes that pack them (``kernels.prepare_forward``)."""
    gates, gname = spec.gates, spec.gate_size
    biases = list(zip(spec.bias_names, biases))
    x = check_float_array("x", x, 3, "(N, T, D)")
    dtype = x.dtype
    N, T, D = x.shape
    Wh = check_float_array("Wh", Wh, 2, f"(H, {gname})", dtype)
    H = Wh.shape[0]
    if T == 0:
        raise ValueError(f"x has shape {x.shape}: T = 0; expected at least one time step")
    if D == 0:
        raise ValueError(f"x has shape {x.shape}: D = 0; expected at least one input feature")
    if H == 0:
        raise ValueError(f"Wh has shape {Wh.shape}: H = 0; expected at least one hidden unit")
    check_shape("Wh", Wh, (H, gates * H), f"(H, {gname}) with H = Wh.shape[0] = {H}")
    Wx = check_float_array("Wx", Wx, 2, f"(D, {gname})", dtype)
    check_shape("Wx", Wx, (D, gates * H), f"(D, {gname}) with D = x.shape[2], H = Wh.shape[0]")
    checked_biases = check_biases(biases, gates, H, dtype, "x")
    # Sizes before anything is allocated (a missing h0 becomes an (N, H) array of zeros).
    check_blas_sizes(N, T, D, gates * H)
    check_memory(f"{spec.name}_forward", N, T, D, H, gates, dtype)
    checked_states = check_states(states, N, H, dtype, "with N = x.shape[0], H = Wh.shape[0]", finite)
    lengths = check_lengths(lengths, N, T)
    mask = padding_mask(N, T, lengths)
    if check_x_values:
        x = zero_padded(x, mask)
        if finite:
            check_finite("x", x, " at a valid step" if mask is not None else "")
    if finite:
        weights = [("Wx", Wx), ("Wh", Wh)] if check_weight_values else []
        for name, a in [*weights, *[(n, b) for (n, _), b in zip(biases, checked_biases)]]:
            check_finite(name, a, num_threads=num_threads)
    return SequenceArgs(x, Wx, Wh, checked_biases, checked_states, lengths, mask, N, T, D, H)


def check_token_input(x, embedding, Wx, finite: bool = True):
    """``x`` as token ids ``(N, T)`` into ``embedding (V, D)`` (the ``embedding=`` keyword of the sequence
    functions): ``(ids, embedding, stand_in)``, ``stand_in`` a zero-size ``(N, T, D)`` view of the embedding's
    dtype that the sequence checks take for x (nothing is gathered here)."""
    embedding = check_float_array("embedding", embedding, 2, "(V, D)")
    V, D = embedding.shape
    if V == 0 or D == 0:
        raise ValueError(f"embedding has shape {embedding.shape}; expected (V, D) with V, D >= 1")
    check_float_array("Wx", Wx, 2, "(D, G)", embedding.dtype, "embedding")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray of token ids, shape (N, T), with embedding; got "
                        f"{type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}; expected (N, T) token ids (x with embedding)")
    ids = check_labels("x", x, x.shape, V, what="integer token ids (x with embedding)")
    if finite:
        check_finite("embedding", embedding)
    return ids, embedding, np.broadcast_to(np.zeros((), embedding.dtype), (*x.shape, D))


def check_biases(biases, gates: int, H: int, dtype: np.dtype, dtype_of: str) -> list:
    """Named biases, each ``(gates*H,)`` of ``dtype``."""
    gname = f"{gates}H" if gates > 1 else "H"
    out = []
    for name, b in biases:
        b = check_float_array(name, b, 1, f"({gname},)", dtype, dtype_of)
        check_shape(name, b, (gates * H,), f"({gname},) with H = {H}")
        out.append(b)
    return out


def check_projected_weights(Wx, Wh, b, projection, dtype: Optional[np.dtype] = None, finite: bool = True):
    """A projection LSTM's weights: ``Wx (D, 4H)``, ``Wh (P, 4H)``, ``b (4H,)`` and ``projection`` = ``Whr
    (H, P)``, of ``dtype`` (x's; default Wx's) and finite.  Returns ``Wx, Wh, b, Whr``."""
    Wx = check_float_array("Wx", Wx, 2, "(D, 4H)", dtype)
    dtype_of = "x" if dtype is not None else "Wx"
    Whr = check_float_array("projection", projection, 2, "(H, P)", Wx.dtype, dtype_of)
    H, P = Whr.shape
    if H == 0 or P == 0:
        raise ValueError(f"projection has shape {Whr.shape}; expected (H, P) with H, P >= 1")
    check_shape("Wx", Wx, (Wx.shape[0], 4 * H), f"(D, 4H) with H = projection.shape[0] = {H}")
    Wh = check_float_array("Wh", Wh, 2, "(P, 4H)", Wx.dtype, dtype_of)
    check_shape("Wh", Wh, (P, 4 * H), f"(P, 4H) with P = projection.shape[1] = {P}, H = {H}")
    (b,) = check_biases([("b", b)], 4, H, Wx.dtype, dtype_of)
    if finite:
        for name, a in [("Wx", Wx), ("Wh", Wh), ("b", b), ("projection", Whr)]:
            check_finite(name, a)
    return Wx, Wh, b, Whr


def check_projected_forward(x, Wx, Wh, b, projection, states: Sequence[Tuple[str, object]], lengths,
                            check_x_values: bool = True, finite: bool = True) -> SequenceArgs:
    """Validate a projection LSTM's arguments: ``x (N, T, D)``, the weights (``check_projected_weights``)
    and the states ``h (N, P)``, ``c (N, H)``.  ``SequenceArgs.H`` is H, ``SequenceArgs.Whr`` the projection.
    Flags as ``check_sequence_forward``'s."""
    x = check_float_array("x", x, 3, "(N, T, D)")
    N, T, D = x.shape
    if T == 0:
        raise ValueError(f"x has shape {x.shape}: T = 0; expected at least one time step")
    if D == 0:
        raise ValueError(f"x has shape {x.shape}: D = 0; expected at least one input feature")
    Wx, Wh, b, Whr = check_projected_weights(Wx, Wh, b, projection, x.dtype, finite)
    if Wx.shape[0] != D:
        check_shape("Wx", Wx, (D, Wx.shape[1]), "(D, 4H) with D = x.shape[2]")
    H, P = Whr.shape
    check_blas_sizes(N, T, D, 4 * H)
    check_memory("lstm_forward", N, T, D, H, 5, x.dtype)
    (h_name, h0), (c_name, c0) = states
    h0 = check_states([(h_name, h0)], N, P, x.dtype, "with N = x.shape[0], P = projection.shape[1]", finite)[0]
    c0 = check_states([(c_name, c0)], N, H, x.dtype, "with N = x.shape[0], H = projection.shape[0]", finite)[0]
    lengths = check_lengths(lengths, N, T)
    mask = padding_mask(N, T, lengths)
    if check_x_values:
        x = zero_padded(x, mask)
        if finite:
            check_finite("x", x, " at a valid step" if mask is not None else "")
    return SequenceArgs(x, Wx, Wh, [b], [h0, c0], lengths, mask, N, T, D, H, Whr)


def check_layer_norm(layer_norm, H: int, dtype: np.dtype, finite: bool = True) -> Optional[np.ndarray]:
    """The layer-normalized LSTM's parameters ``(10H,)`` = ``[g_x (4H) | g_h (4H) | g_c (H) | b_c (H)]`` of
    ``dtype`` (None: no layer normalization)."""
    return _check_variant_vector("layer_norm", layer_norm, 10, "[g_x (4H) | g_h (4H) | g_c (H) | b_c (H)]", H,
                                 dtype, finite)


def check_gru_layer_norm(layer_norm, H: int, dtype: np.dtype, finite: bool = True) -> Optional[np.ndarray]:
    """The layer-normalized GRU's gains ``(6H,)`` = ``[g_x (3H) | g_h (3H)]`` of ``dtype`` (None: no layer
    normalization)."""
    return _check_variant_vector("layer_norm", layer_norm, 6, "[g_x (3H) | g_h (3H)]", H, dtype, finite)


def _check_variant_vector(name: str, a, k: int, parts: str, H: int, dtype: np.dtype, finite: bool):
    """An LSTM variant's own weights: None, or a ``(kH,)`` vector of ``dtype`` (x's), laid out as ``parts``."""
    if a is None:
        return None
    a = check_float_array(name, a, 1, f"({k}H,)", dtype, "x")
    check_shape(name, a, (k * H,), f"({k}H,) = {parts} with H = {H}")
    if finite:
        check_finite(name, a)
    return a


def check_zoneout(zoneout, seed):
    """``zoneout`` ``(z_c, z_h)``, rates in [0, 1), or None; ``seed`` a non-negative int (training masks) or None
    (evaluation).  Returns ``(z_c, z_h)`` as floats (or None) and the seed."""
    if zoneout is None:
        if seed is not None:
            raise ValueError("zoneout_seed: given without zoneout=(z_c, z_h)")
        return None, None
    try:
        z_c, z_h = (float(z) for z in zoneout)
    except (TypeError, ValueError):
        raise TypeError(f"zoneout must be a pair of rates (z_c, z_h); got {zoneout!r}") from None
    for name, z in [("z_c", z_c), ("z_h", z_h)]:
        if not 0.0 <= z < 1.0:
            raise ValueError(f"zoneout's {name} must be in [0, 1); got {z}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
                             or seed >= 2 ** 64):
        raise ValueError(f"zoneout_seed must be an int in [0, 2**64) or None; got {seed!r}")
    return (z_c, z_h), (None if seed is None else int(seed))


def check_dropout_rate(p) -> float:
    """A dropout rate: a number in [0, 1)."""
    if isinstance(p, bool) or not (isinstance(p, (int, float, np.floating)) and 0.0 <= p < 1.0):
        raise ValueError(f"dropout p must be a number in [0, 1); got {p!r}")
    return float(p)


def check_dropout_key(key) -> int:
    """A counter-based mask's key (``counter_rng.dropout_mask``): an integer in [0, 2**64)."""
    if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < 2**64:
        raise ValueError(f"key must be an integer in [0, 2**64); got {key!r}")
    return int(key)


def check_input_dropout(input_dropout, embedding) -> Optional[tuple]:
    """``input_dropout`` ``(p, key)`` of the sequence functions, or None: ``(p, key)`` checked, None where
    there is nothing to drop (None or p = 0).  Not with token input (``embedding``): its x is ids."""
    if input_dropout is None:
        return None
    if not isinstance(input_dropout, (tuple, list)) or len(input_dropout) != 2:
        raise TypeError(f"input_dropout must be a pair (p, key); got {input_dropout!r}")
    p, key = check_dropout_rate(input_dropout[0]), check_dropout_key(input_dropout[1])
    if embedding is not None:
        raise ValueError("input_dropout: not with embedding= (token input has ids, not values, to drop)")
    return None if p == 0.0 else (p, key)


def check_peephole(peephole, H: int, dtype: np.dtype, finite: bool = True) -> Optional[np.ndarray]:
    """The peephole LSTM's diagonal weights ``(3H,)`` = ``[p_i | p_f | p_o]`` of ``dtype`` (None: no
    peepholes)."""
    return _check_variant_vector("peephole", peephole, 3, "[p_i | p_f | p_o]", H, dtype, finite)


def check_sequence_backward(dhs, dstates: Sequence[Tuple[str, object]], N: int, T: int, H: int,
                            dtype: np.dtype, mask: Optional[np.ndarray], check_dhs_values: bool = True,
                            finite: bool = True):
    """Validate ``dhs (N, T, H)`` (padded steps are ignored, so zeroed) and final-state gradients ``(N, H)``.
    ``check_dhs_values=False``: the caller checks the valid steps itself, in the pass that the kernels
    need anyway (``buffers.checked_in_place``)."""
    dhs = check_float_array("dhs", dhs, 3, "(N, T, H)", dtype)
    check_shape("dhs", dhs, (N, T, H), "(N, T, H) of the forward pass")
    if check_dhs_values:
        dhs = zero_padded(dhs, mask)
        if finite:
            check_finite("dhs", dhs, " at a valid step" if mask is not None else "")
    return dhs, check_states(dstates, N, H, dtype, "of the forward pass", finite)


def check_states(states: Sequence[Tuple[str, object]], N: int, H: int, dtype: np.dtype, where: str,
                 finite: bool = True) -> list:
    """Each named state (or state gradient) is None -> zeros, or a finite (unless ``finite=False``) ``(N, H)``
    array of ``dtype``."""
    out = []
    for name, s in states:
        if s is None:
            s = np.zeros((N, H), dtype=dtype)
        else:
            s = check_float_array(name, s, 2, "(N, H)", dtype)
            check_shape(name, s, (N, H), f"(N, H) {where}")
            if finite:
                check_finite(name, s)
        out.append(s)
    return out


def check_gradient_out(out, shapes: Sequence[tuple], dtype: np.dtype, reads: Sequence = ()) -> list:
    """``out`` of a backward call: None, or a list or tuple with one entry per weight gradient the call returns
    (``shapes``, in the order returned), each None (a new array) or a writeable C-contiguous ``dtype`` array of
    its shape that shares no memory with what the call reads (``reads``) or with another entry."""
    if out is None:
        return [None] * len(shapes)
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"out must be a list or tuple of {len(shapes)} arrays (or None); got {type(out).__name__}")
    if len(out) != len(shapes):
        raise ValueError(f"out must have {len(shapes)} entries, one per weight gradient returned; got {len(out)}")
    reads = [b for b in reads if isinstance(b, np.ndarray)]
    given = []
    for i, (a, shape) in enumerate(zip(out, shapes)):  # plain loops: a training step calls this per layer
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"out[{i}] must be a numpy array or None; got {type(a).__name__}")
        flags = a.flags
        if a.shape != tuple(shape) or a.dtype != dtype or not flags.c_contiguous or not flags.writeable:
            layout = ", ".join(w for w, ok in (("not C-contiguous", flags.c_contiguous),
                                               ("read-only", flags.writeable)) if not ok)
            raise ValueError(f"out[{i}] must be a writeable C-contiguous {np.dtype(dtype)} array of shape "
                             f"{tuple(shape)}; got {a.dtype} {a.shape}{' (' + layout + ')' if layout else ''}")
        for b in reads:
            if np.may_share_memory(a, b):
                raise ValueError(f"out[{i}] shares memory with an array the backward pass reads (dhs, the states' "
                                 "gradients or the forward pass's weights)")
        for b in given:
            if np.may_share_memory(a, b):
                raise ValueError(f"out[{i}] shares memory with another entry of out")
        given.append(a)
    return list(out)


def check_step_grads(grads, N: int, H: int, dtype: np.dtype, finite: bool = True) -> None:
    """Single-step backward: each named gradient is None or a finite ``(N, H)`` array of ``dtype``."""
    check_states(grads, N, H, dtype, "of the forward step", finite)


def check_step_x(x) -> np.ndarray:
    """Single-step input ``x (N, D)``, returned as a length-1 sequence ``(N, 1, D)``."""
    x = check_float_array("x", x, 2, "(N, D)")
    return x[:, None, :]


def check_flag(name: str, value) -> bool:
    """A boolean switch (``need_grad``, ``check_finite``): True or False, nothing that merely converts."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_need_grad(need_grad) -> bool:
    return check_flag("need_grad", need_grad)


def check_cache(cache, cls, producer: str, spec=None):
    """``cache`` is a ``cls`` (and, with ``spec``, one of that cell's), as ``producer`` returns it."""
    if not isinstance(cache, cls):
        raise TypeError(f"cache must be the cache returned by {producer}; got {type(cache).__name__}")
    if spec is not None and cache.spec is not spec:
        raise TypeError(f"cache must be the cache returned by {producer}; got one of {cache.spec.name}_forward")
    return cache


def check_weights(spec, Wx, Wh, biases, finite: bool = True):
    """Fused weights on their own (layers, steppers) of the cell ``spec``: ``Wx (D, G*H)``, ``Wh (H, G*H)``
    and its biases ``(G*H,)``, of one float dtype (and finite).  Returns ``Wx, Wh, [biases], D, H``."""
    gates, gname = spec.gates, spec.gate_size
    biases = list(zip(spec.bias_names, biases))
    Wh = check_float_array("Wh", Wh, 2, f"(H, {gname})")
    dtype, H = Wh.dtype, Wh.shape[0]
    if H == 0:
        raise ValueError(f"Wh has shape {Wh.shape}: H = 0; expected at least one hidden unit")
    check_shape("Wh", Wh, (H, gates * H), f"(H, {gname}) with H = Wh.shape[0] = {H}")
    Wx = check_float_array("Wx", Wx, 2, f"(D, {gname})", dtype, "Wh")
    D = Wx.shape[0]
    if D == 0:
        raise ValueError(f"Wx has shape {Wx.shape}: D = 0; expected at least one input feature")
    check_shape("Wx", Wx, (D, gates * H), f"(D, {gname}) with H = Wh.shape[0] = {H}")
    out = check_biases(biases, gates, H, dtype, "Wh")
    check_blas_sizes(1, 1, D + H, gates * H)
    if finite:
        for name, a in [("Wx", Wx), ("Wh", Wh), *[(n, b) for (n, _), b in zip(biases, out)]]:
            check_finite(name, a)
    return Wx, Wh, out, D, H


def check_features(name: str, x, size: int, layout: str) -> np.ndarray:
    """``x (..., size)``: a float ndarray whose last axis has ``size`` entries."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of shape {layout}; got {type(x).__name__}")
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name} has shape {x.shape}; expected {layout} with a last axis of {size}")
    return x


def check_labels(name: str, t, shape, num_classes: int, ignore=None, what: str = "integers") -> np.ndarray:
    """Integer class labels of ``shape`` in ``0..num_classes-1`` (or equal to ``ignore``)."""
    if not isinstance(t, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of integers, shape {tuple(shape)}; got {type(t).__name__}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name} has dtype {t.dtype}; expected {what}")
    if t.shape != tuple(shape):
        raise ValueError(f"{name} has shape {t.shape}; expected {tuple(shape)}")
    valid = t if ignore is None else t[t != ignore]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        extra = "" if ignore is None else f" (or {ignore} to ignore)"
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}{extra}; got values from {valid.min()} "
                         f"to {valid.max()}")
    return t
