"""Sequence models over a recurrent stack: many-to-one classification, many-to-many tagging, and
sequence regression (time-series forecasting).  Inputs are token ids ``(N, T)`` (with ``vocab_size``)
or features ``(N, T, D)``; ``lengths`` handles variable-length batches."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..layers import Embedding, RecurrentStack, TimeAffine, TimeMSELoss, TimeSoftmaxWithLoss


class _Encoder:
    """Optional embedding + recurrent stack; collects params/grads."""

    def __init__(self, input_size, hidden_size, cell, num_layers, bidirectional, dropout, vocab_size, seed, dtype):
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.embed = None
        if vocab_size is not None:
            self.embed = Embedding((rng.standard_normal((vocab_size, input_size)) * 0.1).astype(self.dtype))
        self.rnn = RecurrentStack(cell, input_size, hidden_size, num_layers, bidirectional=bidirectional,
                                  dropout=dropout, rng=rng, dtype=self.dtype)
        self.rng = rng

    def parts(self):
        return ([self.embed] if self.embed is not None else []) + [self.rnn]

    def encode(self, x, lengths, need_grad: bool = True):
        if self.embed is not None:  # the first layer reads the ids (the kernels' token input)
            return self.rnn.forward(self.embed.check_ids(x), lengths, need_grad, embedding=self.embed.params[0])
        return self.rnn.forward(np.asarray(x, dtype=self.dtype), lengths, need_grad)

    def backward(self, dout):
        dx = self.rnn.backward(dout)
        if self.embed is not None:
            self.embed.set_gradient(dx)

    def train(self, mode=True):
        self.rnn.train(mode)


def _lengths_or_full(x, lengths):
    N, T = np.shape(x)[:2]
    return np.full(N, T, dtype=np.intp) if lengths is None else np.asarray(lengths, dtype=np.intp)


class _Model:
    def _collect(self, parts):
        self.params = [p for part in parts for p in part.params]
        self.grads = [g for part in parts for g in part.grads]

    def train(self, mode: bool = True):
        self.encoder.train(mode)

    def eval(self):
        self.train(False)


class SequenceClassifier(_Model):
    """Many-to-one: one label per sequence from the final state (``pooling="last"``; for a
    bidirectional stack the forward direction's last valid step and the backward direction's first)
    or the mean of the states over valid steps (``pooling="mean"``)."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "lstm",
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0, pooling: str = "last",
                 vocab_size: Optional[int] = None, seed: Optional[int] = 0, dtype="float32"):
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean'; got {pooling!r}")
        self.pooling = pooling
        self.encoder = _Encoder(input_size, hidden_size, cell, num_layers, bidirectional, dropout, vocab_size,
                                seed, dtype)
        self.head = TimeAffine.init(self.encoder.rnn.output_size, num_classes, self.encoder.rng, self.encoder.dtype)
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect(self.encoder.parts() + [self.head])

    def _pool(self, hs, lengths):
        N, T, F = hs.shape
        H = self.encoder.rnn.hidden_size
        rows = np.arange(N)
        if self.pooling == "mean":
            mask = (np.arange(T)[None, :] < lengths[:, None])[..., None]
            return (hs * mask).sum(axis=1) / lengths[:, None]
        pooled = hs[rows, lengths - 1].copy()
        if self.encoder.rnn.bidirectional:
            pooled[:, H:] = hs[:, 0, H:]
        return pooled

    def _unpool(self, dpooled, shape, lengths):
        N, T, F = shape
        H = self.encoder.rnn.hidden_size
        d = np.zeros(shape, dtype=dpooled.dtype)
        if self.pooling == "mean":
            mask = (np.arange(T)[None, :] < lengths[:, None])[..., None]
            return mask * (dpooled / lengths[:, None])[:, None, :]
        rows = np.arange(N)
        if self.encoder.rnn.bidirectional:
            d[rows, lengths - 1, :H] = dpooled[:, :H]
            d[:, 0, H:] += dpooled[:, H:]
        else:
            d[rows, lengths - 1] = dpooled
        return d

    def logits(self, x, lengths=None, need_grad: bool = True):
        lengths = _lengths_or_full(x, lengths)
        hs = self.encoder.encode(x, lengths, need_grad)
        self._cache = (hs.shape, lengths)
        return self.head.forward(self._pool(hs, lengths)[:, None, :])[:, 0]

    def forward(self, x, labels, lengths=None) -> float:
        """Mean cross-entropy of integer ``labels (N,)``."""
        return self.loss_layer.forward(self.logits(x, lengths)[:, None, :], np.asarray(labels)[:, None])

    def backward(self):
        dpooled = self.head.backward(self.loss_layer.backward())[:, 0]
        shape, lengths = self._cache
        self.encoder.backward(self._unpool(dpooled, shape, lengths))

    def predict(self, x, lengths=None):
        return np.argmax(self.logits(x, lengths, need_grad=False), axis=-1)


class SequenceTagger(_Model):
    """Many-to-many: a label per step; steps past ``lengths`` are ignored by the loss."""

    def __init__(self, input_size: int, hidden_size: int, num_tags: int, cell: str = "lstm", num_layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.0, vocab_size: Optional[int] = None,
                 seed: Optional[int] = 0, dtype="float32"):
        self.encoder = _Encoder(input_size, hidden_size, cell, num_layers, bidirectional, dropout, vocab_size,
                                seed, dtype)
        self.head = TimeAffine.init(self.encoder.rnn.output_size, num_tags, self.encoder.rng, self.encoder.dtype)
        self.loss_layer = TimeSoftmaxWithLoss(ignore_index=-1)
        self._collect(self.encoder.parts() + [self.head])

    def scores(self, x, lengths=None, need_grad: bool = True):
        return self.head.forward(self.encoder.encode(x, _lengths_or_full(x, lengths), need_grad))

    def forward(self, x, tags, lengths=None) -> float:
        lengths = _lengths_or_full(x, lengths)
        tags = np.array(tags, copy=True)
        tags[np.arange(tags.shape[1])[None, :] >= lengths[:, None]] = -1
        return self.loss_layer.forward(self.scores(x, lengths), tags)

    def backward(self):
        self.encoder.backward(self.head.backward(self.loss_layer.backward()))

    def predict(self, x, lengths=None):
        return np.argmax(self.scores(x, lengths, need_grad=False), axis=-1)


class SequenceRegressor(_Model):
    """Sequence to sequence of real vectors (e.g. one-step-ahead forecasting) with a mean-squared-error loss."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, cell: str = "lstm",
                 num_layers: int = 1, dropout: float = 0.0, seed: Optional[int] = 0, dtype="float32"):
        self.encoder = _Encoder(input_size, hidden_size, cell, num_layers, False, dropout, None, seed, dtype)
        self.head = TimeAffine.init(hidden_size, output_size, self.encoder.rng, self.encoder.dtype)
        self.loss_layer = TimeMSELoss()
        self._collect(self.encoder.parts() + [self.head])

    def predict(self, x, lengths=None, need_grad: bool = False):
        return self.head.forward(self.encoder.encode(x, _lengths_or_full(x, lengths), need_grad))

    def forward(self, x, target, lengths=None) -> float:
        lengths = _lengths_or_full(x, lengths)
        mask = np.arange(np.shape(x)[1])[None, :] < lengths[:, None]
        return self.loss_layer.forward(self.predict(x, lengths, need_grad=True), target, mask)

    def backward(self):
        self.encoder.backward(self.head.backward(self.loss_layer.backward()))
