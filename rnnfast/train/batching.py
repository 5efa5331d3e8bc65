"""Truncated-BPTT batching: a long token stream cut into N parallel streams read in T-step windows."""
from __future__ import annotations

import numpy as np


def tbptt_windows(tokens, batch_size: int, seq_len: int):
    """Yield ``(x, y)`` int arrays of shape ``(batch_size, <=seq_len)``, y = x shifted by one token.

    Stream n is ``tokens[n*L : (n+1)*L + 1]`` with ``L = (len(tokens) - 1) // batch_size``; consecutive
    windows continue each stream, so a stateful model carries its state from one window to the next."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise TypeError("tokens must be a 1-D integer array")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1; got {batch_size}, {seq_len}")
    L = (len(tokens) - 1) // batch_size
    if L < 1:
        raise ValueError(f"{len(tokens)} tokens are too few for batch_size={batch_size}")
    x_streams = tokens[: batch_size * L].reshape(batch_size, L)
    y_streams = tokens[1: batch_size * L + 1].reshape(batch_size, L)
    for t0 in range(0, L, seq_len):
        yield x_streams[:, t0:t0 + seq_len], y_streams[:, t0:t0 + seq_len]


def n_windows(n_tokens: int, batch_size: int, seq_len: int) -> int:
    L = (n_tokens - 1) // batch_size
    return -(-L // seq_len) if L > 0 else 0
