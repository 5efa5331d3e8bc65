"""Per-token latency of batch-1 generation with a stateful LSTM: each backend
advances its state by one token per call, as a sampling loop does."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .backends import Unavailable, torch_module
from .cases import Case, make_inputs

NAMES = ("rnnfast", "rnnfast.lstm_step_forward", "reference", "torch")


def prepare_token_step(name: str, H: int, threads: int, dtype: str = "float32") -> Callable[[], object]:
    """A call that runs one generation step (D = H, batch 1) and keeps the state."""
    case = Case("lstm", "forward", 1, 1, H, H, dtype, threads)
    xs, Wx, Wh, (b,), _ = make_inputs(case)
    x = xs[:, 0]
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
        module = torch_module(case, Wx, Wh, [b])
        xt = torch.from_numpy(x)[:, None, :]
        state = [None]

        def step():
            with torch.no_grad():
                _, state[0] = module(xt, state[0])
        return step
    raise ValueError(f"streaming backend must be one of {', '.join(NAMES)}; got {name!r}")
