"""Vanilla RNN (tanh or relu): whole-sequence and single-step forward/backward on the Cython kernels.

Same signatures and results as ``rnnfast.reference.rnn`` (the specification).
"""
from __future__ import annotations

from ._core import driver
from .cells import RNN


def rnn_forward(x, Wx, Wh, b, h0=None, nonlinearity="tanh", lengths=None, num_threads=None, need_grad=True,
                check_finite=True, *, embedding=None, input_dropout=None):
    """Elman RNN over a whole batch: ``h_t = act(x_t Wx + h_{t-1} Wh + b)``.

    Parameters
    ----------
    x : ndarray, shape (N, T, D);  Wx : (D, H);  Wh : (H, H);  b : (H,)
    h0 : ndarray, shape (N, H), optional (zeros)
    nonlinearity : "tanh" or "relu"
    lengths : int ndarray, shape (N,), optional
    num_threads, need_grad, check_finite : as in ``lstm_forward`` (``need_grad=False``: inference, ``cache``
        None; ``check_finite=False``: NaN and Inf propagate, no error).
    embedding : ndarray, shape (V, D), optional
        Token input: ``x`` is integer ids ``(N, T)`` and the input ``embedding[x]``, as in ``lstm_forward``;
        ``rnn_backward`` then returns the embedding's gradient ``(V, D)`` in place of ``dx``.
    input_dropout : (p, key), optional
        Dropout on the input, as in ``lstm_forward``: the cell reads ``x * keep_mask(key, p, x.shape, x.dtype)``
        and ``rnn_backward``'s ``dx`` is the gradient of the ``x`` given.  Not with ``embedding``.

    Returns
    -------
    hs : (N, T, H);  hT : (N, H);  cache : for ``rnn_backward`` (or None).
    """
    hs, (hT,), cache = driver.sequence_forward(RNN, x, Wx, Wh, [b], [h0], lengths, nonlinearity, num_threads,
                                               need_grad=need_grad, check_finite=check_finite, embedding=embedding,
                                               input_dropout=input_dropout)
    return hs, hT, cache


def rnn_backward(dhs, cache, dhT=None, check_finite=True, *, out=None):
    """Backward through time. Returns ``dx (N, T, D), dWx (D, H), dWh (H, H), db (H,), dh0 (N, H)``; ``dx`` is
    the embedding's gradient ``(V, D)`` after token input.  ``out``: arrays to write dWx, dWh, db into, as in
    ``lstm_backward``."""
    return driver.sequence_backward(RNN, dhs, cache, [dhT], "rnnfast.rnn_forward", check_finite, out)


def rnn_step_forward(x, h, Wx, Wh, b, nonlinearity="tanh", num_threads=None, check_finite=True):
    """One step: ``x (N, D)``, ``h (N, H)`` -> ``h_next, cache``."""
    return driver.step_forward(RNN, x, [h], Wx, Wh, [b], nonlinearity, num_threads, check_finite)


def rnn_step_backward(dh_next, cache, check_finite=True):
    """Gradients of one step: returns ``dx (N, D), dh, dWx, dWh, db``."""
    return driver.step_backward(RNN, [dh_next], cache, check_finite)
