"""The peephole LSTM where the cell-parametrized tests (``cells.CELLS``' ``lstm_peephole``) do not reach: its
validation, its relation to the plain LSTM, its single steps, its layer, model and CLI."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast._core import driver
from rnnfast.cells import GRU
from rnnfast.layers import RecurrentStack, TimeLSTM
from rnnfast.models import RNNLM

from test_gradcheck import assert_layer_gradients_and_steps, numerical_gradient

IMPLS = [rnnfast, reference]


def _lstm(rng, N=3, T=4, D=5, H=6, dtype=np.float64):
    x = rng.standard_normal((N, T, D)).astype(dtype)
    Wx = (rng.standard_normal((D, 4 * H)) * 0.3).astype(dtype)
    Wh = (rng.standard_normal((H, 4 * H)) * 0.3).astype(dtype)
    b = (rng.standard_normal(4 * H) * 0.1).astype(dtype)
    p = (rng.standard_normal(3 * H) * 0.5).astype(dtype)
    return x, Wx, Wh, b, p


@pytest.mark.parametrize("impl", IMPLS, ids=lambda m: m.__name__)
def test_bad_peepholes_are_clear_errors(impl, rng):
    x, Wx, Wh, b, p = _lstm(rng)
    with pytest.raises(ValueError, match=r"peephole has shape \(17,\); expected \(18,\) = \(3H,\)"):
        impl.lstm_forward(x, Wx, Wh, b, peephole=p[:17])
    with pytest.raises(TypeError, match="peephole has dtype float32"):
        impl.lstm_forward(x, Wx, Wh, b, peephole=p.astype(np.float32))
    bad = p.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match="peephole contains NaN or Inf"):
        impl.lstm_forward(x, Wx, Wh, b, peephole=bad)
    impl.lstm_forward(x, Wx, Wh, b, peephole=bad, check_finite=False)  # then it propagates, as NumPy would


def test_only_the_lstm_has_peepholes(rng):
    x = rng.standard_normal((2, 3, 4))
    Wx, Wh, bx, bh = rng.standard_normal((4, 15)), rng.standard_normal((5, 15)), np.zeros(15), np.zeros(15)
    with pytest.raises(ValueError, match="peephole: only the LSTM has one"):
        driver.sequence_forward(GRU, x, Wx, Wh, [bx, bh], [None], option=True,
                                peephole=np.zeros(15))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_peepholes_give_the_plain_lstms_bits(dtype, rng):
    x, Wx, Wh, b, p = _lstm(rng, 8, 6, 16, 64, dtype)
    dhs = rng.standard_normal((8, 6, 64)).astype(dtype)
    lengths = np.array([6, 1, 3, 6, 2, 5, 4, 6])
    plain = rnnfast.lstm_forward(x, Wx, Wh, b, lengths=lengths)
    zero = rnnfast.lstm_forward(x, Wx, Wh, b, lengths=lengths, peephole=np.zeros_like(p))
    for a, z in zip(plain[:3], zero[:3]):
        np.testing.assert_array_equal(a, z)
    g_plain = rnnfast.lstm_backward(dhs, plain[-1])
    g_zero = rnnfast.lstm_backward(dhs, zero[-1])
    assert len(g_plain) == 6 and len(g_zero) == 7
    for a, z in zip(g_plain, g_zero):
        np.testing.assert_array_equal(a, z)


def test_peepholes_change_the_result(rng):
    x, Wx, Wh, b, p = _lstm(rng)
    assert not np.allclose(rnnfast.lstm_forward(x, Wx, Wh, b)[0], rnnfast.lstm_forward(x, Wx, Wh, b, peephole=p)[0])


def test_single_steps_equal_the_reference_and_finite_differences(rng):
    x, Wx, Wh, b, p = _lstm(rng)
    x1 = x[:, 0]
    h, c = rng.standard_normal((2, 3, 6))
    dh, dc = rng.standard_normal((2, 3, 6))
    outs = {}
    for impl in IMPLS:
        h1, c1, cache = impl.lstm_step_forward(x1, h, c, Wx, Wh, b, peephole=p)
        outs[impl] = [h1, c1, *impl.lstm_step_backward(dh, dc, cache)]
    assert len(outs[rnnfast]) == 2 + 7  # dx, dh, dc, dWx, dWh, db, dpeephole
    for a, r in zip(outs[rnnfast], outs[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)

    def loss():
        h1, c1, _ = rnnfast.lstm_step_forward(x1, h, c, Wx, Wh, b, peephole=p)
        return float(np.sum(h1 * dh) + np.sum(c1 * dc))
    np.testing.assert_allclose(outs[rnnfast][-1], numerical_gradient(loss, p), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_layer_gradients_include_the_peepholes(backend, rng):
    layer = TimeLSTM.init(3, 4, rng=rng, dtype=np.float64, backend=backend, peephole=True)
    assert len(layer.params) == 4 and layer.params[3].shape == (12,) and layer.peephole is layer.params[3]
    assert_layer_gradients_and_steps(layer, rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4)))


def test_layer_bias_false_keeps_the_peepholes_gradient(rng):
    layer = TimeLSTM.init(3, 4, rng=rng, dtype=np.float64, peephole=True, bias=False)
    layer.forward(rng.standard_normal((2, 5, 3)))
    layer.backward(rng.standard_normal((2, 5, 4)))
    assert not layer.grads[2].any() and layer.grads[3].any()


def test_layer_steps_follow_its_forward_pass(rng):
    layer = TimeLSTM.init(3, 4, rng=rng, dtype=np.float64, peephole=True)
    x = rng.standard_normal((2, 5, 3))
    hs = layer.forward(x, need_grad=False)
    state = None
    for t in range(5):
        h, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(h, hs[:, t], rtol=1e-12)


def test_layer_takes_given_peepholes_and_checks_them(rng):
    _, Wx, Wh, b, p = _lstm(rng)
    layer = TimeLSTM(Wx, Wh, b, peephole=p)
    assert layer.params[3] is p
    with pytest.raises(ValueError, match="peephole has shape"):
        TimeLSTM(Wx, Wh, b, peephole=p[:5])
    with pytest.raises(TypeError, match="peephole must be True or False"):
        TimeLSTM.init(3, 4, peephole=p)


def test_stack_and_model_carry_peepholes_through_a_checkpoint(tmp_path, rng):
    stack = RecurrentStack("lstm", 3, 4, num_layers=2, bidirectional=True, rng=rng, dtype=np.float64, peephole=True)
    assert len(stack.params) == 2 * 2 * 4
    model = RNNLM(20, 8, 16, 2, "lstm", peephole=True)
    assert model.config["peephole"] and sum(p.shape == (48,) for p in model.params) == 2
    with pytest.raises(ValueError, match="peephole needs cell='lstm'"):
        RNNLM(20, 8, 16, 2, "gru", peephole=True)
    tokens = rng.integers(0, 20, size=200)
    restored = RNNLM(**{**model.config, "seed": 1})
    restored.load_state_arrays(dict(model.state_arrays()))
    for a, r in zip(model.params, restored.params):
        np.testing.assert_array_equal(a, r)
    assert restored.perplexity(tokens) == model.perplexity(tokens)
