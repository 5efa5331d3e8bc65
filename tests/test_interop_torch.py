"""Weights exchanged with PyTorch give PyTorch's outputs, final states and autograd gradients."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

from rnnfast.interop import torch as tinterop  # noqa: E402
from rnnfast.layers import RecurrentStack, TimeGRU  # noqa: E402

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}
TDTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def _module(kind, dtype, **kw):
    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN}[kind]
    if kind.startswith("rnn"):
        kw["nonlinearity"] = kind[4:]
    m = cls(5, 4, batch_first=True, **kw).to(TDTYPE[dtype])
    with torch.no_grad():  # biases large enough that dropping one would show
        for name, p in m.named_parameters():
            p.mul_(2.0)
    return m


CASES = [dict(), dict(num_layers=2), dict(bidirectional=True), dict(num_layers=2, bidirectional=True),
         dict(bias=False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_module_outputs_states_and_gradients_match_autograd(kind, kw, dtype):
    m = _module(kind, dtype, **kw)
    stack = tinterop.from_torch(m)
    assert isinstance(stack, RecurrentStack)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5)).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t, state_t = m(xt)
    out = stack.forward(x)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL[dtype])
    # final states: PyTorch's h_n is (layers * directions, N, H)
    h_n = state_t[0] if kind == "lstm" else state_t
    ours = [s for layer in stack.state for s in layer]
    for i, s in enumerate(ours):
        h = s[0] if kind == "lstm" else s
        np.testing.assert_allclose(h, h_n[i].detach().numpy(), **TOL[dtype])
        if kind == "lstm":
            np.testing.assert_allclose(s[1], state_t[1][i].detach().numpy(), **TOL[dtype])
    dout = rng.standard_normal(out.shape).astype(dtype)
    out_t.backward(torch.from_numpy(dout))
    dx = stack.backward(dout)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    for k, layer in enumerate(stack.layers):
        for d, direction in enumerate(layer):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            g = dict(m.named_parameters())
            np.testing.assert_allclose(direction.grads[0], g["weight_ih" + sfx].grad.numpy().T, **TOL[dtype])
            np.testing.assert_allclose(direction.grads[1], g["weight_hh" + sfx].grad.numpy().T, **TOL[dtype])
            if kw.get("bias", True):
                if kind == "gru":
                    np.testing.assert_allclose(direction.grads[2], g["bias_ih" + sfx].grad.numpy(), **TOL[dtype])
                    np.testing.assert_allclose(direction.grads[3], g["bias_hh" + sfx].grad.numpy(), **TOL[dtype])
                else:  # one rnnfast bias = b_ih + b_hh: both get its gradient
                    for name in ("bias_ih", "bias_hh"):
                        np.testing.assert_allclose(direction.grads[2], g[name + sfx].grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_round_trip_to_torch_gives_the_same_function(kind):
    m = _module(kind, np.float64, num_layers=2, bidirectional=True)
    back = tinterop.to_torch(tinterop.from_torch(m))
    assert back.batch_first and back.num_layers == 2 and back.bidirectional
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 5, 5)))
    np.testing.assert_allclose(back(x)[0].detach().numpy(), m(x)[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    sd = tinterop.state_dict_from_stack(tinterop.from_torch(m))
    assert set(sd) == set(m.state_dict())


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_convert_both_ways(kind):
    torch.manual_seed(3)
    cell = getattr(torch.nn, kind)(5, 4).double()
    layer = tinterop.from_torch(cell)
    x = np.random.default_rng(4).standard_normal((3, 5))
    h_t = cell(torch.from_numpy(x))
    h, _ = layer.step(x, None)
    np.testing.assert_allclose(h, (h_t[0] if kind == "LSTMCell" else h_t).detach().numpy(), rtol=1e-12)
    back = tinterop.to_torch(layer)
    assert type(back) is type(cell)
    for (n1, p1), (n2, p2) in zip(sorted(cell.state_dict().items()), sorted(back.state_dict().items())):
        assert n1 == n2
        if n1.startswith("weight") or kind == "GRUCell":
            np.testing.assert_array_equal(p1.numpy(), p2.numpy())


def test_load_state_dict_into_an_existing_stack():
    m = _module("lstm", np.float32, num_layers=2)
    stack = RecurrentStack("lstm", 5, 4, num_layers=2)
    tinterop.load_state_dict_into_stack(stack, m.state_dict())
    x = np.random.default_rng(5).standard_normal((2, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(stack.forward(x), m(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="lacks 'weight_ih_l1'"):
        tinterop.load_state_dict_into_stack(stack, {k: v for k, v in m.state_dict().items() if "l1" not in k})


def test_inexact_conversions_are_refused():
    layer = TimeGRU.init(5, 4, rng=np.random.default_rng(0))
    layer.reset_after = False
    with pytest.raises(ValueError, match="reset-before GRU .* no exact PyTorch form"):
        tinterop.to_torch(layer)
    stack = RecurrentStack("lstm", 5, 4)
    with pytest.raises(ValueError, match="nonzero biases"):
        tinterop.to_torch(stack, bias=False)
    with pytest.raises(ValueError, match="proj_size"):
        tinterop.from_torch(torch.nn.LSTM(5, 4, proj_size=2))
    with pytest.raises(TypeError, match="expected torch.nn.LSTM"):
        tinterop.from_torch(torch.nn.Linear(3, 3))
    with pytest.raises(TypeError, match="expected an rnnfast RecurrentStack"):
        tinterop.to_torch([np.zeros((5, 16))])


STATE_CASES = [dict(), dict(num_layers=2), dict(bidirectional=True), dict(num_layers=3, bidirectional=True)]


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("kw", STATE_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_initial_states_and_their_gradients_match_autograd(kind, kw, ragged):
    """``forward(x, h0=, c0=)``, ``final_state`` and ``backward(dout, dh_n, dc_n)`` -> ``dh0``/``dc0``: all
    equal to torch.nn with (h0, c0) and gradients flowing into (h_n, c_n), float64, 1e-10."""
    dtype = np.float64
    m = _module(kind, dtype, **kw)
    stack = tinterop.from_torch(m)
    rng = np.random.default_rng(2)
    N, T, L = 3, 6, m.num_layers * (2 if m.bidirectional else 1)
    x = rng.standard_normal((N, T, 5))
    h0, c0 = rng.standard_normal((L, N, 4)), rng.standard_normal((L, N, 4))
    lengths = np.array([6, 2, 4]) if ragged else None
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    h0t = torch.from_numpy(h0.copy()).requires_grad_(True)
    c0t = torch.from_numpy(c0.copy()).requires_grad_(True)
    inp = xt if not ragged else torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
    out_t, state_t = m(inp, (h0t, c0t) if kind == "lstm" else h0t)
    if ragged:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True, total_length=T)
    out = stack.forward(x, lengths, h0=h0, c0=c0 if kind == "lstm" else None)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL[dtype])
    finals = stack.final_state if kind == "lstm" else (stack.final_state,)
    finals_t = state_t if kind == "lstm" else (state_t,)
    for ours, theirs in zip(finals, finals_t):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL[dtype])
    dout = rng.standard_normal(out.shape)
    if ragged:
        dout[np.arange(T)[None, :] >= lengths[:, None]] = 0  # PyTorch's padded outputs are constants
    dfinals = [rng.standard_normal(f.shape) for f in finals]
    torch.autograd.backward([out_t, *finals_t], [torch.from_numpy(dout), *map(torch.from_numpy, dfinals)])
    dx = stack.backward(dout, *dfinals)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(stack.dh0, h0t.grad.numpy(), **TOL[dtype])
    if kind == "lstm":
        np.testing.assert_allclose(stack.dc0, c0t.grad.numpy(), **TOL[dtype])
    else:
        assert stack.dc0 is None
    g = dict(m.named_parameters())
    for k, layer in enumerate(stack.layers):
        for d, direction in enumerate(layer):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            np.testing.assert_allclose(direction.grads[0], g["weight_ih" + sfx].grad.numpy().T, **TOL[dtype])
            np.testing.assert_allclose(direction.grads[1], g["weight_hh" + sfx].grad.numpy().T, **TOL[dtype])


def test_initial_states_of_the_wrong_layout_are_clear_errors():
    stack = tinterop.from_torch(_module("lstm", np.float64, num_layers=2))
    x = np.zeros((3, 4, 5))
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 4\); expected \(num_layers \* num_directions, N, H\)"
                                         r" = \(2, 3, 4\)"):
        stack.forward(x, h0=np.zeros((3, 4)))
    with pytest.raises(TypeError, match="c0 must be a numpy.ndarray"):
        stack.forward(x, c0=[[0.0]])
    gru = tinterop.from_torch(_module("gru", np.float64))
    with pytest.raises(ValueError, match="c0 is the LSTM's cell state; a gru stack has none"):
        gru.forward(x, c0=np.zeros((1, 3, 4)))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_conversion_keeps_the_modules_mode(kind):
    m = _module(kind, np.float64, num_layers=2, dropout=0.5)
    stack = tinterop.from_torch(m.eval())
    assert not stack.training and not any(d.training for d in stack.dropouts)
    x = np.random.default_rng(0).standard_normal((2, 5, 5))
    np.testing.assert_allclose(stack.forward(x), m(torch.from_numpy(x))[0].detach().numpy(), **TOL[np.float64])
    assert tinterop.from_torch(m.train()).training
    assert not tinterop.to_torch(stack).training


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_bias_free_modules_keep_zero_biases_through_training(kind):
    from rnnfast.train import Adam
    m = _module(kind, np.float64, bias=False, num_layers=2)
    stack = tinterop.from_torch(m)
    assert stack.bias is False
    opt = Adam(lr=0.1)
    rng = np.random.default_rng(3)
    for _ in range(3):
        out = stack.forward(rng.standard_normal((2, 4, 5)))
        stack.backward(rng.standard_normal(out.shape))
        opt.update(stack.params, stack.grads)
    for layer in stack.layers:
        for direction in layer:
            assert all(not b.any() for b in direction.params[2:])
    back = tinterop.to_torch(stack)  # bias=False comes along
    assert back.bias is False and not any("bias" in name for name, _ in back.named_parameters())
