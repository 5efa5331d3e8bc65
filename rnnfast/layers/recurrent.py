"""Time layers over whole sequences, in the textbook protocol: ``params``/``grads``
(lists of arrays, gradients written in place into the same arrays), ``forward``,
``backward``; stateful mode carries the state across chunks (truncated BPTT:
the forward pass continues, the backward pass stops at the chunk boundary).

Weights are batch-first and multiply from the right, gate orders as the kernels:
LSTM i, f, g, o; GRU r, z, n.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import backend as _backend
from .._core.validation import (check_gru_layer_norm, check_layer_norm, check_peephole, check_projected_weights,
                                check_weights, check_zoneout)
from .._core.workspace import aligned_empty
from ..cells import cell_spec


def uniform_init(rng, shape, hidden_size, dtype):
    """PyTorch's default: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / np.sqrt(hidden_size)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class TimeRecurrent:
    """One recurrent layer, one direction. Use ``TimeLSTM``, ``TimeGRU`` or ``TimeRNN``."""

    cell = ""

    def __init__(self, Wx, Wh, *biases, stateful: bool = False, backend: Optional[str] = None,
                 num_threads=None, bias: bool = True, weights: Optional[dict] = None):
        spec = cell_spec(self.cell)
        if len(biases) != len(spec.bias_names):
            raise TypeError(f"{type(self).__name__} takes the biases {', '.join(spec.bias_names)}; "
                            f"got {len(biases)} bias array(s)")
        weights = dict(weights or {})  # a variant's own weights (TimeLSTM's), by their kernel keywords
        self._check_weights(Wx, Wh, biases, weights)
        self.params = [Wx, Wh, *biases, *weights.values()]
        self._extra_names = list(weights)
        # on a cache line: the kernels' weight-gradient products write into these (``backward``'s out), and
        # their stores would straddle two lines on NumPy's 16-byte boundary
        self.grads = [_aligned_zeros_like(p) for p in self.params]
        self.stateful = bool(stateful)
        self.backend = None if backend is None else _backend.check_backend(backend)
        self.num_threads = num_threads
        # bias=False (PyTorch's bias=False): the biases stay as given (zeros) and their gradients are always
        # zero, so no optimizer step moves them; they remain in params so every layer has one layout.
        self.bias = bool(bias)
        self.h = self.c = None  # final state of the last forward (carried when stateful)
        self.dh = self.dc = None  # gradient at the initial state of the last backward
        self._cache = None

    def _check_weights(self, Wx, Wh, biases, weights: dict) -> None:
        check_weights(cell_spec(self.cell), Wx, Wh, biases, finite=False)

    @classmethod
    def init(cls, input_size: int, hidden_size: int, rng=None, dtype=np.float32, **kwargs):
        """A layer with PyTorch's default initialization (zero biases with ``bias=False``)."""
        rng = rng if rng is not None else np.random.default_rng()
        spec = cell_spec(cls.cell)
        G = spec.gates * hidden_size
        arrays = [uniform_init(rng, (input_size, G), hidden_size, dtype),
                  uniform_init(rng, (hidden_size, G), hidden_size, dtype)]
        if kwargs.get("bias", True):
            arrays += [uniform_init(rng, (G,), hidden_size, dtype) for _ in spec.bias_names]
        else:
            arrays += [np.zeros(G, dtype) for _ in spec.bias_names]
        return cls(*arrays, **kwargs)

    @property
    def spec(self):
        """The cell's specification (``rnnfast.cells``)."""
        return cell_spec(self.cell)

    def state_of(self, states):
        """The layer's ``step`` state from the cell's states: ``(h, c)`` for the LSTM, ``h`` otherwise."""
        return tuple(states) if len(self.spec.state_names) > 1 else states[0]

    @property
    def hidden_size(self) -> int:
        return self.params[0].shape[1] // self.spec.gates

    @property
    def output_size(self) -> int:
        """The width of ``h`` and of the outputs: H (P for a projection LSTM)."""
        return self.params[1].shape[0]

    def _state_widths(self):
        return [self.output_size, self.hidden_size][:len(self.spec.state_names)]

    @property
    def input_size(self) -> int:
        return self.params[0].shape[0]

    def reset_state(self):
        self.h = self.c = None

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def _ops(self):
        return _backend.ops(self.backend)

    def _initial_state(self, xs):
        if not self.stateful or self.h is None:
            return None, None
        N = xs.shape[0] if isinstance(xs, np.ndarray) and xs.ndim in (2, 3) else self.h.shape[0]  # 2: token ids
        if self.h.shape[0] != N:
            raise ValueError(f"the carried state has batch size {self.h.shape[0]} but x has N = {N}; "
                             f"call reset_state() before changing the batch size")
        return self.h, self.c

    def _option(self) -> dict:
        """The cell's option as the kernels' keyword (``reset_after=...``, ``nonlinearity=...``)."""
        return {self.spec.option: getattr(self, self.spec.option)} if self.spec.option else {}

    def _states(self, h, c):
        return [h, c][:len(self.spec.state_names)]

    @property
    def _n_positional(self) -> int:
        """The parameters the kernels take by position: Wx, Wh and the biases; any after them (the LSTM
        variants' weights) go by keyword (``_weights_kw``)."""
        return 2 + len(self.spec.bias_names)

    def _weights_kw(self) -> dict:
        return dict(zip(self._extra_names, self.params[self._n_positional:]))

    def _call_kw(self, generating: bool = False) -> dict:
        """Keywords of the kernel calls beyond the weights (TimeLSTM: zoneout's)."""
        return {}

    def forward(self, xs, lengths=None, need_grad: bool = True, h0=None, c0=None, embedding=None,
                input_dropout=None):
        """``xs (N, T, D)`` -> ``hs (N, T, H)``.  ``need_grad=False``: inference, nothing kept for
        ``backward`` (the kernels' inference mode; the state is still carried when stateful).
        ``h0`` (and ``c0``, LSTM), ``(N, H)``: the initial state, instead of zeros or the carried state;
        ``backward`` leaves its gradient in ``dh`` (``dc``).  ``embedding (V, D)``: ``xs`` is token ids
        ``(N, T)`` into it (the kernels' token input) and ``backward`` returns the embedding's gradient.
        ``input_dropout`` ``(p, key)``: the kernels' dropout on ``xs`` (``lstm_forward``); ``backward``'s dx is
        then the gradient of the ``xs`` given."""
        if h0 is None and c0 is None:
            h0, c0 = self._initial_state(xs)
        forward = getattr(self._ops(), f"{self.cell}_forward")
        hs, *finals, self._cache = forward(xs, *self.params[:self._n_positional], *self._states(h0, c0),
                                           lengths=lengths, num_threads=self.num_threads, need_grad=need_grad,
                                           **self._option(), **self._weights_kw(), **self._call_kw(),
                                           **({} if embedding is None else {"embedding": embedding}),
                                           **({} if input_dropout is None else {"input_dropout": input_dropout}))
        self.h, self.c = finals[0], finals[1] if len(finals) > 1 else None
        return hs

    def backward(self, dhs, dhT=None, dcT=None):
        """``dhs (N, T, H)`` -> ``dxs (N, T, D)``; fills ``grads`` in place, sets ``dh`` (and ``dc``).

        ``dhT``/``dcT``: gradient flowing into the final state (e.g. from a decoder); ``None`` is
        truncated BPTT."""
        if self._cache is None:
            raise RuntimeError("backward() called before forward() (or after forward(need_grad=False))")
        backward = getattr(self._ops(), f"{self.cell}_backward")
        # Wx, Wh and the biases, the initial states, then the keyword parameters (peepholes): the weight
        # gradients written into ``grads`` by the kernels, not copied there after (a buffer replaced by one
        # they cannot write, strided or read-only, gets the copy)
        out = [g if isinstance(g, np.ndarray) and g.flags.c_contiguous and g.flags.writeable else None
               for g in self.grads]
        dx, *grads = backward(dhs, self._cache, *self._states(dhT, dcT), out=out)
        npos, nkw = self._n_positional, len(self.params) - self._n_positional
        for g, new in zip(self.grads, grads[:npos] + grads[len(grads) - nkw:]):
            if new is not g:
                g[...] = new
        if not self.bias:
            for g in self.grads[2:npos]:
                g[...] = 0
        dstates = grads[npos:len(grads) - nkw]
        self.dh, self.dc = dstates[0], dstates[1] if len(dstates) > 1 else None
        return dx

    def step(self, x, state):
        """One step for generation: ``x (N, D)``, state -> ``(h, new_state)`` (``(h, c)`` for the LSTM);
        no gradients kept."""
        N = x.shape[0]
        states = [np.zeros((N, w), x.dtype) for w in self._state_widths()] if state is None else (
            list(state) if len(self.spec.state_names) > 1 else [state])
        step_forward = getattr(self._ops(), f"{self.cell}_step_forward")
        *states, _ = step_forward(x, *states, *self.params[:self._n_positional], **self._option(),
                                  **self._weights_kw(), **self._call_kw(generating=True))
        return states[0], self.state_of(states)

    def stepper(self, state=None, batch_size: int = 1):
        """A streaming stepper (``rnnfast.LSTMStepper``/``GRUStepper``/``RNNStepper``, or the NumPy twin on the
        numpy backend) on a copy of the layer's weights as they are now, starting from ``state`` (as ``step``
        takes it; zeros where None): what generation runs, token after token, without ``step``'s per-call
        checks and layouts of the weights.  Later updates of the weights do not reach it."""
        stepper = getattr(self._ops(), f"{self.spec.title}Stepper")
        states = [None] * len(self.spec.state_names) if state is None else (
            list(state) if len(self.spec.state_names) > 1 else [state])
        kw = {k: v for k, v in self._call_kw(generating=True).items() if k != "zoneout_seed"}
        return stepper(*self.params[:self._n_positional], *states,
                       batch_size=None if state is not None else batch_size, num_threads=self.num_threads,
                       **self._option(), **self._weights_kw(), **kw)


