"""Embedding, affine and softmax-loss layers over time, in the textbook protocol."""
from __future__ import annotations

import numpy as np

from .._core import products, training_passes
from .._core.workspace import pool
from .._core.validation import check_features, check_labels


def scatter_add_rows(out, ids, rows) -> None:
    """``out[ids[i]] += rows[i]`` for every i, repeated ids adding up (``np.add.at``'s result): the rows
    sorted by id (stably) and each id's run summed at once, 5x faster than ``np.add.at``."""
    if ids.size == 0:
        return
    if (training_passes.compiled(out) and getattr(rows, "dtype", None) == out.dtype and out.ndim == 2
            and ids.min() >= 0 and ids.max() < out.shape[0]):
        # one pass in row order (src/training.pyx); the NumPy below is its twin (and NumPy's indexing errors)
        training_passes.scatter_add_rows(out, np.ascontiguousarray(ids, dtype=np.intp), np.ascontiguousarray(rows))
        return
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    out[sorted_ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)


class Embedding:
    """``W (V, D)``; ``forward(ids (N, T)) -> (N, T, D)``."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.ids = None

    def forward(self, ids):
        return self.params[0][self.check_ids(ids)]

    def check_ids(self, ids) -> np.ndarray:
        """``ids`` as an integer array in 0..V-1 (ValueError, TypeError naming ``ids`` otherwise)."""
        ids = np.asarray(ids)
        self.ids = check_labels("ids", ids, ids.shape, self.params[0].shape[0])
        return self.ids

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        scatter_add_rows(dW, self.ids.reshape(-1), dout.reshape(-1, dW.shape[1]))
        return None

    def set_gradient(self, dW) -> None:
        """The gradient ``(V, D)`` computed by the layer that read the ids itself (a recurrent layer with
        ``embedding=``, which folds this table into its input projection)."""
        self.grads[0][...] = dW


class TimeAffine:
    """``W (D, V)``, ``b (V,)``; ``(N, T, D) -> (N, T, V)``."""

    def __init__(self, W, b, num_threads=None):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None
        self.num_threads = num_threads  # of the compiled products (Cython backend); None: the default

    @classmethod
    def init(cls, in_features: int, out_features: int, rng, dtype, num_threads=None) -> "TimeAffine":
        """W ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default), b = 0."""
        bound = 1 / np.sqrt(in_features)
        W = rng.uniform(-bound, bound, (in_features, out_features)).astype(dtype)
        return cls(W, np.zeros(out_features, dtype), num_threads)

    def forward(self, x):
        self.x = check_features("x", x, self.params[0].shape[0], "(N, T, D) with D = W.shape[0]")
        W, b = self.params
        if products.compiled(x, W, b):  # NumPy twin: the line below
            x2 = self.x.reshape(-1, W.shape[0])
            return products.matmul(x2, W, bias=b, num_threads=self.num_threads).reshape(x.shape[:-1] + b.shape)
        return x @ W + b

    def backward(self, dout):
        W = self.params[0]
        x2 = self.x.reshape(-1, self.x.shape[-1])
        d2 = dout.reshape(-1, dout.shape[-1])
        self.grads[1][...] = d2.sum(axis=0)
        if products.compiled(x2, d2, W):  # NumPy twin: the lines below
            self.grads[0][...] = products.matmul(x2, d2, trans_a=True, num_threads=self.num_threads)
            return products.matmul(d2, W, trans_b=True, num_threads=self.num_threads).reshape(self.x.shape)
        self.grads[0][...] = x2.T @ d2
        return dout @ W.T


class TiedAffine:
    """Output projection that shares the embedding matrix ``W (V, D)``: ``(N, T, D) -> (N, T, V)``.

    Its only own parameter is the bias; the weight gradient is *added* to the
    embedding's gradient by ``accumulate_into_embedding`` after the embedding's
    backward, so the shared matrix is listed once and never compared."""

    def __init__(self, embedding: Embedding, b):
        self.embedding = embedding
        self.params = [b]
        self.grads = [np.zeros_like(b)]
        self.x = None
        self._dW = None

    def forward(self, x):
        self.x = check_features("x", x, self.embedding.params[0].shape[1], "(N, T, D) with D = embedding W.shape[1]")
        return x @ self.embedding.params[0].T + self.params[0]

    def backward(self, dout):
        W = self.embedding.params[0]
        x2 = self.x.reshape(-1, self.x.shape[-1])
        d2 = dout.reshape(-1, dout.shape[-1])
        self._dW = d2.T @ x2  # (V, D)
        self.grads[0][...] = d2.sum(axis=0)
        return dout @ W

    def accumulate_into_embedding(self):
        self.embedding.grads[0] += self._dW


class TimeSoftmaxWithLoss:
    """Softmax cross-entropy over ``scores (N, T, V)`` and integer ``targets (N, T)``:
    the mean over targets that are not ``ignore_index``."""

    def __init__(self, ignore_index: int = -1):
        self.ignore_index = ignore_index
        self.params, self.grads = [], []
        self._cache = None  # the NumPy forward's
        self._compiled = None  # the compiled forward's: softmax, targets, shape, count

    def forward(self, scores, targets):
        targets = check_labels("targets", np.asarray(targets), scores.shape[:-1], scores.shape[-1],
                               ignore=self.ignore_index)
        if isinstance(scores, np.ndarray) and training_passes.compiled_dtype(scores.dtype):
            # one pass per row (src/training.pyx); the NumPy below is its twin
            flat = np.ascontiguousarray(targets.reshape(-1), dtype=np.intp)
            scores2 = np.ascontiguousarray(scores).reshape(-1, scores.shape[-1])
            probs = pool.output(scores2.shape, scores.dtype)
            total = training_passes.softmax_cross_entropy(scores2, flat, self.ignore_index, probs)
            count = max(int(np.count_nonzero(flat != self.ignore_index)), 1)
            self._compiled, self._cache = (probs, flat, scores.shape, count), None
            return total / count
        valid = targets != self.ignore_index
        shifted = scores - scores.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        log_p = shifted - log_z
        safe = np.where(valid, targets, 0)
        picked = np.take_along_axis(log_p, safe[..., None], axis=-1)[..., 0]
        count = max(int(valid.sum()), 1)
        self._compiled, self._cache = None, (log_p, safe, valid, count)
        return float(-(picked * valid).sum() / count)

    def backward(self, dout=1.0):
        if self._compiled is not None:
            probs, flat, shape, count = self._compiled
            d = pool.output(probs.shape, probs.dtype)
            training_passes.softmax_cross_entropy_backward(probs, flat, self.ignore_index, float(dout) / count, d)
            return d.reshape(shape)
        log_p, safe, valid, count = self._cache
        d = np.exp(log_p)
        np.put_along_axis(d, safe[..., None], np.take_along_axis(d, safe[..., None], axis=-1) - 1, axis=-1)
        d *= (valid[..., None] * (dout / count)).astype(d.dtype)
        return d


class TimeMSELoss:
    """Mean squared error over ``pred (N, T, K)`` and ``target (N, T, K)``, averaged over valid steps
    (``mask (N, T)``, default all) and outputs."""

    def __init__(self):
        self.params, self.grads = [], []
        self._cache = None

    def forward(self, pred, target, mask=None):
        target = np.asarray(target, dtype=pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(f"target has shape {target.shape}; expected {pred.shape}")
        m = np.ones(pred.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        count = max(int(m.sum()) * pred.shape[-1], 1)
        diff = (pred - target) * m[..., None]
        self._cache = (diff, count)
        return float((diff**2).sum() / count)

    def backward(self, dout=1.0):
        diff, count = self._cache
        return (2 * dout / count) * diff
