"""Drop-in time layers for the code of "Deep Learning from Scratch 2" (``common/time_layers.py``).

Same classes, constructor arguments, attributes and methods as the book's,
on rnnfast's kernels: change ``from common.time_layers import *`` to
``from rnnfast.compat import *``.  The book's conventions are kept:

- LSTM gate blocks in the order **f, g, i, o** (rnnfast's kernels use i, f, g, o;
  the blocks are reordered on the way in and the gradients on the way out);
- GRU gate blocks **z, r, h~** with one bias, the reset gate applied before the
  matmul and ``h' = (1 - z) * h + z * h~`` (rnnfast's reset-before GRU with the
  z-block negated, ``sigmoid(-a) = 1 - sigmoid(a)``);
- ``params``/``grads`` lists whose gradient arrays are overwritten in place;
- ``stateful`` time layers carry ``h`` (and ``c``) across calls, and their
  backward pass starts from zero at each chunk (truncated BPTT), leaving the
  gradient at the first state in ``dh``;
- float32 outputs (``'f'``), as the book allocates them; arithmetic in the dtype NumPy's promotion
  gives the weights, inputs and states (float32 in the book);
- a state set with ``set_state`` broadcasts over the batch (an ``(1, H)`` state for ``N`` sequences);
- NaN and Inf propagate as in NumPy (the kernels run with ``check_finite=False``): a diverged run
  prints ``nan`` losses instead of stopping.

The rest of what the book's ``from common.time_layers import *`` gives a script (``np``, the plain
layers and functions of ``common/layers.py``) comes from ``rnnfast.compat`` too.
"""
from __future__ import annotations

import numpy as np

from .. import gru as _gru
from .. import layers as _layers
from .. import lstm as _lstm
from .. import rnn as _rnn
from .._core.gate_order import check_fused, reorder
from .._core.validation import check_labels
from .textbook_layers import Affine, SoftmaxWithLoss, SigmoidWithLoss, softmax

_BOOK_LSTM = "fgio"


def _compute_dtype(*arrays):
    dt = np.result_type(*[a.dtype for a in arrays])
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float32)


def _as(a, dtype):
    return np.asarray(a, dtype=dtype)


def _batch_state(name, s, N, H):
    """A state the book would broadcast over the batch (``(1, H)`` for N rows), as ``(N, H)``."""
    s = np.asarray(s)
    if s.shape == (N, H):
        return s
    try:
        return np.broadcast_to(s, (N, H))
    except ValueError:
        raise ValueError(f"{name} has shape {s.shape}; expected (N, H) = ({N}, {H}) or a shape that broadcasts "
                         "to it") from None


# NaN and Inf go through as in the book's NumPy (a diverged run prints nan losses).
_NUMPY_LIKE = dict(check_finite=False)


# ---- the book's LSTM in rnnfast's order, and back ---------------------------

def _lstm_kernel_params(Wx, Wh, b, dtype):
    return [reorder(_as(a, dtype), _BOOK_LSTM, "ifgo") for a in (Wx, Wh, b)]


def _lstm_book_grads(dWx, dWh, db):
    return [reorder(g, "ifgo", _BOOK_LSTM) for g in (dWx, dWh, db)]


# ---- the book's GRU (z, r, h~; one bias) as rnnfast's reset-before GRU -------

def _book_gru_to_kernel(a, H, dtype):
    a = _as(a, dtype)
    z, r, n = a[..., :H], a[..., H:2 * H], a[..., 2 * H:]
    return np.concatenate([r, -z, n], axis=-1)  # rnnfast's z' = 1 - z


def _gru_kernel_params(Wx, Wh, b, dtype):
    H = Wh.shape[0]
    bx = _book_gru_to_kernel(b, H, dtype)
    return _book_gru_to_kernel(Wx, H, dtype), _book_gru_to_kernel(Wh, H, dtype), bx, np.zeros_like(bx)


def _gru_book_grads(H, *grads):
    out = []
    for g in grads:
        r, z, n = g[..., :H], g[..., H:2 * H], g[..., 2 * H:]
        out.append(np.concatenate([-z, r, n], axis=-1))
    return out


def _write(grads, new):
    for g, v in zip(grads, new):
        g[...] = v


# ---- single-step cells -----------------------------------------------------

class _StepCell:
    """The book's single-step cells: ``params``/``grads`` of one fused ``Wx``, ``Wh``, ``b``."""

    _gates = 1

    def __init__(self, Wx, Wh, b):
        check_fused(Wx, Wh, b, self._gates)
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None


