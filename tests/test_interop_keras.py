"""Keras weight layouts: rnnfast computes what Keras's cell equations (transcribed in NumPy) compute."""
import numpy as np
import pytest

import rnnfast
from rnnfast.interop import keras


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def keras_lstm(x, kernel, recurrent, bias):
    N, T, _ = x.shape
    H = recurrent.shape[0]
    h, c, out = np.zeros((N, H)), np.zeros((N, H)), []
    for t in range(T):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, 1)


def keras_gru(x, kernel, recurrent, bias, reset_after):
    N, T, _ = x.shape
    H = recurrent.shape[0]
    h, out = np.zeros((N, H)), []
    bx, bh = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    for t in range(T):
        mx = x[:, t] @ kernel + bx
        z = sigmoid(mx[:, :H] + h @ recurrent[:, :H] + bh[:H])
        r = sigmoid(mx[:, H:2 * H] + h @ recurrent[:, H:2 * H] + bh[H:2 * H])
        if reset_after:
            hh = np.tanh(mx[:, 2 * H:] + r * (h @ recurrent[:, 2 * H:] + bh[2 * H:]))
        else:
            hh = np.tanh(mx[:, 2 * H:] + (r * h) @ recurrent[:, 2 * H:])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, 1)


def keras_simple_rnn(x, kernel, recurrent, bias):
    h, out = np.zeros((x.shape[0], recurrent.shape[0])), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        out.append(h)
    return np.stack(out, 1)


rng = np.random.default_rng(0)
N, T, D, H = 3, 7, 5, 4
X = rng.standard_normal((N, T, D))


def w(*shape):
    return rng.standard_normal(shape) * 0.7


def test_lstm_layout():
    k, r, b = w(D, 4 * H), w(H, 4 * H), w(4 * H)
    hs, *_ = rnnfast.lstm_forward(X, *keras.lstm_from_keras(k, r, b))
    np.testing.assert_allclose(hs, keras_lstm(X, k, r, b), rtol=1e-12, atol=1e-13)
    for a, b_ in zip(keras.lstm_to_keras(*keras.lstm_from_keras(k, r, b)), (k, r, b)):
        np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_layouts(reset_after):
    k, r = w(D, 3 * H), w(H, 3 * H)
    b = w(2, 3 * H) if reset_after else w(3 * H)
    params = keras.gru_from_keras(k, r, b, reset_after=reset_after)
    hs, _, _ = rnnfast.gru_forward(X, *params, reset_after=reset_after)
    np.testing.assert_allclose(hs, keras_gru(X, k, r, b, reset_after), rtol=1e-12, atol=1e-13)
    for a, b_ in zip(keras.gru_to_keras(*params, reset_after=reset_after), (k, r, b)):
        np.testing.assert_array_equal(a, b_)


def test_gru_bias_shape_is_checked():
    with pytest.raises(ValueError, match=r"reset_after=True has \(2, 12\)"):
        keras.gru_from_keras(w(D, 3 * H), w(H, 3 * H), w(3 * H), reset_after=True)


@pytest.mark.parametrize("args, err, message", [
    ((None, w(H, 4 * H)), TypeError, "kernel must be a float32/float64 numpy.ndarray; got NoneType"),
    ((w(D, 4 * H), w(H, 3 * H)), ValueError, r"recurrent_kernel has shape \(4, 12\); expected \(4, 16\)"),
    ((w(D, 4 * H), w(H, 4 * H), w(3 * H)), ValueError, r"bias has shape \(12,\); expected \(16,\)"),
    ((w(D, 4 * H).astype(int), w(H, 4 * H)), TypeError, "kernel must be .* got dtype int64"),
])
def test_malformed_layouts_are_clear_errors(args, err, message):
    with pytest.raises(err, match=message):
        keras.lstm_from_keras(*args)


def test_simple_rnn_layout():
    k, r, b = w(D, H), w(H, H), w(H)
    hs, _, _ = rnnfast.rnn_forward(X, *keras.simple_rnn_from_keras(k, r, b))
    np.testing.assert_allclose(hs, keras_simple_rnn(X, k, r, b), rtol=1e-12, atol=1e-13)
