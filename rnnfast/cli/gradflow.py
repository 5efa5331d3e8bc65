"""The vanishing-gradient picture, computed by the library itself.

For a vanilla RNN, an LSTM and a GRU of the same size (PyTorch's default initialization), run a random
sequence forward through the single-step kernels, take ``loss = <h_T, r>`` for a random ``r``, and
backpropagate step by step: the norm of ``dL/dh_t`` as a function of how far ``t`` lies before ``T``."""
from __future__ import annotations

import numpy as np

from .. import backend as _backend
from ..cells import cell_spec
from ..layers.recurrent import LAYER_CLASSES

CELLS = ("rnn", "lstm", "gru")


def gradient_norms(cell: str, hidden_size: int = 64, steps: int = 150, batch: int = 16, seed: int = 0):
    """``norms[k]`` = mean over the batch of ``||dL/dh_{T-1-k}||``, k = 0 .. steps-1 (float64)."""
    if cell not in LAYER_CLASSES:
        raise ValueError(f"cell must be one of {CELLS}; got {cell!r}")
    spec = cell_spec(cell)
    rng = np.random.default_rng(seed)
    layer = LAYER_CLASSES[cell].init(hidden_size, hidden_size, rng=rng, dtype=np.float64)
    ops = _backend.ops()
    step_forward, step_backward = getattr(ops, f"{cell}_step_forward"), getattr(ops, f"{cell}_step_backward")
    x = rng.standard_normal((batch, steps, hidden_size))
    states = [np.zeros((batch, hidden_size)) for _ in spec.state_names]  # h (and c)
    caches = []
    for t in range(steps):
        *states, cache = step_forward(x[:, t], *states, *layer.params)
        caches.append(cache)
    # dL/dh_T for loss = <h_T, r>; no gradient into c_T
    dstates = [rng.standard_normal((batch, hidden_size))] + [np.zeros((batch, hidden_size)) for _ in states[1:]]
    norms = np.empty(steps)
    for k, cache in enumerate(reversed(caches)):
        norms[k] = np.linalg.norm(dstates[0], axis=1).mean()
        dstates = list(step_backward(*dstates, cache)[1:1 + len(states)])
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
