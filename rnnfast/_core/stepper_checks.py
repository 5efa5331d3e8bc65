"""Argument checks of the streaming steppers (fast and reference alike)."""
from __future__ import annotations

import numpy as np

from .validation import check_finite, check_float_array, check_shape, check_states


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int; got {type(batch_size).__name__}")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0; got {batch_size}")
    return int(batch_size)


def initial_states(states, batch_size, H: int, dtype, default_n: int = 1):
    """C-contiguous copies of the named states ``(N, H)`` (zeros where None); N from the states,
    else ``batch_size``, else ``default_n``."""
    given = [s for _, s in states if isinstance(s, np.ndarray) and s.ndim == 2]
    N = given[0].shape[0] if given else check_batch_size(default_n if batch_size is None else batch_size)
    if batch_size is not None and check_batch_size(batch_size) != N:
        names = "/".join(n for n, _ in states)
        raise ValueError(f"batch_size = {batch_size} but {names} have {N} rows; expected the same N")
    checked = check_states(states, N, H, dtype, "with N = batch size, H = Wh.shape[0]")
    return [np.array(s, dtype=dtype, order="C") for s in checked]


def check_step_input(x, N: int, D: int, dtype) -> np.ndarray:
    x = check_float_array("x", x, 2, "(N, D)", dtype)
    check_shape("x", x, (N, D), "(N, D) with N = the stepper's batch size, D = Wx.shape[0]")
    check_finite("x", x)
    return x
