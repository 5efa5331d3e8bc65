"""The vanishing-gradient picture, computed by the library itself.

For a vanilla RNN, an LSTM and a GRU of the same size (PyTorch's default initialization), run a random
sequence forward through the single-step kernels, take ``loss = <h_T, r>`` for a random ``r``, and
backpropagate step by step: the norm of ``dL/dh_t`` as a function of how far ``t`` lies before ``T``."""
from __future__ import annotations

import numpy as np

from . import backend as _backend
from .layers.recurrent import LAYER_CLASSES

CELLS = ("rnn", "lstm", "gru")


def gradient_norms(cell: str, hidden_size: int = 64, steps: int = 150, batch: int = 16, seed: int = 0):
    """``norms[k]`` = mean over the batch of ``||dL/dh_{T-1-k}||``, k = 0 .. steps-1 (float64)."""
    if cell not in LAYER_CLASSES:
        raise ValueError(f"cell must be one of {CELLS}; got {cell!r}")
    rng = np.random.default_rng(seed)
    layer = LAYER_CLASSES[cell].init(hidden_size, hidden_size, rng=rng, dtype=np.float64)
    ops = _backend.ops()
    x = rng.standard_normal((batch, steps, hidden_size))
    h = np.zeros((batch, hidden_size))
    c = np.zeros_like(h)
    caches = []
    for t in range(steps):
        if cell == "lstm":
            h, c, cache = ops.lstm_step_forward(x[:, t], h, c, *layer.params)
        elif cell == "gru":
            h, cache = ops.gru_step_forward(x[:, t], h, *layer.params)
        else:
            h, cache = ops.rnn_step_forward(x[:, t], h, *layer.params)
        caches.append(cache)
    dh = rng.standard_normal((batch, hidden_size))  # dL/dh_T for loss = <h_T, r>
    dc = np.zeros_like(dh)
    norms = np.empty(steps)
    for k, cache in enumerate(reversed(caches)):
        norms[k] = np.linalg.norm(dh, axis=1).mean()
        if cell == "lstm":
            _, dh, dc, *_ = ops.lstm_step_backward(dh, dc, cache)
        elif cell == "gru":
            _, dh, *_ = ops.gru_step_backward(dh, cache)
        else:
            _, dh, *_ = ops.rnn_step_backward(dh, cache)
    return norms


def plot(norms_by_cell: dict, path: str, hidden_size: int) -> None:
    """Draw the curves on a log scale into a PNG (needs matplotlib: ``pip install rnnfast[plot]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for cell, norms in norms_by_cell.items():
        ax.semilogy(np.arange(len(norms)), np.maximum(norms, 1e-300), label=cell.upper(), linewidth=2)
    ax.set_xlabel("steps back from the loss (T - 1 - t)")
    ax.set_ylabel("mean ||dL / dh_t||")
    ax.set_title(f"Gradient flow back through time (H = {hidden_size}, default init)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
