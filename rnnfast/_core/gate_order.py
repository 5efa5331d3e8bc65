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

import numpy as np

LSTM = "ifgo"
GRU = "rzn"


def reorder(a, src: str, dst: str, name: str = "array") -> np.ndarray:
    """Blocks of the last axis of ``a`` in gate order ``src`` -> a new array in order ``dst``.

    ``src`` and ``dst`` name the same gates, one letter each: ``reorder(W, "ifog", "ifgo")``.
    ``name`` is the argument's name in error messages (this runs before the kernels' own checks).
    """
    if sorted(src) != sorted(dst) or len(set(src)) != len(src):
        raise ValueError(f"gate orders {src!r} and {dst!r} must name the same distinct gates")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray; got {type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name} has dtype {a.dtype}; expected float32 or float64")
    G = len(src)
    if a.ndim == 0 or a.shape[-1] % G:
        raise ValueError(f"{name} has shape {a.shape}; expected a last axis of {G} gate blocks ({G}*H entries)")
    H = a.shape[-1] // G
    blocks = {gate: a[..., k * H:(k + 1) * H] for k, gate in enumerate(src)}
    return np.concatenate([blocks[gate] for gate in dst], axis=-1)



def check_fused(Wx, Wh, b, gates: int, names=("Wx", "Wh", "b")) -> None:
    """Fused weights ``Wx (D, G*H)``, ``Wh (H, G*H)`` and (unless ``b`` is None) ``b (G*H,)`` are float
    arrays of consistent shapes; errors name the argument (``names``) and say what was expected."""
    arrays = [(names[0], Wx, 2), (names[1], Wh, 2)] + ([(names[2], b, 1)] if b is not None else [])
    for name, a, ndim in arrays:
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            got = f"dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"{name} must be a float32/float64 numpy.ndarray; got {got}")
        if a.ndim != ndim:
            raise ValueError(f"{name} has shape {a.shape}; expected {ndim} dimensions")
    H = Wh.shape[0]
    want = {names[0]: (Wx.shape[0], gates * H), names[1]: (H, gates * H), names[2]: (gates * H,)}
    for name, a, _ in arrays:
        if a.shape != want[name]:
            raise ValueError(f"{name} has shape {a.shape}; expected {want[name]} "
                             f"({gates} gate blocks of H = {names[1]}.shape[0] = {H})")
