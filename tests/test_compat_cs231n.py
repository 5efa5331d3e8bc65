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


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_mixed_dtypes_promote_as_numpy_does(cell):
    """float32 x and weights with a float64 h0 (the captioning model's float32 parameters with float64
    image features): NumPy computes in float64, and so does the drop-in."""
    x, h0, Wx, Wh, b, dh = _case(np.float32, G=4 if cell == "lstm" else 1)
    h0 = h0.astype(np.float64)
    h, cache = getattr(cs231n, f"{cell}_forward")(x, h0, Wx, Wh, b)
    h_ref, cache_ref = getattr(ref, f"{cell}_forward")(x, h0, Wx, Wh, b)
    assert h.dtype == np.float64 and (h_ref.dtype == np.float64 or h_ref.dtype == x.dtype)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)  # NumPy's x @ Wx stays float32
    grads = getattr(cs231n, f"{cell}_backward")(dh.astype(np.float64), cache)
    for g, w in zip(grads, getattr(ref, f"{cell}_backward")(dh.astype(np.float64), cache_ref)):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    # a float32 upstream gradient into a float64 forward pass gives float64, as NumPy would
    assert all(g.dtype == np.float64 for g in getattr(cs231n, f"{cell}_backward")(dh, cache))
    step = getattr(cs231n, f"{cell}_step_forward")
    states = (h0, h0.astype(np.float32)) if cell == "lstm" else (h0,)
    assert step(x[:, 0], *states, Wx, Wh, b)[0].dtype == np.float64
    assert step(x[:, 0], *(s.astype(np.float32) for s in states), Wx, Wh, b)[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_nan_propagates_as_in_numpy(cell):
    """A diverged run prints nan losses in the assignment; the drop-in gives the same NaNs, no error."""
    x, h0, Wx, Wh, b, dh = _case(np.float64, G=4 if cell == "lstm" else 1)
    x[1, 2, 0] = np.nan
    h, cache = getattr(cs231n, f"{cell}_forward")(x, h0, Wx, Wh, b)
    h_ref, cache_ref = getattr(ref, f"{cell}_forward")(x, h0, Wx, Wh, b)
    with np.errstate(invalid="ignore"):
        grads = getattr(cs231n, f"{cell}_backward")(dh, cache)
        grads_ref = getattr(ref, f"{cell}_backward")(dh, cache_ref)
    for g, w in zip((h, *grads), (h_ref, *grads_ref)):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g[~np.isnan(g)], w[~np.isnan(w)], **TOL[np.float64])
    assert np.isnan(h[1, 2:]).all() and not np.isnan(h[0]).any()


def test_affine_layer_of_rnn_layers():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, cache = cs231n.affine_forward(x, w, b)
    np.testing.assert_allclose(out, x.reshape(4, 6) @ w + b, rtol=1e-13)
    dout = rng.standard_normal((4, 5))
    dx, dw, db = cs231n.affine_backward(dout, cache)
    assert dx.shape == x.shape
    for arr, analytic in [(x, dx), (w, dw), (b, db)]:
        num = cs231n.eval_numerical_gradient_array(lambda _: cs231n.affine_forward(x, w, b)[0], arr, dout)
        assert cs231n.rel_error(num, analytic) < 1e-8


def test_bad_ids_and_malformed_weights_are_clear_errors():
    with pytest.raises(ValueError, match="x must lie in 0..3"):
        cs231n.word_embedding_forward(np.array([[4]]), np.zeros((4, 2)))
    with pytest.raises(TypeError, match="expected integer word ids"):
        cs231n.word_embedding_forward(np.array([[0.5]]), np.zeros((4, 2)))
    x, h0, Wx, Wh, b, _ = _case(np.float64, G=4)
    with pytest.raises(TypeError, match="Wh must be a numpy.ndarray; got NoneType"):
        cs231n.lstm_forward(x, h0, Wx, None, b)
    with pytest.raises(ValueError, match=r"b has shape \(23,\); expected a last axis of 4 gate blocks"):
        cs231n.lstm_step_forward(x[:, 0], h0, h0, Wx, Wh, b[:-1])


# ---- the assignment's CaptioningRNN, unchanged but for the import line ------

