"""Layers: gradients by finite differences, Cython vs NumPy backend, truncated BPTT, tying, dropout."""
import numpy as np
import pytest

import rnnfast
from rnnfast.layers import (Embedding, LockedDropout, RecurrentStack, TiedAffine, TimeAffine, TimeDropout, TimeGRU,
                            TimeLSTM, TimeRNN, TimeSoftmaxWithLoss, reverse_padded)
from rnnfast.models import RNNLM

from test_gradcheck import numerical_gradient

LAYERS = [TimeLSTM, TimeGRU, TimeRNN]


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_time_layer_gradients(cls, backend, rng):
    layer = cls.init(3, 4, rng=rng, dtype=np.float64, backend=backend)
    x = rng.standard_normal((2, 5, 3))
    R = rng.standard_normal((2, 5, 4))

    def loss():
        return float(np.sum(layer.forward(x) * R))

    loss()
    grads_before = [id(g) for g in layer.grads]
    dx = layer.backward(R)
    assert [id(g) for g in layer.grads] == grads_before  # written in place
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-8)
    analytic = [g.copy() for g in layer.grads]
    for p, g in zip(layer.params, analytic):
        np.testing.assert_allclose(g, numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_recurrent_gradients_start_on_a_cache_line(cls, rng):
    """The arrays backward writes the weight gradients into (its ``out``) start on a cache line, as the
    kernels' own outputs do: on NumPy's 16-byte boundary the products' stores straddle two lines."""
    from rnnfast._core.workspace import ALIGN
    layer = cls.init(64, 256, rng=rng, dtype=np.float32)
    for p, g in zip(layer.params, layer.grads):
        assert g.ctypes.data % ALIGN == 0
        assert g.shape == p.shape and g.dtype == p.dtype and not g.any()
    grads = [id(g) for g in layer.grads]
    layer.forward(rng.standard_normal((2, 3, 64)).astype(np.float32))
    layer.backward(np.ones((2, 3, 256), np.float32))
    assert [id(g) for g in layer.grads] == grads and all(g.ctypes.data % ALIGN == 0 for g in layer.grads)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_stateful_chunks_equal_whole_sequence(cls, rng):
    whole = cls.init(3, 5, rng=np.random.default_rng(0), dtype=np.float64)
    chunked = cls.init(3, 5, rng=np.random.default_rng(0), dtype=np.float64, stateful=True)
    x = rng.standard_normal((2, 12, 3))
    full = whole.forward(x)
    parts = [chunked.forward(x[:, i:i + 4]) for i in range(0, 12, 4)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-12)
    chunked.reset_state()
    np.testing.assert_allclose(chunked.forward(x[:, :4]), full[:, :4], rtol=1e-12)
    with pytest.raises(ValueError, match="reset_state"):
        chunked.forward(x[:1, :4])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_stack_backends_agree_and_gradients(cell, bidirectional, rng):
    def build(backend):
        return RecurrentStack(cell, 3, 4, num_layers=2, bidirectional=bidirectional, rng=np.random.default_rng(7),
                              dtype=np.float64, backend=backend)

    x = rng.standard_normal((3, 6, 3))
    lengths = np.array([6, 3, 5])
    R = rng.standard_normal((3, 6, 8 if bidirectional else 4))
    fast, ref = build("cython"), build("numpy")
    np.testing.assert_allclose(fast.forward(x, lengths), ref.forward(x, lengths), rtol=1e-12)
    dx_f, dx_r = fast.backward(R), ref.backward(R)
    np.testing.assert_allclose(dx_f, dx_r, rtol=1e-10, atol=1e-12)
    for gf, gr in zip(fast.grads, ref.grads):
        np.testing.assert_allclose(gf, gr, rtol=1e-10, atol=1e-12)

    def loss():
        return float(np.sum(fast.forward(x, lengths) * R))

    np.testing.assert_allclose(dx_f, numerical_gradient(loss, x), rtol=1e-5, atol=1e-8)
    p = fast.params[1]
    np.testing.assert_allclose(fast.grads[1], numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)


def test_backend_context_switch(rng):
    layer = TimeLSTM.init(3, 4, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 3, 3))
    layer.forward(x)
    assert type(layer._cache).__module__ == "rnnfast._core.driver"
    with rnnfast.backend.use("numpy"):
        layer.forward(x)
        assert type(layer._cache).__module__ == "rnnfast.reference.lstm"
    with pytest.raises(ValueError, match="backend must be one of"):
        with rnnfast.backend.use("cuda"):
            pass


def test_reverse_padded_is_its_own_inverse(rng):
    x = rng.standard_normal((3, 5, 2))
    lengths = np.array([5, 2, 3])
    r = reverse_padded(x, lengths)
    np.testing.assert_array_equal(r[1, :2], x[1, 1::-1])
    np.testing.assert_array_equal(r[1, 2:], x[1, 2:])
    np.testing.assert_array_equal(reverse_padded(r, lengths), x)


def test_embedding_affine_softmax_gradients(rng):
    V, D, N, T = 7, 3, 2, 4
    emb = Embedding(rng.standard_normal((V, D)))
    aff = TimeAffine(rng.standard_normal((D, V)), rng.standard_normal(V))
    sm = TimeSoftmaxWithLoss(ignore_index=-1)
    ids = rng.integers(0, V, (N, T))
    targets = rng.integers(0, V, (N, T))
    targets[1, 2] = -1

    def loss():
        return sm.forward(aff.forward(emb.forward(ids)), targets)

    loss()
    emb.backward(aff.backward(sm.backward()))
    for layer in (aff, emb):
        for p, g in zip(layer.params, [g.copy() for g in layer.grads]):
            np.testing.assert_allclose(g, numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)


