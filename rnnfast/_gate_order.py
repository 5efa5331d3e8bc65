"""Reorder the gate blocks of fused weights between conventions.

rnnfast (like PyTorch) stores LSTM gates as i, f, g, o and GRU gates as
r, z, n along the last axis of ``Wx (D, G*H)``, ``Wh (H, G*H)`` and biases.
Other code uses other orders:

    cs231n LSTM        i, f, o, g
    textbook LSTM      f, g, i, o      ("Deep Learning from Scratch 2")
    Keras LSTM         i, f, c, o      (= rnnfast)
    Keras GRU          z, r, h
    textbook GRU       z, r, h~ with h' = (1 - z) * h + z * h~
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

LSTM = "ifgo"
GRU = "rzn"


def reorder(a: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Blocks of the last axis of ``a`` in gate order ``src`` -> a new array in order ``dst``.

    ``src`` and ``dst`` name the same gates, one letter each: ``reorder(W, "ifog", "ifgo")``.
    """
    if sorted(src) != sorted(dst) or len(set(src)) != len(src):
        raise ValueError(f"gate orders {src!r} and {dst!r} must name the same distinct gates")
    G = len(src)
    if a.shape[-1] % G:
        raise ValueError(f"last axis has {a.shape[-1]} entries; expected a multiple of {G} gates")
    H = a.shape[-1] // G
    blocks = {gate: a[..., k * H:(k + 1) * H] for k, gate in enumerate(src)}
    return np.concatenate([blocks[gate] for gate in dst], axis=-1)


def reorder_all(arrays: Sequence[np.ndarray], src: str, dst: str) -> list:
    return [reorder(a, src, dst) for a in arrays]
