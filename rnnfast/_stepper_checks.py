"""Argument checks of the streaming steppers (fast and reference alike)."""
from __future__ import annotations

import numpy as np

from ._validation import check_blas_sizes, check_finite, check_float_array, check_shape, check_states


def check_lstm_weights(Wx, Wh, b):
    """``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)`` of one float dtype, finite; returns them and (D, H)."""
    Wh = check_float_array("Wh", Wh, 2, "(H, 4H)")
    dtype, H = Wh.dtype, Wh.shape[0]
    if H == 0:
        raise ValueError(f"Wh has shape {Wh.shape}: H = 0; expected at least one hidden unit")
    check_shape("Wh", Wh, (H, 4 * H), f"(H, 4H) with H = Wh.shape[0] = {H}")
    Wx = check_float_array("Wx", Wx, 2, "(D, 4H)", dtype)
    D = Wx.shape[0]
    if D == 0:
        raise ValueError(f"Wx has shape {Wx.shape}: D = 0; expected at least one input feature")
    check_shape("Wx", Wx, (D, 4 * H), f"(D, 4H) with H = Wh.shape[0] = {H}")
    b = check_float_array("b", b, 1, "(4H,)", dtype)
    check_shape("b", b, (4 * H,), f"(4H,) with H = {H}")
    check_blas_sizes(1, 1, D + H, 4 * H)
    for name, a in (("Wx", Wx), ("Wh", Wh), ("b", b)):
        check_finite(name, a)
    return Wx, Wh, b, D, H


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int; got {type(batch_size).__name__}")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0; got {batch_size}")
    return int(batch_size)


def initial_lstm_state(h0, c0, batch_size, H: int, dtype, default_n: int = 1):
    """Copies of ``h0, c0 (N, H)`` (zeros where None); N from the states, else ``batch_size``,
    else ``default_n``."""
    given = [s for s in (h0, c0) if isinstance(s, np.ndarray) and s.ndim == 2]
    N = given[0].shape[0] if given else check_batch_size(default_n if batch_size is None else batch_size)
    if batch_size is not None and check_batch_size(batch_size) != N:
        raise ValueError(f"batch_size = {batch_size} but h0/c0 have {N} rows; expected the same N")
    h, c = check_states([("h0", h0), ("c0", c0)], N, H, dtype, "with N = batch size, H = Wh.shape[0]")
    return np.array(h, dtype=dtype, order="C"), np.array(c, dtype=dtype, order="C")


def check_step_input(x, N: int, D: int, dtype) -> np.ndarray:
    x = check_float_array("x", x, 2, "(N, D)", dtype)
    check_shape("x", x, (N, D), "(N, D) with N = the stepper's batch size, D = Wx.shape[0]")
    check_finite("x", x)
    return x
