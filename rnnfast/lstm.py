"""LSTM: whole-sequence and single-step forward/backward on the Cython kernels.

Same signatures and results as ``rnnfast.reference.lstm`` (the specification).
Gate blocks of the fused weights, in order: i, f, g, o (PyTorch's order).
"""
from __future__ import annotations

from ._core import driver
from .cells import LSTM


def lstm_forward(x, Wx, Wh, b, h0=None, c0=None, lengths=None, num_threads=None, need_grad=True,
                 check_finite=True, *, peephole=None, projection=None, layer_norm=None, zoneout=None,
                 zoneout_seed=None, embedding=None, input_dropout=None):
    """LSTM over a whole batch of sequences.

    Parameters
    ----------
    x : ndarray, shape (N, T, D), float32 or float64
    Wx : ndarray, shape (D, 4H);  Wh : ndarray, shape (H, 4H);  b : ndarray, shape (4H,)
        Gate blocks in the order i, f, g, o.
    h0, c0 : ndarray, shape (N, H), optional (zeros)
    lengths : int ndarray, shape (N,), optional
        Valid steps per sequence (1..T); later steps keep the state and output zeros.
    num_threads : int, optional
        OpenMP threads; default ``$RNNFAST_NUM_THREADS``, else the core count.
    need_grad : bool
        False for inference: the same outputs, bit for bit, but nothing is kept for backward (the
        state history is two slots, not T+1) and ``cache`` is None.
    check_finite : bool
        True (default): a NaN or Inf in the inputs is a ValueError.  False skips the check (SciPy's
        convention): non-finite values propagate as in NumPy, memory-safely; the compat layers pass False.
    peephole : ndarray, shape (3H,), optional
        ``[p_i | p_f | p_o]``: the peephole LSTM (Gers & Schmidhuber), whose gates see the cell state
        through diagonal weights: ``i = sigmoid(a_i + p_i * c_{t-1})``, ``f = sigmoid(a_f + p_f * c_{t-1})``,
        ``o = sigmoid(a_o + p_o * c_t)``.  ``lstm_backward`` then returns its gradient after ``dc0``.
    projection : ndarray, shape (H, P), optional
        ``Whr``: the projection LSTM (LSTMP, Sak et al. 2014; PyTorch's ``nn.LSTM(proj_size=P)``, whose
        ``weight_hr_l0`` is ``Whr.T``): ``h_t = (o * tanh(c_t)) @ Whr``.  Then ``Wh`` is (P, 4H), ``h0``, ``hT``
        and ``hs`` are P wide, ``c0``, ``cT`` H wide; ``lstm_backward`` returns ``dprojection`` last.
    layer_norm : ndarray, shape (10H,), optional
        ``[g_x (4H) | g_h (4H) | g_c (H) | b_c (H)]``: the layer-normalized LSTM (Ba et al. 2016, as haste's
        ``LayerNormLSTM``): ``a = LN(x_t @ Wx; g_x) + LN(h_{t-1} @ Wh; g_h) + b`` and
        ``h_t = o * tanh(LN(c_t; g_c, b_c))``, each LN over one row's units, biased variance, EPS 1e-5
        (``rnnfast/reference/layer_norm.py``).  ``lstm_backward`` returns ``dlayer_norm`` last.  Not with
        ``peephole`` or ``projection``.
    zoneout : (z_c, z_h), optional; zoneout_seed : int, optional
        Zoneout (Krueger et al. 2016): each unit of c and h keeps its previous value with probability z_c, z_h
        (``c_t = k_c c_{t-1} + (1 - k_c) c~``, ``h_t = k_h h_{t-1} + (1 - k_h) o tanh(c~)``).  With a seed, the
        masks k of training, drawn per step, sequence and unit from a counter-based generator (the same for
        any thread count); without, evaluation: k = z.  Not with the other variants.
    embedding : ndarray, shape (V, D), optional
        Token input, an embedding layer folded in: ``x`` is then integer ids ``(N, T)`` in 0..V-1 and the
        input at each step ``embedding[x]``.  Where V is at most half the rows the steps run (N*T, or
        ``sum(lengths)``), the input projection is computed once per token, ``embedding @ Wx + bias`` (V rows
        instead of N*T), and backward sums the gate gradients by token; the results equal those of
        ``*_forward(embedding[x], ...)`` to rounding.  Backward then returns the embedding's gradient ``(V, D)``
        in place of ``dx``.
    input_dropout : (p, key), optional
        Inverted dropout on the input, as a dropout layer before this one gives it: the cell reads
        ``x * mask`` with ``mask = rnnfast.layers.dropout.keep_mask(key, p, x.shape, x.dtype)`` (element i of x
        kept where the top 24 bits of ``splitmix64(key + i)`` are at least p, then times ``1 / (1 - p)``), and
        backward's ``dx`` is the gradient of the ``x`` given.  The mask is applied in the kernels' time-major
        copy of x and of dx, so it costs no pass of its own.  Not with ``embedding``.

    Returns
    -------
    hs : (N, T, H);  hT, cT : (N, H) each sequence's last state;  cache : for ``lstm_backward`` (or None).
    """
    hs, (hT, cT), cache = driver.sequence_forward(LSTM, x, Wx, Wh, [b], [h0, c0], lengths, None, num_threads,
                                                need_grad=need_grad, check_finite=check_finite, peephole=peephole,
                                                projection=projection, layer_norm=layer_norm, zoneout=zoneout,
                                                zoneout_seed=zoneout_seed, embedding=embedding,
                                                input_dropout=input_dropout)
    return hs, hT, cT, cache