class RNN(_StepCell):
    """``RNN(Wx (D, H), Wh (H, H), b (H,))``: ``forward(x, h_prev) -> h_next``, tanh."""

    def forward(self, x, h_prev):
        dt = _compute_dtype(x, h_prev, *self.params)
        N, H = x.shape[0], self.params[1].shape[0]
        h_next, self.cache = _rnn.rnn_step_forward(_as(x, dt), _as(_batch_state("h_prev", h_prev, N, H), dt),
                                                   *[_as(p, dt) for p in self.params], **_NUMPY_LIKE)
        return h_next

    def backward(self, dh_next):
        dx, dh_prev, dWx, dWh, db = _rnn.rnn_step_backward(_as(dh_next, self.cache.x_tm.dtype), self.cache,
                                                           **_NUMPY_LIKE)
        _write(self.grads, (dWx, dWh, db))
        return dx, dh_prev


class LSTM(_StepCell):
    """``LSTM(Wx (D, 4H), Wh (H, 4H), b (4H,))``, gates f, g, i, o:
    ``forward(x, h_prev, c_prev) -> h_next, c_next``; ``backward(dh_next, dc_next) -> dx, dh_prev, dc_prev``."""

    _gates = 4

    def forward(self, x, h_prev, c_prev):
        dt = _compute_dtype(x, h_prev, c_prev, *self.params)
        N, H = x.shape[0], self.params[1].shape[0]
        h, c, self.cache = _lstm.lstm_step_forward(_as(x, dt), _as(_batch_state("h_prev", h_prev, N, H), dt),
                                                   _as(_batch_state("c_prev", c_prev, N, H), dt),
                                                   *_lstm_kernel_params(*self.params, dt), **_NUMPY_LIKE)
        return h, c

    def backward(self, dh_next, dc_next):
        dt = self.cache.x_tm.dtype
        dx, dh, dc, dWx, dWh, db = _lstm.lstm_step_backward(_as(dh_next, dt), _as(dc_next, dt), self.cache,
                                                            **_NUMPY_LIKE)
        _write(self.grads, _lstm_book_grads(dWx, dWh, db))
        return dx, dh, dc


class GRU(_StepCell):
    """``GRU(Wx (D, 3H), Wh (H, 3H), b (3H,))``, gates z, r, h~, reset before the matmul,
    ``h' = (1 - z) * h + z * h~``: ``forward(x, h_prev) -> h_next``; ``backward(dh_next) -> dx, dh_prev``."""

    _gates = 3

    def forward(self, x, h_prev):
        dt = _compute_dtype(x, h_prev, *self.params)
        N, H = x.shape[0], self.params[1].shape[0]
        h, self.cache = _gru.gru_step_forward(_as(x, dt), _as(_batch_state("h_prev", h_prev, N, H), dt),
                                              *_gru_kernel_params(*self.params, dt), reset_after=False,
                                              **_NUMPY_LIKE)
        return h

    def backward(self, dh_next):
        dx, dh, dWx, dWh, dbx, _ = _gru.gru_step_backward(_as(dh_next, self.cache.x_tm.dtype), self.cache,
                                                          **_NUMPY_LIKE)
        _write(self.grads, _gru_book_grads(self.params[1].shape[0], dWx, dWh, dbx))
        return dx, dh


# ---- time layers -----------------------------------------------------------

