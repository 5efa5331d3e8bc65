"""Multi-layer, optionally bidirectional recurrent module with dropout between layers (never along time)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .dropout import TimeDropout
from .recurrent import LAYER_CLASSES


def reverse_padded(x, lengths):
    """Reverse each sequence of ``x (N, T, ...)`` within its own length (padding stays put).
    Its own inverse, so the backward pass uses it too."""
    if lengths is None:
        return x[:, ::-1]
    N, T = x.shape[:2]
    t = np.arange(T)[None, :]
    idx = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return np.take_along_axis(x, idx.reshape(N, T, *([1] * (x.ndim - 2))), axis=1)


class RecurrentStack:
    """``num_layers`` recurrent layers; with ``bidirectional`` each layer runs both ways and
    concatenates (output ``2H`` features); ``dropout`` on the outputs of all but the last layer.

    Initial and final states are laid out as PyTorch's: ``(num_layers * num_directions, N, H)``, entry
    ``layer * num_directions + direction``.  ``forward(xs, h0=..., c0=...)`` starts from them,
    ``final_state`` holds ``h_n`` (``(h_n, c_n)`` for the LSTM), ``backward(dout, dh_n, dc_n)`` takes the
    gradients flowing into the final states and leaves those of the initial ones in ``dh0`` (``dc0``)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, stateful: bool = False,
                 rng=None, dtype=np.float32, backend: Optional[str] = None, num_threads=None, bias: bool = True,
                 **cell_kwargs):
        if cell not in LAYER_CLASSES:
            raise ValueError(f"cell must be one of {sorted(LAYER_CLASSES)}; got {cell!r}")
        for name, v in [("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)]:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")
        if bidirectional and stateful:
            raise ValueError("stateful=True needs bidirectional=False: a backward direction cannot carry "
                             "state into the next chunk")
        rng = rng if rng is not None else np.random.default_rng()
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.bidirectional, self.stateful = bool(bidirectional), bool(stateful)
        dirs = 2 if bidirectional else 1
        cls = LAYER_CLASSES[cell]
        self.bias = bool(bias)
        common = dict(stateful=stateful, backend=backend, num_threads=num_threads, bias=self.bias, **cell_kwargs)
        self.layers = []
        # the width of each direction's output and h: proj_size for a projection LSTM, else hidden_size
        self.state_size = cell_kwargs.get("proj_size") or hidden_size
        for i in range(num_layers):
            d_in = input_size if i == 0 else self.state_size * dirs
            self.layers.append([cls.init(d_in, hidden_size, rng=rng, dtype=dtype, **common) for _ in range(dirs)])
        self.dropouts = [TimeDropout(dropout, rng=rng) for _ in range(num_layers - 1)]
        self.params = [p for layer in self.layers for d in layer for p in d.params]
        self.grads = [g for layer in self.layers for d in layer for g in d.grads]
        self._lengths = None
        self._handed = [False] * (num_layers - 1)  # per dropout: the last forward handed it to the next layer
        self._token_input = False  # the last forward's first layer read token ids (``embedding=``)
        self.dh0 = self.dc0 = None  # gradients at the initial states, after backward
        self.training = True

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.state_size * (2 if self.bidirectional else 1)

    def train(self, mode: bool = True):
        """Dropout on (True) or off (False), as ``torch.nn.Module.train``."""
        self.training = bool(mode)
        for d in self.dropouts:
            d.training = mode
        for layer in self.layers:  # zoneout's masks (TimeLSTM) follow too
            for direction in layer:
                direction.training = bool(mode)

    def eval(self):
        self.train(False)

    def reset_state(self):
        for layer in self.layers:
            for d in layer:
                d.reset_state()

    @property
    def state(self):
        """Per layer, per direction: ``(h, c)`` for LSTM, ``h`` otherwise (final states of the last forward)."""
        return [[d.state_of((d.h, d.c)) for d in layer] for layer in self.layers]

    @property
    def final_state(self):
        """The final states of the last forward, as PyTorch returns them: ``h_n`` (``(h_n, c_n)`` for the
        LSTM), each ``(num_layers * num_directions, N, H)``."""
        directions = [d for layer in self.layers for d in layer]
        if directions[0].h is None:
            return None
        h_n = np.stack([d.h for d in directions])
        return (h_n, np.stack([d.c for d in directions])) if self.cell == "lstm" else h_n

    def _per_direction(self, name, s, N):
        """``s`` (None or ``(num_layers * num_directions, N, H)``) as one ``(N, H)`` array (or None) per
        direction, in the stack's order."""
        count = self.num_layers * self.num_directions
        if s is None:
            return [None] * count
        if name.startswith("c") and self.cell != "lstm":
            raise ValueError(f"{name} is the LSTM's cell state; a {self.cell} stack has none")
        width, W = (self.hidden_size, "H") if name.startswith("c") or self.state_size == self.hidden_size else (
            self.state_size, "P")
        if not isinstance(s, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray of shape (num_layers * num_directions, N, {W}) = "
                            f"({count}, {N}, {width}); got {type(s).__name__}")
        if s.shape != (count, N, width):
            raise ValueError(f"{name} has shape {s.shape}; expected (num_layers * num_directions, N, {W}) = "
                             f"({count}, {N}, {width})")
        return list(s)

    def forward(self, xs, lengths=None, need_grad: bool = True, h0=None, c0=None, embedding=None):
        """``xs (N, T, D)`` -> ``(N, T, H)`` (``2H`` bidirectional); ``need_grad=False`` keeps nothing for
        ``backward`` (inference).  ``h0``/``c0``: initial states laid out as PyTorch's, ``(num_layers *
        num_directions, N, H)``; None: zeros (or, when stateful, the carried state).  ``embedding (V, D)``:
        ``xs`` is token ids ``(N, T)`` into it, folded into the first layer's input projection
        (``TimeRecurrent.forward``); ``backward`` then returns the embedding's gradient ``(V, D)``."""
        N = xs.shape[0] if isinstance(xs, np.ndarray) and xs.ndim == (3 if embedding is None else 2) else None
        h0s, c0s = self._per_direction("h0", h0, N), self._per_direction("c0", c0, N)
        self._lengths = None if lengths is None else np.asarray(lengths)
        self._token_input = embedding is not None
        x = xs
        handed = None  # the dropout before this layer as (p, key): applied in the layer's copy of x
        self._handed = [False] * len(self.dropouts)
        for i, layer in enumerate(self.layers):
            k = i * self.num_directions
            emb = embedding if i == 0 else None
            dropped = {} if handed is None else {"input_dropout": handed}
            out = layer[0].forward(x, lengths, need_grad, h0=h0s[k], c0=c0s[k], embedding=emb, **dropped)
            if self.bidirectional:
                back = reverse_padded(layer[1].forward(reverse_padded(x, self._lengths), lengths, need_grad,
                                                       h0=h0s[k + 1], c0=c0s[k + 1], embedding=emb),
                                      self._lengths)
                out = np.concatenate([out, back], axis=-1)
            if i == self.num_layers - 1:
                x = out
            elif self.bidirectional:  # two layers read x: the dropout's own pass
                x = self.dropouts[i].forward(out)
            else:  # the next layer drops its input as it copies it (two passes fewer over the activations)
                x, handed = out, self.dropouts[i].handed_over(out.shape, out.dtype)
                self._handed[i] = True
        return x

    def backward(self, dout, dh_n=None, dc_n=None):
        """``dout (N, T, output_size)`` -> ``dxs (N, T, D)`` (after token input: the embedding's gradient
        ``(V, D)``); fills ``grads``.  ``dh_n``/``dc_n``: gradients
        flowing into ``final_state`` (PyTorch's layout; None: zeros).  Sets ``dh0`` (and ``dc0``), the
        gradients at the initial states, in the same layout."""
        H = self.state_size  # each direction's share of dout
        N = dout.shape[0]
        dhs, dcs = self._per_direction("dh_n", dh_n, N), self._per_direction("dc_n", dc_n, N)
        d = dout
        for i in reversed(range(self.num_layers)):
            if i < self.num_layers - 1 and not self._handed[i]:  # handed over: the layer above's dx has it
                d = self.dropouts[i].backward(d)
            layer, k = self.layers[i], i * self.num_directions
            dx = layer[0].backward(np.ascontiguousarray(d[..., :H]) if self.bidirectional else d, dhs[k], dcs[k])
            if self.bidirectional:
                dback = layer[1].backward(reverse_padded(np.ascontiguousarray(d[..., H:]), self._lengths),
                                          dhs[k + 1], dcs[k + 1])
                token_gradient = i == 0 and self._token_input  # the embedding's (V, D): no time axis
                dx = dx + (dback if token_gradient else reverse_padded(dback, self._lengths))
            d = dx
        directions = [direction for layer in self.layers for direction in layer]
        self.dh0 = np.stack([direction.dh for direction in directions])
        self.dc0 = np.stack([direction.dc for direction in directions]) if self.cell == "lstm" else None
        return d

    def steppers(self, batch_size: int = 1) -> list:
        """One streaming stepper per layer (``TimeRecurrent.stepper``), from zeros: generation feeds each
        layer's ``step`` output to the next (dropout is off in generation)."""
        if self.bidirectional:
            raise ValueError("steppers() needs bidirectional=False")
        return [layer[0].stepper(batch_size=batch_size) for layer in self.layers]

    def step(self, x, states=None):
        """One time step through all layers (generation): ``x (N, D)`` -> ``(h_top, states)``."""
        if self.bidirectional:
            raise ValueError("step() needs bidirectional=False")
        states = states if states is not None else [None] * self.num_layers
        new_states = []
        for layer, s in zip(self.layers, states):
            x, s = layer[0].step(x, s)
            new_states.append(s)
        return x, new_states
