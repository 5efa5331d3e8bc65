"""Zoneout (``lstm_forward(..., zoneout=(z_c, z_h), zoneout_seed=s)``) where the cell-parametrized tests
(``cells.CELLS``' ``lstm_zoneout``, training masks) do not reach: the masks' law and determinism, evaluation
mode, chunks, validation, the layers."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast.reference.zoneout import masks

from test_gradcheck import numerical_gradient


def _lstm(rng, N=4, T=6, D=3, H=5, dtype=np.float64):
    return (rng.standard_normal((N, T, D)).astype(dtype), (rng.standard_normal((D, 4 * H)) * 0.4).astype(dtype),
            (rng.standard_normal((H, 4 * H)) * 0.4).astype(dtype), (rng.standard_normal(4 * H) * 0.1).astype(dtype))


def test_masks_have_the_rates_and_follow_the_seed():
    k_c, k_h = masks(11, 3, 64, 10, 256, 0.2, 0.7)
    assert abs(k_c.mean() - 0.2) < 0.01 and abs(k_h.mean() - 0.7) < 0.01
    assert np.array_equal(k_c, masks(11, 3, 64, 10, 256, 0.2, 0.7)[0])
    assert not np.array_equal(k_c, masks(12, 3, 64, 10, 256, 0.2, 0.7)[0])
    assert not np.array_equal(k_c, masks(11, 4, 64, 10, 256, 0.2, 0.7)[0])
    assert not masks(11, 3, 8, 10, 16, 0.0, 0.0)[0].any()


def test_zero_rates_give_the_plain_lstm(rng):
    x, Wx, Wh, b = _lstm(rng)
    plain = rnnfast.lstm_forward(x, Wx, Wh, b)
    for seed in (5, None):
        zoned = rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.0, 0.0), zoneout_seed=seed)
        for a, z in zip(plain[:3], zoned[:3]):
            np.testing.assert_allclose(z, a, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("seed", [7, None])
def test_kernels_match_the_reference_and_finite_differences(seed, rng):
    x, Wx, Wh, b = _lstm(rng)
    h0, c0 = rng.standard_normal((2, 4, 5))
    lengths = np.array([6, 2, 4, 5])
    dhs, dh, dc = rng.standard_normal((4, 6, 5)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    kw = dict(lengths=lengths, zoneout=(0.3, 0.45), zoneout_seed=seed)
    got = {}
    for impl in (rnnfast, reference):
        hs, hT, cT, cache = impl.lstm_forward(x, Wx, Wh, b, h0, c0, **kw)
        got[impl] = [hs, hT, cT, *impl.lstm_backward(dhs, cache, dh, dc)]
    for a, r in zip(got[rnnfast], got[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)

    def loss():
        hs, hT, cT, _ = rnnfast.lstm_forward(x, Wx, Wh, b, h0, c0, **kw)
        return float(np.sum(hs * dhs) + np.sum(hT * dh) + np.sum(cT * dc))

    for a, g in zip([x, Wx, Wh, b, h0, c0], got[rnnfast][3:]):
        np.testing.assert_allclose(g, numerical_gradient(loss, a), rtol=1e-5, atol=1e-7)


def test_evaluation_mode_chunks_equal_the_whole_sequence(rng):
    x, Wx, Wh, b = _lstm(rng, T=12)
    kw = dict(zoneout=(0.3, 0.45))
    whole = rnnfast.lstm_forward(x, Wx, Wh, b, **kw)
    h = c = None
    pieces = []
    for t0 in range(0, 12, 5):
        hs, h, c, _ = rnnfast.lstm_forward(x[:, t0:t0 + 5], Wx, Wh, b, h, c, **kw)
        pieces.append(hs)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole[0], rtol=1e-12)


def test_training_masks_change_with_the_seed_and_not_with_the_threads(rng):
    x, Wx, Wh, b = _lstm(rng, N=37, T=5, D=16, H=64, dtype=np.float32)
    one = rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.5, 0.5), zoneout_seed=1, num_threads=1)[0]
    assert np.array_equal(one, rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.5, 0.5), zoneout_seed=1,
                                                    num_threads=2)[0])
    assert not np.array_equal(one, rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.5, 0.5), zoneout_seed=2)[0])


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=lambda m: m.__name__)
def test_bad_zoneout_arguments_are_clear_errors(impl, rng):
    x, Wx, Wh, b = _lstm(rng)
    with pytest.raises(ValueError, match=r"zoneout's z_h must be in \[0, 1\); got 1.0"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=(0.1, 1.0))
    with pytest.raises(TypeError, match="zoneout must be a pair of rates"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=0.1)
    with pytest.raises(ValueError, match="zoneout_seed must be an int"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=(0.1, 0.1), zoneout_seed=-1)
    with pytest.raises(ValueError, match="zoneout_seed: given without zoneout"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout_seed=3)
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=(0.1, 0.1), peephole=np.zeros(15))


def test_the_layer_draws_fresh_masks_while_training_and_uses_the_expectation_otherwise(rng):
    from rnnfast.layers import RecurrentStack, TimeLSTM
    layer = TimeLSTM.init(3, 5, rng=np.random.default_rng(0), dtype=np.float64, zoneout=(0.3, 0.3))
    x = rng.standard_normal((4, 6, 3))
    first, second = layer.forward(x), layer.forward(x)
    assert not np.array_equal(first, second)  # a new seed per training pass
    layer.training = False
    evaluation = layer.forward(x)
    Wx, Wh, b = layer.params
    np.testing.assert_array_equal(evaluation, rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.3, 0.3))[0])
    state = None
    for t in range(6):  # generation steps use the expectation, like evaluation
        h, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(h, evaluation[:, t], rtol=1e-12)
    stack = RecurrentStack("lstm", 3, 5, num_layers=2, rng=rng, dtype=np.float64, zoneout=(0.2, 0.1))
    stack.eval()
    assert not any(d.training for layer in stack.layers for d in layer)
    a, b = stack.forward(x), stack.forward(x)
    np.testing.assert_array_equal(a, b)


def test_the_layer_gradients_match_finite_differences_under_fixed_masks(rng):
    from rnnfast.layers import TimeLSTM
    layer = TimeLSTM.init(3, 4, rng=rng, dtype=np.float64, zoneout=(0.3, 0.4))
    x, R = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))
    seed_rng = layer.rng

    def loss():  # the same masks at every call: the same seed
        layer.rng = np.random.default_rng(42)
        return float(np.sum(layer.forward(x) * R))

    loss()
    layer.backward(R)
    for p, g in zip(layer.params, [g.copy() for g in layer.grads]):
        np.testing.assert_allclose(g, numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)
    layer.rng = seed_rng


def test_model_checkpoint_and_cli(tmp_path, rng, capsys):
    from rnnfast.cli import main
    from rnnfast.models import RNNLM
    model = RNNLM(20, 8, 16, 2, "lstm", zoneout=(0.1, 0.05))
    assert model.config["zoneout"] == [0.1, 0.05]
    restored = RNNLM(**{**model.config, "seed": 1})
    restored.load_state_arrays(dict(model.state_arrays()))
    tokens = rng.integers(0, 20, size=200)
    assert restored.perplexity(tokens) == model.perplexity(tokens)  # evaluation: no masks drawn
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        RNNLM(20, 8, 16, 2, "lstm", zoneout=(0.1, 0.1), layer_norm=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 80)
    ckpt = tmp_path / "lm.npz"
    args = ["train", "--data", str(corpus), "--zoneout", "0.1", "0.05", "--layers", "1", "--hidden", "16", "--embed",
            "8", "--epochs", "1", "--batch-size", "4", "--seq-len", "16", "--checkpoint", str(ckpt), "--quiet",
            "--sample-length", "0"]
    assert main(args) == 0
    assert "LSTM (zoneout 0.1, 0.05)" in capsys.readouterr().out
    assert main(args[:-3] + ["--resume", "--epochs", "2", "--quiet", "--sample-length", "0"]) == 0
    assert "epoch 2:" in capsys.readouterr().out
    assert main(["train", "--cell", "gru", "--zoneout", "0.1", "0.1"]) == 2
    assert "--zoneout needs --cell lstm" in capsys.readouterr().err
