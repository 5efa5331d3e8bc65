"""The layer-normalized LSTM (``lstm_forward(..., layer_norm=ln)``): kernels against the NumPy reference and
finite differences, the reference against PyTorch autograd, bits across threads and inference, single steps,
validation."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference

from cells import rel_err
from test_gradcheck import assert_layer_gradients_and_steps, numerical_gradient

SHAPES = [(3, 5, 4, 6), (16, 7, 8, 128), (33, 4, 5, 70), (1, 2, 3, 5)]


def problem(rng, N, T, D, H, dtype=np.float64):
    """``x, [Wx, Wh, b, ln], [h0, c0], lengths, dhs, [dhT, dcT]``."""
    def draw(*shape, scale=1.0, mean=0.0):
        return (mean + rng.standard_normal(shape) * scale).astype(dtype)
    params = [draw(D, 4 * H, scale=0.3), draw(H, 4 * H, scale=0.3), draw(4 * H, scale=0.1),
              np.concatenate([draw(9 * H, scale=0.2, mean=1.0), draw(H, scale=0.2)])]
    return (draw(N, T, D), params, [draw(N, H), draw(N, H)], rng.integers(1, T + 1, size=N), draw(N, T, H),
            [draw(N, H), draw(N, H)])


def run(impl, x, params, states, lengths, dhs, dfinals, **kw):
    Wx, Wh, b, ln = params
    hs, hT, cT, cache = impl.lstm_forward(x, Wx, Wh, b, *states, lengths=lengths, layer_norm=ln, **kw)
    return [hs, hT, cT], list(impl.lstm_backward(dhs, cache, *dfinals))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ragged", [False, True])
def test_kernel_matches_reference(shape, dtype, tol, ragged, rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, *shape, dtype=dtype)
    lengths = lengths if ragged else None
    outs, grads = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=2)
    ref_outs, ref_grads = run(reference, x, params, states, lengths, dhs, dfinals)
    assert len(grads) == len(ref_grads) == 7 and grads[-1].shape == (10 * shape[3],)
    for got, want in zip(outs + grads, ref_outs + ref_grads):
        assert got.dtype == dtype
        assert rel_err(got, want) < tol


def test_gradients_match_finite_differences(rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, 3, 4, 2, 5)

    def loss():
        outs, _ = run(rnnfast, x, params, states, lengths, dhs, dfinals)
        return sum(float(np.sum(o * w)) for o, w in zip(outs, [dhs, *dfinals]))

    _, grads = run(rnnfast, x, params, states, lengths, dhs, dfinals)
    dx, dWx, dWh, db, dh0, dc0, dln = grads
    for a, g in zip([x, *params[:3], *states, params[3]], [dx, dWx, dWh, db, dh0, dc0, dln]):
        np.testing.assert_allclose(g, numerical_gradient(loss, a), rtol=1e-5, atol=1e-7)


def test_reference_equals_torch_autograd(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x, params, states, lengths, dhs, dfinals = problem(rng, 3, 5, 4, 6)
    outs, grads = run(reference, x, params, states, lengths, dhs, dfinals)
    X, Wx, Wh, b, ln, h, c = (torch.tensor(a, requires_grad=True) for a in (x, *params, *states))
    leaves = [X, Wx, Wh, b, h, c, ln]
    H = 6

    def norm(v, gain, bias=0):
        mu = v.mean(-1, keepdim=True)
        return (v - mu) / torch.sqrt(((v - mu) ** 2).mean(-1, keepdim=True) + 1e-5) * gain + bias

    hs = []
    for t in range(5):
        a = norm(X[:, t] @ Wx, ln[:4 * H]) + norm(h @ Wh, ln[4 * H:8 * H]) + b
        i, f, g, o = (torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.tanh(a[:, 2 * H:3 * H]),
                      torch.sigmoid(a[:, 3 * H:]))
        c_new = f * c + i * g
        h_new = o * torch.tanh(norm(c_new, ln[8 * H:9 * H], ln[9 * H:]))
        valid = torch.tensor(t < lengths)[:, None]
        hs.append(torch.where(valid, h_new, torch.zeros_like(h_new)))
        h, c = torch.where(valid, h_new, h), torch.where(valid, c_new, c)
    want = [torch.stack(hs, 1), h, c]
    sum((w * torch.from_numpy(d)).sum() for w, d in zip(want, [dhs, *dfinals])).backward()
    for got, w in zip(outs + grads, [v.detach() for v in want] + [v.grad for v in leaves]):
        np.testing.assert_allclose(got, w.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("shape", [(37, 6, 16, 64), (32, 16, 16, 256)])  # the second: see test_projection.py
def test_bits_do_not_depend_on_threads_and_inference_gives_the_same_bits(ragged, shape, rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, *shape, dtype=np.float32)
    lengths = lengths if ragged else None
    base = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=1)
    for nt in (2, 3):
        again = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=nt)
        for a, b in zip(base[0] + base[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)
    Wx, Wh, b, ln = params
    inference = rnnfast.lstm_forward(x, Wx, Wh, b, *states, lengths=lengths, layer_norm=ln, need_grad=False)
    assert inference[-1] is None
    for a, b in zip(base[0], inference[:3]):
        np.testing.assert_array_equal(a, b)


def test_single_steps_match_the_reference(rng):
    x, (Wx, Wh, b, ln), (h, c), _, _, (dh, dc) = problem(rng, 4, 1, 3, 6)
    got = {}
    for impl in (rnnfast, reference):
        h1, c1, cache = impl.lstm_step_forward(x[:, 0], h, c, Wx, Wh, b, layer_norm=ln)
        got[impl] = [h1, c1, *impl.lstm_step_backward(dh, dc, cache)]
    assert got[rnnfast][-1].shape == (60,)
    for a, r in zip(got[rnnfast], got[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=lambda m: m.__name__)
def test_bad_layer_norm_arguments_are_clear_errors(impl, rng):
    x, (Wx, Wh, b, ln), _, _, _, _ = problem(rng, 3, 4, 5, 6)
    with pytest.raises(ValueError, match=r"layer_norm has shape \(59,\); expected \(60,\) = \(10H,\)"):
        impl.lstm_forward(x, Wx, Wh, b, layer_norm=ln[:59])
    with pytest.raises(TypeError, match="layer_norm has dtype float32"):
        impl.lstm_forward(x, Wx, Wh, b, layer_norm=ln.astype(np.float32))
    bad = ln.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="layer_norm contains NaN or Inf"):
        impl.lstm_forward(x, Wx, Wh, b, layer_norm=bad)
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        impl.lstm_forward(x, Wx, Wh, b, layer_norm=ln, peephole=np.zeros(18))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_layer_gradients_include_the_normalizations(backend, rng):
    from rnnfast.layers import TimeLSTM
    layer = TimeLSTM.init(3, 5, rng=rng, dtype=np.float64, backend=backend, layer_norm=True)
    assert layer.params[3].shape == (50,) and layer.layer_norm is layer.params[3]
    np.testing.assert_array_equal(layer.layer_norm, np.r_[np.ones(45), np.zeros(5)])
    layer.layer_norm[...] += rng.standard_normal(50) * 0.1  # away from the initial values
    assert_layer_gradients_and_steps(layer, rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 5)))
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        TimeLSTM.init(3, 5, peephole=True, layer_norm=True)


def test_model_checkpoint_and_cli(tmp_path, rng, capsys):
    from rnnfast.cli import main
    from rnnfast.models import RNNLM
    model = RNNLM(20, 8, 16, 2, "lstm", layer_norm=True)
    assert model.config["layer_norm"] and sum(p.shape == (160,) for p in model.params) == 2
    restored = RNNLM(**{**model.config, "seed": 1})
    restored.load_state_arrays(dict(model.state_arrays()))
    tokens = rng.integers(0, 20, size=200)
    assert restored.perplexity(tokens) == model.perplexity(tokens)
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        RNNLM(20, 8, 16, 2, "lstm", layer_norm=True, proj_size=4)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 80)
    ckpt = tmp_path / "lm.npz"
    args = ["train", "--data", str(corpus), "--cell", "lstm-layernorm", "--layers", "1", "--hidden", "16", "--embed",
            "8", "--epochs", "1", "--batch-size", "4", "--seq-len", "16", "--checkpoint", str(ckpt), "--quiet",
            "--sample-length", "0"]
    assert main(args) == 0
    assert "LSTM (layer norm)" in capsys.readouterr().out
    assert main(args[:-3] + ["--resume", "--epochs", "2", "--quiet", "--sample-length", "0"]) == 0
    assert "epoch 2:" in capsys.readouterr().out
    assert main(["train", "--cell", "lstm-layernorm", "--proj-size", "4"]) == 2
    assert "one LSTM variant at a time" in capsys.readouterr().err
