"""The layer-normalized GRU (``gru_forward(..., layer_norm=ln)``, reset-after): kernels against the NumPy
reference and finite differences, the reference against PyTorch autograd, bits across threads and inference,
single steps, validation."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference

from cells import rel_err
from test_gradcheck import assert_layer_gradients_and_steps, numerical_gradient

SHAPES = [(3, 5, 4, 6), (16, 7, 8, 128), (33, 4, 5, 70), (1, 2, 3, 5)]


def problem(rng, N, T, D, H, dtype=np.float64):
    """``x, [Wx, Wh, bx, bh, ln], h0, lengths, dhs, dhT``."""
    def draw(*shape, scale=1.0, mean=0.0):
        return (mean + rng.standard_normal(shape) * scale).astype(dtype)
    params = [draw(D, 3 * H, scale=0.3), draw(H, 3 * H, scale=0.3), draw(3 * H, scale=0.1), draw(3 * H, scale=0.1),
              draw(6 * H, scale=0.2, mean=1.0)]
    return draw(N, T, D), params, draw(N, H), rng.integers(1, T + 1, size=N), draw(N, T, H), draw(N, H)


def run(impl, x, params, h0, lengths, dhs, dhT, **kw):
    Wx, Wh, bx, bh, ln = params
    hs, hT, cache = impl.gru_forward(x, Wx, Wh, bx, bh, h0, lengths=lengths, layer_norm=ln, **kw)
    return [hs, hT], list(impl.gru_backward(dhs, cache, dhT))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ragged", [False, True])
def test_kernel_matches_reference(shape, dtype, tol, ragged, rng):
    x, params, h0, lengths, dhs, dhT = problem(rng, *shape, dtype=dtype)
    lengths = lengths if ragged else None
    outs, grads = run(rnnfast, x, params, h0, lengths, dhs, dhT, num_threads=2)
    ref_outs, ref_grads = run(reference, x, params, h0, lengths, dhs, dhT)
    assert len(grads) == len(ref_grads) == 7 and grads[-1].shape == (6 * shape[3],)
    for got, want in zip(outs + grads, ref_outs + ref_grads):
        assert got.dtype == dtype
        assert rel_err(got, want) < tol


def test_gradients_match_finite_differences(rng):
    x, params, h0, lengths, dhs, dhT = problem(rng, 3, 4, 2, 5)

    def loss():
        outs, _ = run(rnnfast, x, params, h0, lengths, dhs, dhT)
        return sum(float(np.sum(o * w)) for o, w in zip(outs, [dhs, dhT]))

    _, (dx, dWx, dWh, dbx, dbh, dh0, dln) = run(rnnfast, x, params, h0, lengths, dhs, dhT)
    for a, g in zip([x, *params[:4], h0, params[4]], [dx, dWx, dWh, dbx, dbh, dh0, dln]):
        np.testing.assert_allclose(g, numerical_gradient(loss, a), rtol=1e-5, atol=1e-7)


def test_reference_equals_torch_autograd(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    N, T, D, H = 3, 5, 4, 6
    x, params, h0, lengths, dhs, dhT = problem(rng, N, T, D, H)
    outs, grads = run(reference, x, params, h0, lengths, dhs, dhT)
    X, Wx, Wh, bx, bh, ln, h = (torch.tensor(a, requires_grad=True) for a in (x, *params, h0))
    leaves = [X, Wx, Wh, bx, bh, h, ln]

    def norm(v, gain):
        mu = v.mean(-1, keepdim=True)
        return (v - mu) / torch.sqrt(((v - mu) ** 2).mean(-1, keepdim=True) + 1e-5) * gain

    hs = []
    for t in range(T):
        ax, ah = norm(X[:, t] @ Wx, ln[:3 * H]) + bx, norm(h @ Wh, ln[3 * H:]) + bh
        r, z = torch.sigmoid(ax[:, :H] + ah[:, :H]), torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        h_new = (1 - z) * n + z * h
        valid = torch.tensor(t < lengths)[:, None]
        hs.append(torch.where(valid, h_new, torch.zeros_like(h_new)))
        h = torch.where(valid, h_new, h)
    want = [torch.stack(hs, 1), h]
    sum((w * torch.from_numpy(d)).sum() for w, d in zip(want, [dhs, dhT])).backward()
    for got, w in zip(outs + grads, [v.detach() for v in want] + [v.grad for v in leaves]):
        np.testing.assert_allclose(got, w.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("shape", [(37, 6, 16, 64), (32, 16, 16, 256)])  # the second: see test_projection.py
def test_bits_do_not_depend_on_threads_and_inference_gives_the_same_bits(ragged, shape, rng):
    x, params, h0, lengths, dhs, dhT = problem(rng, *shape, dtype=np.float32)
    lengths = lengths if ragged else None
    base = run(rnnfast, x, params, h0, lengths, dhs, dhT, num_threads=1)
    for nt in (2, 3):
        again = run(rnnfast, x, params, h0, lengths, dhs, dhT, num_threads=nt)
        for a, b in zip(base[0] + base[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)
    Wx, Wh, bx, bh, ln = params
    inference = rnnfast.gru_forward(x, Wx, Wh, bx, bh, h0, lengths=lengths, layer_norm=ln, need_grad=False)
    assert inference[-1] is None
    for a, b in zip(base[0], inference[:2]):
        np.testing.assert_array_equal(a, b)


def test_single_steps_match_the_reference(rng):
    x, (Wx, Wh, bx, bh, ln), h, _, _, dh = problem(rng, 4, 1, 3, 6)
    got = {}
    for impl in (rnnfast, reference):
        h1, cache = impl.gru_step_forward(x[:, 0], h, Wx, Wh, bx, bh, layer_norm=ln)
        got[impl] = [h1, *impl.gru_step_backward(dh, cache)]
    assert got[rnnfast][-1].shape == (36,)
    for a, r in zip(got[rnnfast], got[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=lambda m: m.__name__)
def test_bad_layer_norm_arguments_are_clear_errors(impl, rng):
    x, (Wx, Wh, bx, bh, ln), _, _, _, _ = problem(rng, 3, 4, 5, 6)
    with pytest.raises(ValueError, match=r"layer_norm has shape \(35,\); expected \(36,\) = \(6H,\)"):
        impl.gru_forward(x, Wx, Wh, bx, bh, layer_norm=ln[:35])
    with pytest.raises(TypeError, match="layer_norm has dtype float32"):
        impl.gru_forward(x, Wx, Wh, bx, bh, layer_norm=ln.astype(np.float32))
    bad = ln.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="layer_norm contains NaN or Inf"):
        impl.gru_forward(x, Wx, Wh, bx, bh, layer_norm=bad)
    with pytest.raises(ValueError, match="the reset-after one; got reset_after=False"):
        impl.gru_forward(x, Wx, Wh, bx, bh, reset_after=False, layer_norm=ln)



@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_layer_gradients_include_the_normalizations(backend, rng):
    from rnnfast.layers import TimeGRU
    layer = TimeGRU.init(3, 5, rng=rng, dtype=np.float64, backend=backend, layer_norm=True)
    assert layer.params[4].shape == (30,) and layer.layer_norm is layer.params[4]
    np.testing.assert_array_equal(layer.layer_norm, np.ones(30))
    layer.layer_norm[...] += rng.standard_normal(30) * 0.1  # away from the initial values
    assert_layer_gradients_and_steps(layer, rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 5)))
    with pytest.raises(ValueError, match="the reset-after one"):
        TimeGRU.init(3, 5, reset_after=False, layer_norm=True)


def test_stack_model_checkpoint_and_cli(tmp_path, rng, capsys):
    from rnnfast.cli import main
    from rnnfast.layers import RecurrentStack
    from rnnfast.models import RNNLM
    stack = RecurrentStack("gru", 4, 6, num_layers=2, bidirectional=True, layer_norm=True, rng=rng)
    assert sum(p.shape == (36,) for p in stack.params) == 4
    assert stack.forward(rng.standard_normal((3, 5, 4)).astype(np.float32)).shape == (3, 5, 12)
    model = RNNLM(20, 8, 16, 2, "gru", layer_norm=True)
    assert model.config["layer_norm"] and sum(p.shape == (96,) for p in model.params) == 2
    restored = RNNLM(**{**model.config, "seed": 1})
    restored.load_state_arrays(dict(model.state_arrays()))
    tokens = rng.integers(0, 20, size=200)
    assert restored.perplexity(tokens) == model.perplexity(tokens)
    with pytest.raises(ValueError, match="layer_norm needs cell='lstm' or gru; got cell='rnn'"):
        RNNLM(20, 8, 16, 2, "rnn", layer_norm=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 80)
    ckpt = tmp_path / "lm.npz"
    args = ["train", "--data", str(corpus), "--cell", "gru-layernorm", "--layers", "1", "--hidden", "16", "--embed",
            "8", "--epochs", "1", "--batch-size", "4", "--seq-len", "16", "--checkpoint", str(ckpt), "--quiet",
            "--sample-length", "0"]
    assert main(args) == 0
    assert "GRU (layer norm)" in capsys.readouterr().out
    assert main(args[:-3] + ["--resume", "--epochs", "2", "--quiet", "--sample-length", "0"]) == 0
    assert "epoch 2:" in capsys.readouterr().out
    assert main(["train", "--cell", "gru-layernorm", "--proj-size", "4"]) == 2
    assert "--proj-size needs an LSTM cell" in capsys.readouterr().err


def test_truncated_bptt_chunks_make_the_whole_sequence(rng):
    # two chunks, the state carried forward and its gradient carried back, give the whole sequence's results
    x, params, h0, _, dhs, dhT = problem(rng, 4, 8, 3, 6)
    Wx, Wh, bx, bh, ln = params
    hs, hT, cache = rnnfast.gru_forward(x, Wx, Wh, bx, bh, h0, layer_norm=ln)
    whole = rnnfast.gru_backward(dhs, cache, dhT)
    hs1, h1, c1 = rnnfast.gru_forward(x[:, :5], Wx, Wh, bx, bh, h0, layer_norm=ln)
    hs2, h2, c2 = rnnfast.gru_forward(x[:, 5:], Wx, Wh, bx, bh, h1, layer_norm=ln)
    np.testing.assert_allclose(np.concatenate([hs1, hs2], axis=1), hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2, hT, rtol=1e-12, atol=1e-14)
    g2 = rnnfast.gru_backward(dhs[:, 5:], c2, dhT)
    g1 = rnnfast.gru_backward(dhs[:, :5], c1, g2[5])
    np.testing.assert_allclose(np.concatenate([g1[0], g2[0]], axis=1), whole[0], rtol=1e-12, atol=1e-14)
    for k in (1, 2, 3, 4, 6):  # weights, biases and gains: the chunks' sums
        np.testing.assert_allclose(g1[k] + g2[k], whole[k], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g1[5], whole[5], rtol=1e-12, atol=1e-14)
