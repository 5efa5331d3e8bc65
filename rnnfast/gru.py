"""GRU: whole-sequence and single-step forward/backward on the Cython kernels.

Same signatures and results as ``rnnfast.reference.gru`` (the specification).
Gate blocks of the fused weights, in order: r, z, n; h' = (1 - z) * n + z * h.
"""
from __future__ import annotations

from ._core import driver
from .cells import GRU


def gru_forward(x, Wx, Wh, bx, bh, h0=None, lengths=None, reset_after=True, num_threads=None, need_grad=True,
                check_finite=True, *, layer_norm=None, embedding=None, input_dropout=None):
    """GRU over a whole batch of sequences.

    Parameters
    ----------
    x : ndarray, shape (N, T, D), float32 or float64
    Wx : ndarray, shape (D, 3H);  Wh : ndarray, shape (H, 3H);  bx, bh : ndarray, shape (3H,)
        Gate blocks in the order r, z, n.
    h0 : ndarray, shape (N, H), optional (zeros)
    lengths : int ndarray, shape (N,), optional
    reset_after : bool
        True: n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)) (PyTorch, cuDNN).
        False: n = tanh(x Wx_n + bx_n + (r * h) Wh_n + bh_n) (Cho et al., the textbook).
    num_threads, need_grad, check_finite : as in ``lstm_forward`` (``need_grad=False``: inference, ``cache``
        None; ``check_finite=False``: NaN and Inf propagate, no error).
    layer_norm : ndarray, shape (6H,), optional
        ``[g_x (3H) | g_h (3H)]``: the layer-normalized GRU (Ba et al. 2016; reset-after only):
        ``a_x = LN(x_t @ Wx; g_x) + bx``, ``a_h = LN(h_{t-1} @ Wh; g_h) + bh``, then the gates of the
        reset-after GRU on ``a_x`` and ``a_h``; each LN over one row's 3H pre-activations, biased variance, EPS
        1e-5 (``rnnfast/reference/layer_norm.py``).  ``gru_backward`` returns ``dlayer_norm`` last.
    embedding : ndarray, shape (V, D), optional
        Token input: ``x`` is integer ids ``(N, T)`` and the input ``embedding[x]``, as in ``lstm_forward``;
        ``gru_backward`` then returns the embedding's gradient ``(V, D)`` in place of ``dx``.
    input_dropout : (p, key), optional
        Dropout on the input, as in ``lstm_forward``: the cell reads ``x * keep_mask(key, p, x.shape, x.dtype)``
        and ``gru_backward``'s ``dx`` is the gradient of the ``x`` given.  Not with ``embedding``.

    Returns
    -------
    hs : (N, T, H);  hT : (N, H);  cache : for ``gru_backward`` (or None).
    """
    hs, (hT,), cache = driver.sequence_forward(GRU, x, Wx, Wh, [bx, bh], [h0], lengths, reset_after, num_threads,
                                               need_grad=need_grad, check_finite=check_finite, layer_norm=layer_norm,
                                               embedding=embedding, input_dropout=input_dropout)
    return hs, hT, cache


def gru_backward(dhs, cache, dhT=None, check_finite=True, *, out=None):
    """Backward through time.

    Parameters
    ----------
    dhs : ndarray, shape (N, T, H);  cache : from ``gru_forward``
    dhT : ndarray, shape (N, H), optional; ``None`` stops the gradient at the chunk boundary.
    check_finite : bool, as in ``gru_forward``.
    out : arrays to write the weight gradients into (dWx, dWh, dbx, dbh[, dlayer_norm]), as in ``lstm_backward``.

    Returns
    -------
    dx (N, T, D) (after token input: the embedding's gradient (V, D)), dWx (D, 3H), dWh (H, 3H), dbx (3H,), dbh (3H,), dh0 (N, H)
    [, dlayer_norm (6H,) after a layer-normalized forward pass]
    """
    return driver.sequence_backward(GRU, dhs, cache, [dhT], "rnnfast.gru_forward", check_finite, out)


def gru_step_forward(x, h, Wx, Wh, bx, bh, reset_after=True, num_threads=None, check_finite=True, *,
                     layer_norm=None):
    """One step: ``x (N, D)``, ``h (N, H)`` -> ``h_next, cache`` (``layer_norm``: as in ``gru_forward``)."""
    return driver.step_forward(GRU, x, [h], Wx, Wh, [bx, bh], reset_after, num_threads, check_finite,
                               layer_norm=layer_norm)


def gru_step_backward(dh_next, cache, check_finite=True):
    """Gradients of one step: returns ``dx (N, D), dh, dWx, dWh, dbx, dbh`` (and ``dlayer_norm``)."""
    return driver.step_backward(GRU, [dh_next], cache, check_finite)
