"""Per-token latency of batch-1 generation with a stateful LSTM: each backend
advances its state by one token per call, as a sampling loop does."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .backends import Unavailable, torch_module
from .cases import Case

NAMES = ("rnnfast", "rnnfast.lstm_step_forward", "reference", "torch")


def _weights(H: int, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = [(rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(dtype) for _ in range(2)]
    b = (rng.standard_normal(4 * H) * 0.1).astype(dtype)
    x = rng.standard_normal((1, H)).astype(dtype)
    return x, W[0], W[1], b


def prepare_token_step(name: str, H: int, threads: int, dtype: str = "float32") -> Callable[[], object]:
    """A call that runs one generation step (D = H, batch 1) and keeps the state."""
    x, Wx, Wh, b = _weights(H, dtype)
    if name == "rnnfast":
        from ..stepper import LSTMStepper

        stepper = LSTMStepper(Wx, Wh, b, num_threads=threads)
        return lambda: stepper.step(x)
    if name == "reference":
        from ..reference.stepper import LSTMStepper as ReferenceStepper

        stepper = ReferenceStepper(Wx, Wh, b)
        return lambda: stepper.step(x)
    if name == "rnnfast.lstm_step_forward":
        from .. import lstm_step_forward

        state = [np.zeros((1, H), dtype), np.zeros((1, H), dtype)]

        def step():
            state[0], state[1], _ = lstm_step_forward(x, state[0], state[1], Wx, Wh, b, num_threads=threads)
        return step
    if name == "torch":
        try:
            import torch
        except ImportError:
            raise Unavailable("PyTorch is not installed (pip install rnnfast[torch])") from None
        module = torch_module(Case("lstm", "forward", 1, 1, H, H, dtype, threads), Wx, Wh, [b])
        xt = torch.from_numpy(x)[:, None, :]
        state = [None]

        def step():
            with torch.no_grad():
                _, state[0] = module(xt, state[0])
        return step
    raise ValueError(f"streaming backend must be one of {', '.join(NAMES)}; got {name!r}")
