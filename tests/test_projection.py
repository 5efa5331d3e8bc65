"""The projection LSTM (``lstm_forward(..., projection=Whr)``): kernels against the NumPy reference and
finite differences, bits across threads and inference, single steps, validation."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast._core import driver
from rnnfast._core.plan import StepPlan
from rnnfast.cells import LSTM

from cells import rel_err
from test_gradcheck import numerical_gradient

SHAPES = [(3, 5, 4, 6, 3), (16, 7, 8, 128, 32), (33, 4, 5, 70, 70), (40, 3, 9, 24, 30), (1, 2, 3, 5, 8)]


def problem(rng, N, T, D, H, P, dtype=np.float64, peephole=False):
    """``x, [Wx, Wh, b, Whr, (peephole)], [h0, c0], lengths, dhs, [dhT, dcT]``."""
    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)
    params = [draw(D, 4 * H, scale=0.3), draw(P, 4 * H, scale=0.3), draw(4 * H, scale=0.1), draw(H, P, scale=0.3)]
    if peephole:
        params.append(draw(3 * H, scale=0.5))
    return (draw(N, T, D), params, [draw(N, P), draw(N, H)], rng.integers(1, T + 1, size=N), draw(N, T, P),
            [draw(N, P), draw(N, H)])


def run(impl, x, params, states, lengths, dhs, dfinals, **kw):
    Wx, Wh, b, Whr, *peep = params
    extra = {"peephole": peep[0]} if peep else {}
    hs, hT, cT, cache = impl.lstm_forward(x, Wx, Wh, b, *states, lengths=lengths, projection=Whr, **extra, **kw)
    return [hs, hT, cT], list(impl.lstm_backward(dhs, cache, *dfinals))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_kernel_matches_reference(shape, dtype, tol, ragged, peephole, rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, *shape, dtype=dtype, peephole=peephole)
    lengths = lengths if ragged else None
    outs, grads = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=2)
    ref_outs, ref_grads = run(reference, x, params, states, lengths, dhs, dfinals)
    assert len(grads) == len(ref_grads) == 7 + peephole
    N, T, D, H, P = shape
    assert outs[0].shape == (N, T, P) and outs[1].shape == (N, P) and outs[2].shape == (N, H)
    assert grads[-1].shape == (H, P) and grads[4].shape == (N, P) and grads[5].shape == (N, H)
    for got, want in zip(outs + grads, ref_outs + ref_grads):
        assert got.dtype == dtype
        assert rel_err(got, want) < tol


def test_gradients_match_finite_differences(rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, 3, 4, 2, 5, 3, peephole=True)
    R, S = dhs, dfinals

    def loss():
        outs, _ = run(rnnfast, x, params, states, lengths, dhs, dfinals)
        return sum(float(np.sum(o * w)) for o, w in zip(outs, [R, *S]))

    _, grads = run(rnnfast, x, params, states, lengths, dhs, dfinals)
    dx, dWx, dWh, db, dh0, dc0, dpeep, dWhr = grads
    for a, g in zip([x, *params[:3], *states, params[4], params[3]], [dx, dWx, dWh, db, dh0, dc0, dpeep, dWhr]):
        np.testing.assert_allclose(g, numerical_gradient(loss, a), rtol=1e-5, atol=1e-7)


# (32, 16, 16, 256, 64): a shape whose plain LSTM steps take the micro-kernel, whose row blocks follow the threads
@pytest.mark.parametrize("shape", [(37, 6, 16, 64, 24), (32, 16, 16, 256, 64)])
@pytest.mark.parametrize("ragged", [False, True])
def test_bits_do_not_depend_on_threads_and_inference_gives_the_same_bits(ragged, shape, rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, *shape, dtype=np.float32)
    lengths = lengths if ragged else None
    base = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=1)
    for nt in (2, 3):
        again = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=nt)
        for a, b in zip(base[0] + base[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)
    Wx, Wh, b, Whr = params
    inference = rnnfast.lstm_forward(x, Wx, Wh, b, *states, lengths=lengths, projection=Whr, need_grad=False)
    assert inference[-1] is None
    for a, b in zip(base[0], inference[:3]):
        np.testing.assert_array_equal(a, b)


def test_a_forced_serial_plan_gives_the_same_bits(rng):
    x, params, states, _, dhs, dfinals = problem(rng, 32, 5, 16, 64, 16, dtype=np.float32)
    Wx, Wh, b, Whr = params
    outs = []
    for schedule in ("serial", "owned_rows"):
        # as the driver plans the projection: whole row blocks on BLAS, from the shape alone
        plan = StepPlan.choose(4, 32, 5, 64, np.float32, 2, D=16, schedule=schedule, whole_rows=True)
        hs, finals, cache = driver.sequence_forward(LSTM, x, Wx, Wh, [b], states, plan=plan, projection=Whr)
        outs.append([hs, *finals, *driver.sequence_backward(LSTM, dhs, cache, dfinals, "test")])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_the_projection_is_planned_on_the_shapes_tiles_through_the_plan_cache(monkeypatch):
    # whole row blocks on BLAS: weights as given, rows from the shape alone (not the micro-kernel's per-thread
    # blocks), the tiny-call rule kept, and the plan made once per shape
    import rnnfast._core.plan as plan_module
    monkeypatch.setattr(plan_module, "blas_has_small_matrix_path", lambda: False)  # where steps take the micro-kernel
    plan_module._chosen.cache_clear()
    plans = [StepPlan.choose(4, 32, 16, 256, np.float32, nt, whole_rows=True) for nt in (1, 2, 2)]
    assert all(p.step_weights == "as_given" and "whole row blocks" in p.why("step_weights") for p in plans)
    assert plans[0].rows == plans[1].rows and plans[1] is plans[2]
    assert StepPlan.choose(4, 32, 16, 256, np.float32, 2).step_weights == "microkernel"  # the plain LSTM's
    assert StepPlan.choose(4, 2, 3, 16, np.float32, 2, whole_rows=True).num_threads == 1  # a tiny call: one thread
    plan_module._chosen.cache_clear()


def test_single_steps_match_the_reference(rng):
    x, (Wx, Wh, b, Whr), (h, c), _, _, (dh, dc) = problem(rng, 4, 1, 3, 6, 2)
    got = {}
    for impl in (rnnfast, reference):
        h1, c1, cache = impl.lstm_step_forward(x[:, 0], h, c, Wx, Wh, b, projection=Whr)
        got[impl] = [h1, c1, *impl.lstm_step_backward(dh, dc, cache)]
    shapes = [(4, 2), (4, 6), (4, 3), (4, 2), (4, 6), (3, 24), (2, 24), (24,), (6, 2)]
    assert [a.shape for a in got[rnnfast]] == shapes
    for a, r in zip(got[rnnfast], got[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=lambda m: m.__name__)
def test_bad_projection_arguments_are_clear_errors(impl, rng):
    x, (Wx, Wh, b, Whr), (h0, c0), _, _, _ = problem(rng, 3, 4, 5, 6, 2)
    with pytest.raises(ValueError, match=r"Wh has shape \(6, 24\); expected \(2, 24\) = \(P, 4H\)"):
        impl.lstm_forward(x, Wx, np.zeros((6, 24)), b, projection=Whr)
    with pytest.raises(ValueError, match=r"projection must have 2 dimensions|projection has 1 dimension"):
        impl.lstm_forward(x, Wx, Wh, b, projection=Whr[:, 0])
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 6\); expected \(3, 2\)"):
        impl.lstm_forward(x, Wx, Wh, b, np.zeros((3, 6)), projection=Whr)
    with pytest.raises(TypeError, match="projection has dtype float32"):
        impl.lstm_forward(x, Wx, Wh, b, projection=Whr.astype(np.float32))
    bad = Whr.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="projection contains NaN or Inf"):
        impl.lstm_forward(x, Wx, Wh, b, projection=bad)
    _, _, _, cache = impl.lstm_forward(x, Wx, Wh, b, h0, c0, projection=Whr)
    with pytest.raises(ValueError, match=r"dhs has shape \(3, 4, 6\); expected \(3, 4, 2\)"):
        impl.lstm_backward(np.zeros((3, 4, 6)), cache)
    with pytest.raises(ValueError, match=r"dcT has shape \(3, 2\); expected \(3, 6\)"):
        impl.lstm_backward(np.zeros((3, 4, 2)), cache, None, np.zeros((3, 2)))


def test_only_the_lstm_has_a_projection(rng):
    from rnnfast.cells import GRU
    x = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="projection: only the LSTM has one"):
        driver.sequence_forward(GRU, x, np.zeros((4, 15)), np.zeros((5, 15)), [np.zeros(15)] * 2, [None],
                                option=True, projection=np.zeros((5, 2)))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_layer_gradients_include_the_projection(backend, rng):
    from rnnfast.layers import TimeLSTM
    layer = TimeLSTM.init(3, 5, rng=rng, dtype=np.float64, backend=backend, peephole=True, proj_size=2)
    assert [p.shape for p in layer.params] == [(3, 20), (2, 20), (20,), (15,), (5, 2)]
    assert layer.hidden_size == 5 and layer.output_size == 2 and layer.projection is layer.params[4]
    x = rng.standard_normal((2, 4, 3))
    R = rng.standard_normal((2, 4, 2))

    def loss():
        return float(np.sum(layer.forward(x) * R))

    loss()
    dx = layer.backward(R)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-8)
    for p, g in zip(layer.params, [g.copy() for g in layer.grads]):
        np.testing.assert_allclose(g, numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)
    hs = layer.forward(x, need_grad=False)
    state = None
    for t in range(4):  # generation steps follow the forward pass
        h, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(h, hs[:, t], rtol=1e-12)
    assert state[0].shape == (2, 2) and state[1].shape == (2, 5)


def test_stack_equals_torch_nn_lstm_with_proj_size(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from rnnfast.layers import RecurrentStack
    D, H, P, N, T = 3, 6, 2, 4, 5
    stack = RecurrentStack("lstm", D, H, num_layers=2, bidirectional=True, rng=rng, dtype=np.float64, proj_size=P)
    assert stack.output_size == 2 * P
    ref = torch.nn.LSTM(D, H, 2, batch_first=True, bidirectional=True, proj_size=P).double()
    with torch.no_grad():
        for k, layer in enumerate(stack.layers):
            for sfx, direction in zip(["", "_reverse"], layer):
                Wx, Wh, b, Whr = direction.params
                getattr(ref, f"weight_ih_l{k}{sfx}").copy_(torch.from_numpy(Wx.T))
                getattr(ref, f"weight_hh_l{k}{sfx}").copy_(torch.from_numpy(Wh.T))
                getattr(ref, f"bias_ih_l{k}{sfx}").copy_(torch.from_numpy(b))
                getattr(ref, f"bias_hh_l{k}{sfx}").zero_()
                getattr(ref, f"weight_hr_l{k}{sfx}").copy_(torch.from_numpy(Whr.T))
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((4, N, P)), rng.standard_normal((4, N, H))
    out = stack.forward(x, h0=h0, c0=c0)
    xt = torch.from_numpy(x).requires_grad_()
    out_t, (hn_t, cn_t) = ref(xt, (torch.from_numpy(h0), torch.from_numpy(c0)))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    hn, cn = stack.final_state
    np.testing.assert_allclose(hn, hn_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cn, cn_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    R = rng.standard_normal(out.shape)
    dx = stack.backward(R)
    (out_t * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stack.layers[1][1].grads[3], ref.weight_hr_l1_reverse.grad.numpy().T, rtol=1e-10,
                               atol=1e-12)


def test_model_checkpoint_and_cli(tmp_path, rng, capsys):
    from rnnfast.cli import main
    from rnnfast.models import RNNLM
    model = RNNLM(20, 8, 16, 2, "lstm", proj_size=4)
    assert model.config["proj_size"] == 4 and model.affine.params[0].shape == (4, 20)
    with pytest.raises(ValueError, match="proj_size needs cell='lstm'"):
        RNNLM(20, 8, 16, 2, "gru", proj_size=4)
    with pytest.raises(ValueError, match="tie_weights needs embed_size == proj_size"):
        RNNLM(20, 8, 16, 2, "lstm", proj_size=4, tie_weights=True)
    restored = RNNLM(**{**model.config, "seed": 1})
    restored.load_state_arrays(dict(model.state_arrays()))
    tokens = rng.integers(0, 20, size=200)
    assert restored.perplexity(tokens) == model.perplexity(tokens)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 80)
    ckpt = tmp_path / "lm.npz"
    args = ["train", "--data", str(corpus), "--proj-size", "4", "--layers", "1", "--hidden", "16", "--embed", "8",
            "--epochs", "1", "--batch-size", "4", "--seq-len", "16", "--checkpoint", str(ckpt), "--quiet",
            "--sample-length", "0"]
    assert main(args) == 0
    assert "LSTM (projection to 4)" in capsys.readouterr().out
    assert main(args[:-3] + ["--resume", "--epochs", "2", "--quiet", "--sample-length", "0"]) == 0
    assert "epoch 2:" in capsys.readouterr().out
    assert main(["sample", str(ckpt), "--length", "10", "--seed", "1"]) == 0
    assert main(["train", "--cell", "gru", "--proj-size", "4"]) == 2
    assert "--proj-size needs an LSTM cell" in capsys.readouterr().err