def test_weight_tying_gradient(rng):
    V, D = 6, 4
    emb = Embedding(rng.standard_normal((V, D)))
    aff = TiedAffine(emb, rng.standard_normal(V))
    sm = TimeSoftmaxWithLoss()
    ids, targets = rng.integers(0, V, (2, 3)), rng.integers(0, V, (2, 3))

    def loss():
        return sm.forward(aff.forward(emb.forward(ids)), targets)

    loss()
    d = aff.backward(sm.backward())
    emb.backward(d)
    aff.accumulate_into_embedding()
    np.testing.assert_allclose(emb.grads[0], numerical_gradient(loss, emb.params[0]), rtol=1e-5, atol=1e-8)
    assert aff.params[0] is not emb.params[0] and len(aff.params) == 1  # the matrix is listed once


def test_dropout_masks(rng):
    x = np.ones((50, 20, 30))
    fresh = TimeDropout(0.5, rng=np.random.default_rng(0)).forward(x)
    locked = LockedDropout(0.5, rng=np.random.default_rng(0)).forward(x)
    assert set(np.unique(fresh)) == {0.0, 2.0} and set(np.unique(locked)) == {0.0, 2.0}
    assert np.all(locked == locked[:, :1, :])  # one mask per sequence, shared over time
    assert not np.all(fresh == fresh[:, :1, :])
    assert abs(fresh.mean() - 1) < 0.05 and abs(locked.mean() - 1) < 0.1
    d = TimeDropout(0.5)
    d.training = False
    assert d.forward(x) is x
    with pytest.raises(ValueError, match="dropout p"):
        TimeDropout(1.0)


def test_rnnlm_gradients_with_tying(rng):
    model = RNNLM(11, embed_size=5, hidden_size=5, num_layers=2, cell="gru", dropout=0.0, tie_weights=True,
                  dtype="float64", seed=3)
    ids, targets = rng.integers(0, 11, (2, 4)), rng.integers(0, 11, (2, 4))

    def loss():
        model.reset_state()
        return model.forward(ids, targets)

    loss()
    model.backward()
    for i in (0, 1, len(model.params) - 1):
        p = model.params[i]
        np.testing.assert_allclose(model.grads[i], numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)


def test_scatter_add_rows_adds_repeated_ids_like_np_add_at(rng):
    from rnnfast.layers.basic import scatter_add_rows
    for V, D, n in [(100, 64, 2048), (7, 3, 50), (1000, 8, 10)]:
        ids = rng.integers(0, V, n)
        rows = rng.standard_normal((n, D))
        expected = np.zeros((V, D))
        np.add.at(expected, ids, rows)
        got = np.zeros((V, D))
        scatter_add_rows(got, ids, rows)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    empty = np.zeros((3, 2))
    scatter_add_rows(empty, np.array([], dtype=int), np.zeros((0, 2)))
    assert not empty.any()


STEPPED = {
    "lstm": (TimeLSTM, {}), "lstm-peephole": (TimeLSTM, {"peephole": True}),
    "lstm-projection": (TimeLSTM, {"proj_size": 3}), "lstm-layernorm": (TimeLSTM, {"layer_norm": True}),
    "lstm-zoneout": (TimeLSTM, {"zoneout": (0.3, 0.2)}), "gru": (TimeGRU, {}),
    "gru-reset-before": (TimeGRU, {"reset_after": False}), "gru-layernorm": (TimeGRU, {"layer_norm": True}),
    "rnn-relu": (TimeRNN, {"nonlinearity": "relu"}),
}


@pytest.mark.parametrize("kind", list(STEPPED))
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_a_layers_stepper_follows_its_steps_and_its_forward_pass(kind, backend, rng):
    cls, kw = STEPPED[kind]
    layer = cls.init(3, 5, rng=rng, dtype=np.float64, backend=backend, **kw)
    if kind == "lstm-layernorm":  # away from the initial gains and bias
        layer.params[3][...] += rng.standard_normal(layer.params[3].shape) * 0.2
    layer.training = False  # zoneout's expectation, as in generation
    x = rng.standard_normal((2, 6, 3))
    hs = layer.forward(x, need_grad=False)
    stepper, state = layer.stepper(batch_size=2), None
    for t in range(6):
        h, state = layer.step(x[:, t], state)
        got = stepper.step(x[:, t])
        np.testing.assert_allclose(got, h, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got, hs[:, t], rtol=1e-12, atol=1e-14)
    # from a given state; later updates of the weights do not reach a stepper made before them
    again = layer.stepper(state)
    want = layer.step(x[:, 0], state)[0]
    for p in layer.params:
        p[...] = 0
    np.testing.assert_allclose(again.step(x[:, 0]), want, rtol=1e-12, atol=1e-14)


def test_generation_reads_the_same_tokens_as_the_scores():
    # greedy generation through the steppers against the sequence forward's scores of what it generated
    for cell, kw in [("lstm", {}), ("gru", {"layer_norm": True}), ("lstm", {"proj_size": 4})]:
        model = RNNLM(9, 4, 6, 2, cell, dropout=0.0, seed=1, dtype="float64", **kw)
        start = [1, 4, 2]
        out = model.generate(start, 6, greedy=True)
        model.eval()
        model.reset_state()
        scores = model.scores(np.array([start + out[:-1]]))
        assert out == [int(np.argmax(s)) for s in scores[0, len(start) - 1:]]
