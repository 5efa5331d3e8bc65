"""Token input (the sequence functions' ``embedding=``): ``x`` is token ids ``(N, T)`` and the input
``embedding[x]``; backward gives the embedding's gradient, the rows of dx summed by token.  The kernels
fold the embedding into the input projection (``rnnfast._core.driver.TokenInput``); this is what they
must agree with."""
from __future__ import annotations

import numpy as np

from .._core.validation import check_flag, check_token_input


def embedded(x, embedding, Wx, check_finite):
    """``(x, tokens)``: ``x`` itself and None without an embedding, else ``embedding[x]`` and what backward
    needs (the ids and V)."""
    if embedding is None:
        return x, None
    ids, embedding, _ = check_token_input(x, embedding, Wx, check_flag("check_finite", check_finite))
    return embedding[ids], (ids, embedding.shape[0])


def embedding_gradient(cache, grads: tuple) -> tuple:
    """A backward pass's gradients with ``dx`` replaced by the embedding's ``(V, D)`` after token input."""
    if cache.tokens is None:
        return grads
    ids, V = cache.tokens
    dx = grads[0]
    dE = np.zeros((V, dx.shape[-1]), dx.dtype)
    np.add.at(dE, ids, dx)
    return (dE, *grads[1:])