class _TimeRecurrent:
    """Shared protocol: ``forward(xs (N, T, D)) -> hs (N, T, H)`` (float32), ``backward(dhs) -> dxs``."""

    _has_c = False
    _gates = 1

    def __init__(self, Wx, Wh, b, stateful=False):
        check_fused(Wx, Wh, b, self._gates)
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None  # the book keeps per-step cells here; rnnfast keeps one cache
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self._cache = None

    def forward(self, xs):
        N, H = xs.shape[0], self.params[1].shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype="f")
        if self._has_c and (not self.stateful or self.c is None):
            self.c = np.zeros((N, H), dtype="f")
        h = _batch_state("h", self.h, N, H)
        c = _batch_state("c", self.c, N, H) if self._has_c else None
        dt = _compute_dtype(xs, h, *([c] if self._has_c else []), *self.params)
        hs, hT, cT, self._cache = self._run(_as(xs, dt), _as(h, dt), _as(c, dt) if self._has_c else None, dt)
        self.h = hT  # carried in the compute dtype, as the book's cells return it
        if self._has_c:
            self.c = cT
        return hs.astype("f", copy=False)

    def backward(self, dhs):
        dxs, grads, dh = self._run_backward(_as(dhs, self._cache.x_tm.dtype), self._cache)
        _write(self.grads, grads)
        self.dh = dh
        return dxs.astype("f", copy=False)

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class TimeRNN(_TimeRecurrent):
    """``TimeRNN(Wx (D, H), Wh (H, H), b (H,), stateful=False)``, tanh."""

    def _run(self, xs, h0, c0, dt):
        hs, hT, cache = _rnn.rnn_forward(xs, *[_as(p, dt) for p in self.params], h0, **_NUMPY_LIKE)
        return hs, hT, None, cache

    def _run_backward(self, dhs, cache):
        dx, dWx, dWh, db, dh0 = _rnn.rnn_backward(dhs, cache, **_NUMPY_LIKE)
        return dx, (dWx, dWh, db), dh0

    def set_state(self, h):
        self.h = h


class TimeLSTM(_TimeRecurrent):
    """``TimeLSTM(Wx (D, 4H), Wh (H, 4H), b (4H,), stateful=False)``, gates f, g, i, o."""

    _has_c = True
    _gates = 4

    def _run(self, xs, h0, c0, dt):
        return _lstm.lstm_forward(xs, *_lstm_kernel_params(*self.params, dt), h0, c0, **_NUMPY_LIKE)

    def _run_backward(self, dhs, cache):
        dx, dWx, dWh, db, dh0, _ = _lstm.lstm_backward(dhs, cache, **_NUMPY_LIKE)
        return dx, _lstm_book_grads(dWx, dWh, db), dh0


class TimeGRU(_TimeRecurrent):
    """``TimeGRU(Wx (D, 3H), Wh (H, 3H), b (3H,), stateful=False)``, gates z, r, h~."""

    _gates = 3

    def _run(self, xs, h0, c0, dt):
        hs, hT, cache = _gru.gru_forward(xs, *_gru_kernel_params(*self.params, dt), h0, reset_after=False,
                                         **_NUMPY_LIKE)
        return hs, hT, None, cache

    def _run_backward(self, dhs, cache):
        dx, dWx, dWh, dbx, _, dh0 = _gru.gru_backward(dhs, cache, **_NUMPY_LIKE)
        return dx, _gru_book_grads(self.params[1].shape[0], dWx, dWh, dbx), dh0

    def set_state(self, h):
        self.h = h


class TimeBiLSTM:
    """``TimeBiLSTM(Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False)``: a forward and a backward
    ``TimeLSTM``, outputs concatenated to ``(N, T, 2H)``."""

    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs):
        o1 = self.forward_lstm.forward(xs)
        o2 = self.backward_lstm.forward(xs[:, ::-1])[:, ::-1]
        return np.concatenate((o1, o2), axis=2)

    def backward(self, dhs):
        H = dhs.shape[2] // 2
        dxs1 = self.forward_lstm.backward(dhs[:, :, :H])
        dxs2 = self.backward_lstm.backward(dhs[:, ::-1, H:])[:, ::-1]
        return dxs1 + dxs2


# ---- embedding, affine, loss, dropout ----------------------------------------

class Embedding(_layers.Embedding):
    """``Embedding(W (V, D))``: ``forward(idx) -> W[idx]``; ``backward(dout)`` adds rows into ``grads[0]``
    (``rnnfast.layers.Embedding``, under the book's attribute name ``idx``)."""

    @property
    def idx(self):
        return self.ids


class TimeEmbedding(_layers.Embedding):
    """``TimeEmbedding(W (V, D))``: ``forward(xs (N, T)) -> (N, T, D)`` float32, as the book's."""

    def __init__(self, W):
        super().__init__(W)
        self.layers = None
        self.W = W

    def forward(self, xs):
        return super().forward(xs).astype("f", copy=False)


class TimeAffine:
    """``TimeAffine(W (D, M), b (M,))``: ``(N, T, D) -> (N, T, M)``."""

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        N, T, D = x.shape
        W, b = self.params
        self.x = x
        return (np.dot(x.reshape(N * T, -1), W) + b).reshape(N, T, -1)

    def backward(self, dout):
        x = self.x
        N, T, D = x.shape
        W, b = self.params
        dout = dout.reshape(N * T, -1)
        self.grads[0][...] = np.dot(x.reshape(N * T, -1).T, dout)
        self.grads[1][...] = np.sum(dout, axis=0)
        return np.dot(dout, W.T).reshape(*x.shape)