class TimeLSTM(TimeRecurrent):
    """LSTM time layer: ``TimeLSTM(Wx (D, 4H), Wh (H, 4H), b (4H,), stateful=False, peephole=None,
    projection=None, layer_norm=None)``.

    ``peephole`` ``(3H,)`` = ``[p_i | p_f | p_o]``: the peephole LSTM; ``projection`` ``Whr (H, P)``: the
    projection LSTM, whose ``Wh`` is then ``(P, 4H)`` and whose outputs and ``h`` are P wide; ``layer_norm``
    ``(10H,)``: the layer-normalized LSTM (``rnnfast.lstm_forward``).  Their weights follow the bias in
    ``params``, in that order.  ``TimeLSTM.init(..., peephole=True, proj_size=P, layer_norm=True)`` makes them
    (peepholes and projection drawn like the others, the normalizations' gains one and bias zero)."""

    cell = "lstm"

    def __init__(self, Wx, Wh, b, stateful=False, backend=None, num_threads=None, bias=True, peephole=None,
                 projection=None, layer_norm=None, zoneout=None, rng=None):
        # in the order lstm_backward returns their gradients
        weights = {name: w for name, w in [("peephole", peephole), ("projection", projection),
                                           ("layer_norm", layer_norm)] if w is not None}
        super().__init__(Wx, Wh, b, stateful=stateful, backend=backend, num_threads=num_threads, bias=bias,
                         weights=weights)
        self.zoneout = check_zoneout(zoneout, None)[0]
        if self.zoneout is not None and self._extra_names:
            raise ValueError("zoneout: not with peephole, projection or layer_norm (one LSTM variant at a time)")
        # zoneout's training masks: a fresh seed from rng at every forward pass while training
        self.training = True
        self.rng = rng if rng is not None else np.random.default_rng()

    def _check_weights(self, Wx, Wh, biases, weights: dict) -> None:
        if "layer_norm" in weights and len(weights) > 1:
            raise ValueError("layer_norm: not with peephole or projection (one LSTM variant at a time)")
        if "projection" in weights:
            check_projected_weights(Wx, Wh, biases[0], weights["projection"], finite=False)
        else:
            super()._check_weights(Wx, Wh, biases, weights)
        H, dtype = np.shape(Wx)[1] // 4, np.asarray(Wx).dtype
        check_peephole(weights.get("peephole"), H, dtype, finite=False)
        check_layer_norm(weights.get("layer_norm"), H, dtype, finite=False)

    @classmethod
    def init(cls, input_size: int, hidden_size: int, rng=None, dtype=np.float32, peephole: bool = False,
             proj_size: int = 0, layer_norm: bool = False, **kwargs):
        """As ``TimeRecurrent.init``; ``peephole=True`` adds peepholes, ``proj_size=P`` a projection, drawn from
        the same distribution; ``layer_norm=True`` the layer normalizations, gains one and bias zero."""
        for name, flag in [("peephole", peephole), ("layer_norm", layer_norm)]:
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False here (the layer makes the weights); got {flag!r}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) or proj_size < 0:
            raise ValueError(f"proj_size must be a non-negative int; got {proj_size!r}")
        rng = rng if rng is not None else np.random.default_rng()
        G, P = 4 * hidden_size, proj_size or hidden_size
        arrays = [uniform_init(rng, (input_size, G), hidden_size, dtype), uniform_init(rng, (P, G), hidden_size, dtype),
                  uniform_init(rng, (G,), hidden_size, dtype) if kwargs.get("bias", True) else np.zeros(G, dtype)]
        extra = {}
        if peephole:
            extra["peephole"] = uniform_init(rng, (3 * hidden_size,), hidden_size, dtype)
        if proj_size:
            extra["projection"] = uniform_init(rng, (hidden_size, P), hidden_size, dtype)
        if layer_norm:
            extra["layer_norm"] = np.concatenate([np.ones(9 * hidden_size), np.zeros(hidden_size)]).astype(dtype)
        if kwargs.get("zoneout") is not None:
            kwargs.setdefault("rng", rng)
        return cls(*arrays, **kwargs, **extra)

    @property
    def peephole(self) -> Optional[np.ndarray]:
        """The peepholes ``(3H,)``, or None."""
        return self._weights_kw().get("peephole")

    @property
    def layer_norm(self) -> Optional[np.ndarray]:
        """The layer normalizations' parameters ``(10H,)``, or None."""
        return self._weights_kw().get("layer_norm")

    @property
    def projection(self) -> Optional[np.ndarray]:
        """The projection ``Whr (H, P)``, or None."""
        return self._weights_kw().get("projection")

    def _call_kw(self, generating: bool = False) -> dict:
        if self.zoneout is None:
            return {}
        seed = int(self.rng.integers(2 ** 63)) if self.training and not generating else None
        return {"zoneout": self.zoneout, "zoneout_seed": seed}