def _numpy_layers():
    """The assignment's layer functions in plain NumPy (the recurrent ones from cs231n_numpy)."""
    import types
    names = ["word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
             "temporal_affine_backward", "temporal_softmax_loss", "affine_forward"]
    ns = {n: getattr(cs231n, n) for n in names}  # plain NumPy in rnnfast.compat.cs231n too
    ns.update({n: getattr(ref, n) for n in ["rnn_forward", "rnn_backward", "rnn_step_forward", "lstm_forward",
                                            "lstm_backward", "lstm_step_forward"]})
    return types.SimpleNamespace(**ns)


def _notebook_model(cell, dtype):
    """RNN_Captioning.ipynb / LSTM_Captioning.ipynb, "Check the loss": fixed parameters and inputs."""
    from cs231n_captioning import CaptioningRNN
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V, T = len(word_to_idx), 13
    model = CaptioningRNN(cs231n, word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell,
                          dtype=dtype)
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape).astype(dtype)
    lo, hi = (-1.5, 0.3) if cell == "rnn" else (-0.5, 1.7)
    features = np.linspace(lo, hi, num=(N * D)).reshape(N, D)  # float64, as the notebooks' 
    captions = (np.arange(N * T) % V).reshape(N, T)
    return model, features, captions


NOTEBOOK_LOSS = {"rnn": 9.83235591003, "lstm": 9.82445935443}


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_captioning_model_reproduces_the_notebooks_expected_loss(cell, dtype):
    model, features, captions = _notebook_model(cell, dtype)
    loss, grads = model.loss(features, captions)
    # float64 features with float32 parameters compute in float64, as in NumPy
    assert loss == pytest.approx(NOTEBOOK_LOSS[cell], rel=1e-10 if dtype == np.float64 else 1e-6)
    assert sorted(grads) == sorted(model.params)
    assert all(g.dtype == np.float64 for k, g in grads.items() if k not in ("W_embed", "W_vocab", "b_vocab"))
    model.L = _numpy_layers()
    loss_np, grads_np = model.loss(features, captions)
    # float32 parameters: NumPy multiplies the float32 embeddings by Wx in float32, the drop-in in float64
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-6)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_np[k], **tol)


def test_lstm_forward_reproduces_the_notebooks_expected_h():
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h, _ = cs231n.lstm_forward(x, h0, Wx, Wh, b)
    expected_h = np.asarray([
        [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
         [0.11287491, 0.12146228, 0.13018446, 0.13902939],
         [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
        [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
         [0.6704845, 0.69350089, 0.71486014, 0.7346449],
         [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])
    assert cs231n.rel_error(expected_h, h) < 1e-7


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_captioning_model_passes_the_notebooks_gradient_check(cell):
    from cs231n_captioning import CaptioningRNN
    np.random.seed(231)
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    captions = np.random.randint(len(word_to_idx), size=(2, 3))
    features = np.random.randn(2, 4)
    model = CaptioningRNN(cs231n, word_to_idx, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell,
                          dtype=np.float64)
    loss, grads = model.loss(features, captions)
    for name in sorted(grads):
        num = cs231n.eval_numerical_gradient(lambda _: model.loss(features, captions)[0], model.params[name],
                                             verbose=False, h=1e-6)
        # h=1e-6 leaves ~1e-9 of rounding in each difference quotient: measured against the largest entry
        # (the element-wise rel_error of an entry near 1e-5 is all rounding)
        assert np.max(np.abs(num - grads[name])) <= 1e-6 * np.max(np.abs(grads[name])), name
    model.L = _numpy_layers()
    for name, g in model.loss(features, captions)[1].items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("features_dtype", [np.float32, np.float64])
def test_captioning_model_samples_as_numpy_does(cell, features_dtype):
    from cs231n_captioning import CaptioningRNN
    np.random.seed(1)
    word_to_idx = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "dog": 5}
    model = CaptioningRNN(cs231n, word_to_idx, input_dim=8, wordvec_dim=6, hidden_dim=7, cell_type=cell)
    features = np.random.randn(5, 8).astype(features_dtype)
    got = model.sample(features, max_length=6)
    model.L = _numpy_layers()
    want = model.sample(features, max_length=6)
    assert got.shape == (5, 6) and got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