class TimeSoftmaxWithLoss:
    """Mean softmax cross-entropy over all (N, T) positions whose label is not ``ignore_label`` (-1)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        if not isinstance(xs, np.ndarray) or xs.ndim != 3:
            raise ValueError(f"xs must be a 3-d numpy.ndarray (N, T, V); got {getattr(xs, 'shape', type(xs).__name__)}")
        N, T, V = xs.shape
        if isinstance(ts, np.ndarray) and ts.ndim == 3:  # one-hot labels
            if ts.shape != xs.shape:
                raise ValueError(f"ts has shape {ts.shape}; one-hot labels must have the shape of xs {xs.shape}")
            ts = ts.argmax(axis=2)
        check_labels("ts", ts, (N, T), V, ignore=self.ignore_label)
        mask = ts != self.ignore_label
        xs, ts, mask = xs.reshape(N * T, V), ts.reshape(N * T), mask.reshape(N * T)
        ys = softmax(xs)
        ls = np.log(ys[np.arange(N * T), ts])
        ls *= mask
        loss = -np.sum(ls) / mask.sum()
        self.cache = (ts, ys, mask, (N, T, V))
        return loss

    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache
        dx = ys
        dx[np.arange(N * T), ts] -= 1
        dx *= dout
        dx /= mask.sum()
        dx *= mask[:, np.newaxis]
        return dx.reshape((N, T, V))


class TimeDropout:
    """Inverted dropout over ``(N, T, D)`` with NumPy's global generator, as the book (``train_flg``)."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if self.train_flg:
            flg = np.random.rand(*xs.shape) > self.dropout_ratio
            scale = 1 / (1.0 - self.dropout_ratio)
            self.mask = flg.astype(np.float32) * scale
            return xs * self.mask
        return xs

    def backward(self, dout):
        return dout * self.mask


class TimeSigmoidWithLoss:
    """Binary cross-entropy over ``(N, T)`` scores, averaged over time (the book's per-step layers)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.xs_shape = None
        self.layers = None

    def forward(self, xs, ts):
        N, T = xs.shape
        self.xs_shape = xs.shape
        self.layers = [SigmoidWithLoss() for _ in range(T)]
        return sum(layer.forward(xs[:, t], ts[:, t]) for t, layer in enumerate(self.layers)) / T

    def backward(self, dout=1):
        dxs = np.empty(self.xs_shape, dtype="f")
        dout *= 1 / self.xs_shape[1]
        for t, layer in enumerate(self.layers):
            dxs[:, t] = layer.backward(dout)
        return dxs


class Simple_TimeSoftmaxWithLoss:  # noqa: N801 (the book's name)
    """The book's step-by-step softmax loss over ``(N, T, V)``: mean over batch and time, no ignore label."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, xs, ts):
        N, T, V = xs.shape
        layers = [SoftmaxWithLoss() for _ in range(T)]
        loss = sum(layer.forward(xs[:, t, :], ts[:, t]) for t, layer in enumerate(layers)) / T
        self.cache = (layers, xs)
        return loss

    def backward(self, dout=1):
        layers, xs = self.cache
        dxs = np.empty(xs.shape, dtype="f")
        dout *= 1 / xs.shape[1]
        for t, layer in enumerate(layers):
            dxs[:, t, :] = layer.backward(dout)
        return dxs


class Simple_TimeAffine:  # noqa: N801 (the book's name)
    """The book's step-by-step affine layer over ``(N, T, D)``; its gradients in ``dW`` and ``db``."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.dW, self.db = None, None
        self.layers = None

    def forward(self, xs):
        N, T, D = xs.shape
        self.layers = [Affine(self.W, self.b) for _ in range(T)]
        out = np.empty((N, T, self.W.shape[1]), dtype="f")
        for t, layer in enumerate(self.layers):
            out[:, t, :] = layer.forward(xs[:, t, :])
        return out

    def backward(self, dout):
        N, T, _ = dout.shape
        dxs = np.empty((N, T, self.W.shape[0]), dtype="f")
        self.dW, self.db = 0, 0
        for t, layer in enumerate(self.layers):
            dxs[:, t, :] = layer.backward(dout[:, t, :])
            self.dW += layer.grads[0]
            self.db += layer.grads[1]
        return dxs