def lstm_backward(dhs, cache, dhT=None, dcT=None, check_finite=True, *, out=None):
    """Backward through time.

    Parameters
    ----------
    dhs : ndarray, shape (N, T, H)
        Gradient of the loss with respect to ``hs`` (padded steps are ignored).
    cache : from ``lstm_forward``.
    dhT, dcT : ndarray, shape (N, H), optional
        Gradient flowing into the final state; ``None`` (zeros) stops it at the
        chunk boundary, which is truncated BPTT.
    check_finite : bool, as in ``lstm_forward``.
    out : list or tuple, optional
        Arrays to write the weight gradients into (a training loop's gradient buffers), one per weight gradient
        returned, in the order returned (dWx, dWh, db, then the variant's); each None (a new array) or a
        writeable C-contiguous array of that gradient's shape and the call's dtype, sharing no memory with
        the arrays the call reads.  They are returned in their places.

    Returns
    -------
    dx (N, T, D) (after token input: the embedding's gradient (V, D)), dWx (D, 4H), dWh (H, 4H), db (4H,),
    dh0 (N, H), dc0 (N, H), then dpeephole (3H,) when
    the forward pass had peepholes, dprojection (H, P) when it had a projection, dlayer_norm (10H,) when it
    was layer-normalized.
    """
    return driver.sequence_backward(LSTM, dhs, cache, [dhT, dcT], "rnnfast.lstm_forward", check_finite, out)


def lstm_step_forward(x, h, c, Wx, Wh, b, num_threads=None, check_finite=True, *, peephole=None, projection=None,
                      layer_norm=None, zoneout=None, zoneout_seed=None):
    """One step: ``x (N, D)``, ``h, c (N, H)`` -> ``h_next, c_next, cache``; ``peephole``, ``projection``,
    ``layer_norm``, ``zoneout`` as in ``lstm_forward`` (zoneout's masks: those of step 0)."""
    return driver.step_forward(LSTM, x, [h, c], Wx, Wh, [b], None, num_threads, check_finite, peephole, projection,
                               layer_norm, zoneout, zoneout_seed)


def lstm_step_backward(dh_next, dc_next, cache, check_finite=True):
    """Gradients of one step: returns ``dx (N, D), dh, dc, dWx, dWh, db`` (then ``dpeephole``,
    ``dprojection`` after a step that had them)."""
    return driver.step_backward(LSTM, [dh_next, dc_next], cache, check_finite)
