"""The min-char-rnn example equals a plain-NumPy transcription of Karpathy's lossFun."""
import io

import numpy as np

from rnnfast.cli import min_char_rnn


def karpathy_loss_fun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """lossFun from min-char-rnn, verbatim apart from the arguments."""
    vocab_size = Why.shape[0]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def test_loss_and_gradients_equal_the_numpy_original():
    rng = np.random.RandomState(0)
    V, H, T = 13, 20, 25
    params = min_char_rnn.init_params(V, H, rng)
    params = {k: v * 40 for k, v in params.items()}  # big enough that some gradients get clipped
    params["bh"] = rng.randn(H, 1)
    inputs, targets = list(rng.randint(0, V, T)), list(rng.randint(0, V, T))
    hprev = rng.randn(H, 1) * 0.5
    ours = min_char_rnn.loss_fun(inputs, targets, hprev, params)
    theirs = karpathy_loss_fun(inputs, targets, hprev, *(params[k] for k in ("Wxh", "Whh", "Why", "bh", "by")))
    assert ours[0] == np.float64(theirs[0]) or abs(ours[0] - theirs[0]) <= 1e-10 * abs(theirs[0])
    for a, b in zip(ours[1:], theirs[1:]):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert any(np.any(np.abs(g) == 5) for g in ours[1:6])  # clipping was exercised


def test_training_loop_prints_samples_and_learns():
    text = "hello world, " * 200
    out = io.StringIO()
    history = min_char_rnn.train(text, iters=301, hidden_size=32, out=out, seed=0)
    log = out.getvalue()
    assert log.count("----\n") == 2 * 4 and "iter 300, loss:" in log
    assert history[-1] < history[0] - 1.0  # smoothed loss falls (slowly, by design: 0.999 smoothing)
