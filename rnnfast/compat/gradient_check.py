"""Numerical-gradient helpers with cs231n's names and signatures (central differences)."""
from __future__ import annotations

from random import randrange

import numpy as np


def _probe(f, x, ix, h):
    """``f`` at ``x`` with entry ``ix`` moved by +h and by -h (restored afterwards)."""
    old = x[ix]
    x[ix] = old + h
    plus = f(x)
    x[ix] = old - h
    minus = f(x)
    x[ix] = old
    return plus, minus


def eval_numerical_gradient(f, x, verbose=True, h=0.00001):
    """Gradient of the scalar ``f(x)`` at ``x`` (modified in place and restored)."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        fxph, fxmh = _probe(f, x, ix, h)
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Gradient of ``sum(f(x) * df)`` at ``x``, for array-valued ``f``."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        pos, neg = _probe(lambda a: f(a).copy(), x, ix, h)
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare ``analytic_grad`` with central differences at ``num_checks`` random entries; prints each."""
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        fxph, fxmh = _probe(f, x, ix, h)
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        rel = abs(grad_numerical - grad_analytic) / (abs(grad_numerical) + abs(grad_analytic) + 1e-300)
        print(f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, relative error: {rel:e}")


def rel_error(x, y):
    """max |x - y| / max(1e-8, |x| + |y|), the notebooks' relative error."""
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))