class TimeGRU(TimeRecurrent):
    """GRU time layer: ``TimeGRU(Wx (D, 3H), Wh (H, 3H), bx, bh (3H,), stateful=False, reset_after=True,
    layer_norm=None)``.

    ``layer_norm`` ``(6H,)`` = ``[g_x | g_h]``: the layer-normalized GRU (reset-after; ``rnnfast.gru_forward``),
    its gains last in ``params``.  ``TimeGRU.init(..., layer_norm=True)`` makes them, all one."""

    cell = "gru"

    def __init__(self, Wx, Wh, bx, bh, stateful=False, reset_after=True, backend=None, num_threads=None, bias=True,
                 layer_norm=None):
        if layer_norm is not None and not reset_after:
            raise ValueError("layer_norm: the layer-normalized GRU is the reset-after one; got reset_after=False")
        super().__init__(Wx, Wh, bx, bh, stateful=stateful, backend=backend, num_threads=num_threads, bias=bias,
                         weights=None if layer_norm is None else {"layer_norm": layer_norm})
        self.reset_after = reset_after

    def _check_weights(self, Wx, Wh, biases, weights: dict) -> None:
        super()._check_weights(Wx, Wh, biases, weights)
        check_gru_layer_norm(weights.get("layer_norm"), np.shape(Wx)[1] // 3, np.asarray(Wx).dtype, finite=False)

    @classmethod
    def init(cls, input_size: int, hidden_size: int, rng=None, dtype=np.float32, layer_norm: bool = False,
             **kwargs):
        """As ``TimeRecurrent.init``; ``layer_norm=True`` adds the layer normalizations' gains, all one."""
        if not isinstance(layer_norm, (bool, np.bool_)):
            raise TypeError(f"layer_norm must be True or False here (the layer makes the gains); got {layer_norm!r}")
        if layer_norm:
            kwargs["layer_norm"] = np.ones(6 * hidden_size, dtype)
        return super().init(input_size, hidden_size, rng=rng, dtype=dtype, **kwargs)

    @property
    def layer_norm(self) -> Optional[np.ndarray]:
        """The layer normalizations' gains ``(6H,)``, or None."""
        return self._weights_kw().get("layer_norm")


class TimeRNN(TimeRecurrent):
    """Vanilla RNN time layer: ``TimeRNN(Wx (D, H), Wh (H, H), b (H,), stateful=False, nonlinearity="tanh")``."""

    cell = "rnn"

    def __init__(self, Wx, Wh, b, stateful=False, nonlinearity="tanh", backend=None, num_threads=None, bias=True):
        super().__init__(Wx, Wh, b, stateful=stateful, backend=backend, num_threads=num_threads, bias=bias)
        self.nonlinearity = nonlinearity


LAYER_CLASSES = {"lstm": TimeLSTM, "gru": TimeGRU, "rnn": TimeRNN}


def _aligned_zeros_like(a: np.ndarray) -> np.ndarray:
    """Zeros of ``a``'s shape and dtype, starting on a cache line (``workspace.aligned_empty``)."""
    out = aligned_empty(a.shape, a.dtype)
    out.fill(0)
    return out
