"""rnnfast.compat.cs231n equals the plain-NumPy cs231n functions and checks against finite differences."""
import numpy as np
import pytest

import cs231n_numpy as ref
from rnnfast.compat import cs231n

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}


def _case(dtype, N=3, T=5, D=4, H=6, G=1, seed=0):
    rng = np.random.default_rng(seed)
    a = lambda *s: (rng.standard_normal(s) * 0.5).astype(dtype)  # noqa: E731
    return a(N, T, D), a(N, H), a(D, G * H), a(H, G * H), a(G * H), a(N, T, H)


def _close(got, want, dtype):
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w.astype(dtype), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rnn_sequence_and_step(dtype):
    x, h0, Wx, Wh, b, dh = _case(dtype)
    h, cache = cs231n.rnn_forward(x, h0, Wx, Wh, b)
    h_ref, cache_ref = ref.rnn_forward(x, h0, Wx, Wh, b)
    _close([h], [h_ref], dtype)
    _close(cs231n.rnn_backward(dh, cache), ref.rnn_backward(dh, cache_ref), dtype)
    nh, c = cs231n.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    nh_ref, c_ref = ref.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    _close([nh], [nh_ref], dtype)
    _close(cs231n.rnn_step_backward(dh[:, 0], c), ref.rnn_step_backward(dh[:, 0], c_ref), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_sequence_and_step_with_gate_order_ifog(dtype):
    x, h0, Wx, Wh, b, dh = _case(dtype, G=4)
    h, cache = cs231n.lstm_forward(x, h0, Wx, Wh, b)
    h_ref, cache_ref = ref.lstm_forward(x, h0, Wx, Wh, b)
    _close([h], [h_ref], dtype)
    _close(cs231n.lstm_backward(dh, cache), ref.lstm_backward(dh, cache_ref), dtype)
    c0 = (np.random.default_rng(1).standard_normal(h0.shape) * 0.5).astype(dtype)
    nh, nc, c = cs231n.lstm_step_forward(x[:, 0], h0, c0, Wx, Wh, b)
    nh_ref, nc_ref, c_ref = ref.lstm_step_forward(x[:, 0], h0, c0, Wx, Wh, b)
    _close([nh, nc], [nh_ref, nc_ref], dtype)
    dnc = dh[:, 1]
    _close(cs231n.lstm_step_backward(dh[:, 0], dnc, c), ref.lstm_step_backward(dh[:, 0], dnc, c_ref), dtype)


def test_lstm_backward_matches_the_notebook_gradient_check():
    x, h0, Wx, Wh, b, dout = _case(np.float64, N=2, T=3, D=3, H=4, G=4, seed=4)
    _, cache = cs231n.lstm_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = cs231n.lstm_backward(dout, cache)
    for arr, analytic in [(x, dx), (h0, dh0), (Wx, dWx), (Wh, dWh), (b, db)]:
        num = cs231n.eval_numerical_gradient_array(lambda _: cs231n.lstm_forward(x, h0, Wx, Wh, b)[0], arr, dout)
        assert cs231n.rel_error(num, analytic) < 1e-7


def test_embedding_affine_and_temporal_softmax_loss():
    rng = np.random.default_rng(2)
    N, T, V, D, M = 3, 4, 7, 5, 6
    ids = rng.integers(0, V, (N, T))
    ids[0, :2] = 3  # repeated ids must add up in dW
    W = rng.standard_normal((V, D))
    out, cache = cs231n.word_embedding_forward(ids, W)
    np.testing.assert_array_equal(out, W[ids])
    dout = rng.standard_normal((N, T, D))
    num = cs231n.eval_numerical_gradient_array(lambda w: cs231n.word_embedding_forward(ids, w)[0], W, dout)
    assert cs231n.rel_error(cs231n.word_embedding_backward(dout, cache), num) < 1e-8

    w, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    out, cache = cs231n.temporal_affine_forward(out, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = cs231n.temporal_affine_backward(dout, cache)
    x = W[ids]
    for arr, analytic in [(x, dx), (w, dw), (b, db)]:
        num = cs231n.eval_numerical_gradient_array(lambda _: cs231n.temporal_affine_forward(x, w, b)[0], arr, dout)
        assert cs231n.rel_error(num, analytic) < 1e-8

    scores = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) > 0.3
    loss, dscores = cs231n.temporal_softmax_loss(scores, y, mask)
    p = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    want = -np.sum(np.log(np.take_along_axis(p, y[..., None], -1))[..., 0] * mask) / N
    assert loss == pytest.approx(want, rel=1e-12)
    num = cs231n.eval_numerical_gradient(lambda s: cs231n.temporal_softmax_loss(s, y, mask)[0], scores, verbose=False)
    assert cs231n.rel_error(num, dscores) < 1e-7
    # the assignment's sanity check: loss ~ T * log(V) for small random scores
    big = 0.001 * rng.standard_normal((100, 1, 10))
    assert cs231n.temporal_softmax_loss(big, rng.integers(0, 10, (100, 1)), np.ones((100, 1), bool))[0] == \
        pytest.approx(np.log(10), rel=1e-2)


def test_bad_ids_and_mismatched_dtypes_are_clear_errors():
    with pytest.raises(ValueError, match="x must lie in 0..3"):
        cs231n.word_embedding_forward(np.array([[4]]), np.zeros((4, 2)))
    with pytest.raises(TypeError, match="expected integer word ids"):
        cs231n.word_embedding_forward(np.array([[0.5]]), np.zeros((4, 2)))
    x, h0, Wx, Wh, b, _ = _case(np.float64, G=4)
    with pytest.raises(TypeError, match="Wx"):
        cs231n.lstm_forward(x, h0, Wx.astype(np.float32), Wh, b)
    with pytest.raises(TypeError, match="Wh must be a numpy.ndarray; got NoneType"):
        cs231n.lstm_forward(x, h0, Wx, None, b)
    with pytest.raises(ValueError, match=r"b has shape \(23,\); expected a last axis of 4 gate blocks"):
        cs231n.lstm_step_forward(x[:, 0], h0, h0, Wx, Wh, b[:-1])
