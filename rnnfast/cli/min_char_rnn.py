"""Karpathy's min-char-rnn (https://gist.github.com/karpathy/d4dee566867f8291f086) on rnnfast.

The same model, shapes and training loop -- column-vector parameters ``Wxh (H, V)``, ``Whh (H, H)``,
``Why (V, H)``, ``bh (H, 1)``, ``by (V, 1)``; sequences of 25 characters; Adagrad at 0.1;
gradients clipped elementwise to [-5, 5]; a 200-character sample and the smoothed loss every 100
iterations -- with the recurrence forward and backward through time done by ``rnnfast.rnn_forward``
and ``rnnfast.rnn_backward`` instead of a Python loop.

    python -m rnnfast.cli.min_char_rnn                 # on rnnfast's built-in corpus
    python -m rnnfast.cli.min_char_rnn --file input.txt --iters 20000
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import rnnfast


def init_params(vocab_size: int, hidden_size: int = 100, rng=np.random) -> dict:
    return {
        "Wxh": rng.randn(hidden_size, vocab_size) * 0.01,
        "Whh": rng.randn(hidden_size, hidden_size) * 0.01,
        "Why": rng.randn(vocab_size, hidden_size) * 0.01,
        "bh": np.zeros((hidden_size, 1)),
        "by": np.zeros((vocab_size, 1)),
    }


def loss_fun(inputs, targets, hprev, params):
    """min-char-rnn's ``lossFun``: returns ``loss, dWxh, dWhh, dWhy, dbh, dby, h_last``.

    ``inputs``/``targets``: lists of character ids; ``hprev (H, 1)``.  The gradient does not flow
    into ``hprev`` (truncated BPTT, as in the original)."""
    Wxh, Whh, Why, bh, by = (params[k] for k in ("Wxh", "Whh", "Why", "bh", "by"))
    V, T = Why.shape[0], len(inputs)
    x = np.zeros((1, T, V))
    x[0, np.arange(T), inputs] = 1  # one-hot, batch of one
    hs, hT, cache = rnnfast.rnn_forward(x, Wxh.T, Whh.T, bh[:, 0], hprev.T)
    ys = hs[0] @ Why.T + by.T  # (T, V) unnormalized log-probabilities
    ps = np.exp(ys - ys.max(axis=1, keepdims=True))
    ps /= ps.sum(axis=1, keepdims=True)
    loss = -np.sum(np.log(ps[np.arange(T), targets]))
    dy = ps
    dy[np.arange(T), targets] -= 1
    dWhy, dby = dy.T @ hs[0], dy.sum(axis=0)[:, None]
    _, dWx, dWh, db, _ = rnnfast.rnn_backward((dy @ Why)[None], cache)
    grads = [dWx.T, dWh.T, dWhy, db[:, None], dby]
    for g in grads:
        np.clip(g, -5, 5, out=g)  # mitigate exploding gradients
    return (loss, *grads, hT.T)


def sample(h, seed_ix, n, params, rng=np.random):
    """``n`` character ids drawn from the model, starting from state ``h (H, 1)`` and ``seed_ix``."""
    Wxh, Whh, Why, bh, by = (params[k] for k in ("Wxh", "Whh", "Why", "bh", "by"))
    V = Why.shape[0]
    h = h.T.copy()
    ix, ixes = seed_ix, []
    for _ in range(n):
        x = np.zeros((1, V))
        x[0, ix] = 1
        h, _ = rnnfast.rnn_step_forward(x, h, Wxh.T, Whh.T, bh[:, 0])
        y = h @ Why.T + by.T
        p = np.exp(y - y.max())
        p /= p.sum()
        ix = rng.choice(range(V), p=p.ravel())
        ixes.append(ix)
    return ixes


def train(data: str, iters: int, hidden_size=100, seq_length=25, learning_rate=1e-1, sample_every=100,
          out=sys.stdout, seed=None):
    """The original training loop; returns the list of smoothed losses (one per iteration)."""
    rng = np.random.RandomState(seed)
    chars = sorted(set(data))
    vocab_size = len(chars)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = dict(enumerate(chars))
    print(f"data has {len(data)} characters, {vocab_size} unique.", file=out)
    params = init_params(vocab_size, hidden_size, rng)
    mem = {k: np.zeros_like(v) for k, v in params.items()}  # Adagrad memory
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length
    n = p = 0
    hprev = np.zeros((hidden_size, 1))
    history = []
    while n < iters:
        if p + seq_length + 1 >= len(data) or n == 0:
            hprev = np.zeros((hidden_size, 1))  # reset RNN memory
            p = 0  # go from start of data
        inputs = [char_to_ix[ch] for ch in data[p:p + seq_length]]
        targets = [char_to_ix[ch] for ch in data[p + 1:p + seq_length + 1]]
        if n % sample_every == 0:
            txt = "".join(ix_to_char[ix] for ix in sample(hprev, inputs[0], 200, params, rng))
            print(f"----\n {txt} \n----", file=out)
        loss, *grads, hprev = loss_fun(inputs, targets, hprev, params)
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        history.append(smooth_loss)
        if n % sample_every == 0:
            print(f"iter {n}, loss: {smooth_loss:f}", file=out)
        for key, dparam in zip(("Wxh", "Whh", "Why", "bh", "by"), grads):
            mem[key] += dparam * dparam
            params[key] += -learning_rate * dparam / np.sqrt(mem[key] + 1e-8)  # adagrad update
        p += seq_length
        n += 1
    return history


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rnnfast.cli.min_char_rnn", description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", help="a plain-text file (default: rnnfast's built-in corpus)")
    ap.add_argument("--iters", type=int, default=5000, help="training iterations (the original runs forever)")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            data = f.read()
    else:
        from rnnfast.cli.corpus import default_corpus
        data = default_corpus()
    train(data, args.iters, hidden_size=args.hidden, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
