"""``rnnfast.torch.LSTM``/``GRU``/``RNN`` against ``torch.nn``'s: the same state dicts, outputs, final states and
every gradient (float64, 1e-10 relative) for every combination of layers, directions, layout, bias, initial
states and ``PackedSequence``; the custom ops under ``opcheck`` and ``torch.compile(fullgraph=True)``."""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import rnnfast.torch as rt  # noqa: E402
from rnnfast.torch import ops  # noqa: E402

VARIANTS = {
    "lstm": (rt.LSTM, nn.LSTM, {}),
    "lstm_proj": (rt.LSTM, nn.LSTM, {"proj_size": 3}),
    "gru": (rt.GRU, nn.GRU, {}),
    "rnn_tanh": (rt.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rt.RNN, nn.RNN, {"nonlinearity": "relu"}),
}
N, T, D, H = 4, 6, 5, 7


def widths(variant):
    """The widths of the variant's states: h (proj_size with a projection), c."""
    P = VARIANTS[variant][2].get("proj_size") or H
    return [P, H] if variant.startswith("lstm") else [H]


def rel(a, b):
    scale = max(b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() / scale


def pair(variant, num_layers, bidirectional, batch_first, bias, dtype=torch.float64):
    ours_cls, ref_cls, kw = VARIANTS[variant]
    torch.manual_seed(1)
    ref = ref_cls(D, H, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                  dropout=0.0, **kw).to(dtype)
    ours = ours_cls(D, H, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, **kw).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def run(module, x, hx, packed_lengths=None, batch_first=False):
    inp = x
    if packed_lengths is not None:
        inp = pack_padded_sequence(x, packed_lengths, batch_first=batch_first, enforce_sorted=False)
    out, state = module(inp, hx)
    if packed_lengths is not None:
        out = out.data
    states = list(state) if isinstance(state, tuple) else [state]
    return out, states


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,packed",
                         list(itertools.product([1, 2], [False, True], [False, True], [True, False], [False, True])))
def test_matches_torch_nn_with_autograd(variant, num_layers, bidirectional, batch_first, bias, packed):
    ours, ref = pair(variant, num_layers, bidirectional, batch_first, bias)
    gen = torch.Generator().manual_seed(2)
    shape = (N, T, D) if batch_first else (T, N, D)
    x = torch.randn(shape, dtype=torch.float64, generator=gen, requires_grad=True)
    dirs = 2 if bidirectional else 1
    states = [torch.randn(num_layers * dirs, N, w, dtype=torch.float64, generator=gen, requires_grad=True)
              for w in widths(variant)]
    hx = tuple(states) if len(states) > 1 else states[0]
    lengths = torch.tensor([6, 2, 5, 1]) if packed else None
    results = []
    for module in (ref, ours):
        out, finals = run(module, x, hx, lengths, batch_first)
        weights = [torch.randn(o.shape, dtype=o.dtype, generator=torch.Generator().manual_seed(3))
                   for o in [out, *finals]]
        loss = sum((o * w).sum() for o, w in zip([out, *finals], weights))
        grads = torch.autograd.grad(loss, [x, *states, *module.parameters()])
        results.append([out, *finals, *grads])
    for a, b in zip(results[1], results[0]):
        assert a.shape == b.shape
        assert rel(a, b) <= 1e-10


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_state_dicts_load_both_ways(variant):
    ours, ref = pair(variant, 2, True, True, True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (k, a), (_, b) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert a.shape == b.shape and torch.equal(a, b), k
    with torch.no_grad():
        for p in ours.parameters():
            p.mul_(0.5)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(N, T, D, dtype=torch.float64)
    assert rel(ours(x)[0], ref(x)[0]) <= 1e-12


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_float32_unbatched_and_no_grad(variant):
    ours, ref = pair(variant, 1, False, False, True, torch.float32)
    x = torch.randn(T, D)  # unbatched
    out, _ = ours(x)
    assert out.shape == (T, widths(variant)[0]) and out.dtype == torch.float32
    assert rel(out, ref(x)[0]) <= 1e-5
    with torch.no_grad():  # inference: nothing kept for backward
        out2, _ = ours(x)
    assert torch.equal(out, out2)


def test_the_reset_before_gru_and_options():
    g = rt.GRU(D, H, reset_after=False)
    assert "reset_after=False" in repr(g)
    assert g(torch.randn(T, N, D))[0].shape == (T, N, H)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        rt.LSTM(D, H, proj_size=H)
    with pytest.raises(TypeError, match="proj_size"):
        rt.GRU(D, H, proj_size=3)
    assert "proj_size=3" in repr(rt.LSTM(D, H, proj_size=3))
    with pytest.raises(ValueError, match=r"initial h has shape \(1, 4, 7\); expected \(1, 4, 3\)"):
        rt.LSTM(D, H, proj_size=3)(torch.randn(T, N, D), (torch.zeros(1, N, H), torch.zeros(1, N, H)))
    with pytest.raises(ValueError, match="nonlinearity must be"):
        rt.RNN(D, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="input_size = 5"):
        rt.LSTM(D, H)(torch.randn(T, N, D + 1))
    with pytest.raises(ValueError, match="initial h has shape"):
        rt.GRU(D, H)(torch.randn(T, N, D), torch.zeros(2, N, H))
    with pytest.raises(TypeError, match="tuple"):
        rt.LSTM(D, H)(torch.randn(T, N, D), torch.zeros(1, N, H))


def test_dropout_between_layers_follows_train_and_eval():
    m = rt.LSTM(D, H, 3, dropout=0.5)
    x = torch.randn(T, N, D)
    m.eval()
    a, b = m(x)[0], m(x)[0]
    assert torch.equal(a, b)
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])


def _op_args(cell, option=0, P=6, **variants):
    """``recurrent_forward``'s arguments for a small float64 layer (N=3, T=4, D=5, H=6; h P wide), then the
    variants' (``w_hr``, ``ln``, ``peep``, ``zoneout``, ``zoneout_seed``) where given."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell] * 6
    gen = torch.Generator().manual_seed(0)
    t = dict(dtype=torch.float64, generator=gen)
    args = [cell, torch.randn(3, 4, 5, **t).requires_grad_(), torch.randn(G, 5, **t).requires_grad_(),
            torch.randn(G, P, **t).requires_grad_(), torch.randn(G, **t).requires_grad_(), torch.randn(G, **t),
            torch.randn(3, P, **t).requires_grad_(),
            torch.randn(3, 6, **t) if cell == "lstm" else torch.empty(0, dtype=torch.float64),
            torch.empty(0, dtype=torch.int64), option, True, 1]
    names = ["w_hr", "ln", "peep", "zoneout", "zoneout_seed"]
    given = [i for i, n in enumerate(names) if n in variants]
    return args + [variants.get(n) for n in names[:given[-1] + 1]] if given else args


def _opcheck(args):
    """``opcheck`` on ``args``, and on a ragged batch (lengths 4, 1, 3) the schema, autograd and fake tests."""
    torch.library.opcheck(ops.recurrent_forward, args)
    ragged = list(args)
    ragged[8] = torch.tensor([4, 1, 3])
    torch.library.opcheck(ops.recurrent_forward, ragged,
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


@pytest.mark.parametrize("cell,option", [("lstm", 0), ("gru", 1), ("gru", 0), ("rnn", 1)])
def test_opcheck(cell, option):
    _opcheck(_op_args(cell, option))


def test_opcheck_with_a_projection():
    w_hr = torch.randn(2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    _opcheck(_op_args("lstm", 0, P=2, w_hr=w_hr))


def test_torch_compile_fullgraph_with_a_projection():
    m = rt.LSTM(D, H, 2, batch_first=True, proj_size=3)
    x = torch.randn(N, T, D)
    compiled = torch.compile(lambda x: m(x)[0].sum(), fullgraph=True, backend="aot_eager")
    got = compiled(x)
    got.backward()
    assert torch.allclose(got, m(x)[0].sum()) and m.weight_hr_l1.grad.shape == (3, H)


def test_torch_compile_fullgraph_trains():
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rt.LSTM(D, H, 2, batch_first=True)
            self.head = nn.Linear(H, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    model = Model()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # fake tensors and autograd
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(N, T, D), torch.randn(N, 1)
    losses = []
    for _ in range(5):
        loss = nn.functional.mse_loss(compiled(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(compiled(x).detach(), model(x).detach(), rtol=1e-6)


def test_torch_threads_and_rnnfast_threads_in_one_process():
    """A torch matmul on torch's OpenMP threads and an rnnfast call on rnnfast's, alternating and from a
    second Python thread, end in time (two OpenMP runtimes, one process)."""
    import threading
    torch.set_num_threads(2)
    m = rt.LSTM(64, 128, batch_first=True, num_threads=2)
    x = torch.randn(16, 20, 64)
    a = torch.randn(512, 512)
    done = []

    def work():
        for _ in range(5):
            a @ a
            m(x)[0].sum().backward()
        done.append(True)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(done) == 2


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lengths_keyword_equals_a_packed_sequence(variant):
    ours, _ = pair(variant, 2, True, True, True)
    x = torch.randn(N, T, D, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 5, 1])
    out_p, state_p = ours(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out_l, state_l = ours(x, lengths=lengths)
    padded, _ = nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=T)
    assert torch.equal(padded, out_l)
    for a, b in zip(state_p if isinstance(state_p, tuple) else [state_p],
                    state_l if isinstance(state_l, tuple) else [state_l]):
        assert torch.equal(a, b)


def test_torch_compile_with_ragged_lengths():
    m = rt.GRU(D, H, 2, batch_first=True)
    compiled = torch.compile(lambda x, lengths: m(x, lengths=lengths)[1][-1].sum(), fullgraph=True,
                             backend="aot_eager")
    for lengths in ([6, 2, 5, 1], [3, 3, 6, 2]):
        x = torch.randn(N, T, D)
        lengths = torch.tensor(lengths)
        got = compiled(x, lengths)
        got.backward()
        assert torch.allclose(got, m(x, lengths=lengths)[1][-1].sum())


def test_eager_calls_skip_the_dispatcher_and_tracing_sees_the_custom_op():
    torch.manual_seed(0)
    model = rt.GRU(D, H, batch_first=True)
    x = torch.randn(N, T, D)
    assert "_Eager" in model(x)[0].grad_fn.name()  # a plain autograd.Function: no per-call dispatch cost
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    out = torch.compile(model, fullgraph=True, backend=backend)(x)[0]
    assert any("rnnfast.recurrent_forward" in t for t in seen), seen
    np.testing.assert_array_equal(out.detach(), model(x)[0].detach())


# --- Layer normalization (an rnnfast variant; PyTorch has none) ---

@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_norm_modules_equal_the_same_maths_written_from_nn_ops(cell):
    # the benchmarks' nn-ops baselines (tested against rnnfast.lstm_forward / gru_forward there): outputs, states
    # and every gradient, float64
    from rnnfast.benchmarks.backends import torch_layer_norm_gru, torch_layer_norm_lstm
    torch.manual_seed(1)
    m = getattr(rt, cell.upper())(D, H, batch_first=True, layer_norm=True).double()
    twin = (torch_layer_norm_lstm if cell == "lstm" else torch_layer_norm_gru)(D, H).double()
    with torch.no_grad():
        m.layer_norm_l0.add_(torch.randn_like(m.layer_norm_l0) * 0.2)  # away from the initial values
    _assert_equals_twin(m, twin, {"layer_norm": "layer_norm_l0"})


def _assert_equals_twin(m, twin, renamed):
    """One-layer module ``m`` against ``twin`` (the same maths from nn ops, batch-first, its parameters named as
    ``m``'s but for ``renamed``) on ``m``'s weights, float64: outputs, final states and every gradient."""
    with torch.no_grad():
        for name, p in twin.named_parameters():
            p.copy_(getattr(m, renamed.get(name, name)))
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    out, state = m(x)
    want, want_state = twin(x2)
    states = state if isinstance(state, tuple) else (state,)
    want_states = want_state if isinstance(want_state, tuple) else (want_state,)
    assert len(states) == len(want_states)
    for got, w in [(out, want), *zip(states, want_states)]:
        torch.testing.assert_close(got, w, rtol=1e-10, atol=1e-12)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    (want * g).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-12)
    for name, p in twin.named_parameters():
        torch.testing.assert_close(getattr(m, renamed.get(name, name)).grad, p.grad, rtol=1e-10, atol=1e-12,
                                   msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_norm_modules_compile_and_start_from_unit_gains(cell):
    m = getattr(rt, cell.upper())(D, H, 2, batch_first=True, bidirectional=True, layer_norm=True)
    ln = m.layer_norm_l1_reverse
    assert ln.shape == ((10 if cell == "lstm" else 6) * H,) and "layer_norm=True" in repr(m)
    if cell == "lstm":
        assert torch.equal(ln, torch.cat([torch.ones(9 * H), torch.zeros(H)]))
    else:
        assert torch.equal(ln, torch.ones(6 * H))
    x = torch.randn(N, T, D)
    compiled = torch.compile(lambda x: m(x)[0].sum(), fullgraph=True, backend="aot_eager")
    got = compiled(x)
    got.backward()
    assert torch.allclose(got, m(x)[0].sum()) and m.layer_norm_l1_reverse.grad.abs().sum() > 0


@pytest.mark.parametrize("cell,option", [("lstm", 0), ("gru", 1)])
def test_opcheck_with_layer_norm(cell, option):
    gen = torch.Generator().manual_seed(1)
    ln = 1 + 0.1 * torch.randn((10 if cell == "lstm" else 6) * 6, dtype=torch.float64, generator=gen)
    _opcheck(_op_args(cell, option, ln=ln.requires_grad_()))


def test_layer_norm_arguments():
    with pytest.raises(ValueError, match="reset-after"):
        rt.GRU(D, H, reset_after=False, layer_norm=True)
    with pytest.raises(ValueError, match="without proj_size"):
        rt.LSTM(D, H, proj_size=2, layer_norm=True)
    with pytest.raises(TypeError, match="layer_norm must be True or False"):
        rt.LSTM(D, H, layer_norm=1)


# --- Peepholes (an rnnfast variant; PyTorch has none) ---

@pytest.mark.parametrize("proj", [0, 3])
def test_peephole_module_equals_the_same_maths_written_from_nn_ops(proj):
    from rnnfast.benchmarks.backends import torch_peephole_lstm
    torch.manual_seed(2)
    m = rt.LSTM(D, H, batch_first=True, proj_size=proj, peephole=True).double()
    twin = torch_peephole_lstm(D, H, proj).double()
    _assert_equals_twin(m, twin, {"peephole": "weight_peephole_l0"})


def test_peephole_module_compiles_and_is_checked():
    m = rt.LSTM(D, H, 2, batch_first=True, bidirectional=True, peephole=True)
    assert m.weight_peephole_l1_reverse.shape == (3 * H,) and "peephole=True" in repr(m)
    x = torch.randn(N, T, D)
    compiled = torch.compile(lambda x: m(x)[0].sum(), fullgraph=True, backend="aot_eager")
    got = compiled(x)
    got.backward()
    assert torch.allclose(got, m(x)[0].sum()) and m.weight_peephole_l1_reverse.grad.abs().sum() > 0
    _opcheck(_op_args("lstm", peep=torch.randn(18, dtype=torch.float64).requires_grad_()))
    with pytest.raises(TypeError, match="peephole"):  # the GRU's constructor has no such keyword
        rt.GRU(D, H, peephole=True)
    with pytest.raises(ValueError, match="without proj_size or peephole"):
        rt.LSTM(D, H, peephole=True, layer_norm=True)


# --- Zoneout (an rnnfast variant; PyTorch has none) ---

ZONEOUT = (0.4, 0.3)


def _zoneout_pair(seed):
    """rt.LSTM with zoneout, its layer's masks fixed by ``seed``, and the nn-ops twin on the same masks."""
    from rnnfast.benchmarks.backends import torch_zoneout_lstm
    from rnnfast.reference.zoneout import masks
    torch.manual_seed(3)
    m = rt.LSTM(D, H, batch_first=True, zoneout=ZONEOUT).double()
    m._zoneout_seed = lambda: torch.tensor([seed]) if m.training else None
    twin = torch_zoneout_lstm(D, H, zoneout=ZONEOUT).double()
    twin.masks = lambda t, n: [torch.from_numpy(k) for k in masks(seed, t, n, T, H, *ZONEOUT)]
    return m, twin


@pytest.mark.parametrize("training", [True, False])
def test_zoneout_module_equals_the_same_maths_written_from_nn_ops(training):
    m, twin = _zoneout_pair(12345)
    m.train(training)
    twin.train(training)
    _assert_equals_twin(m, twin, {})


def test_zoneout_masks_follow_torch_manual_seed_and_not_the_thread_count():
    torch.manual_seed(0)
    m = rt.LSTM(D, H, 2, batch_first=True, bidirectional=True, zoneout=ZONEOUT)
    x = torch.randn(N, T, D)
    outs = {}
    for nt in (1, 2, 3):
        m.num_threads = nt
        torch.manual_seed(7)
        outs[nt] = m(x)[0]
    assert torch.equal(outs[1], outs[2]) and torch.equal(outs[1], outs[3])
    assert not torch.equal(m(x)[0], outs[1])  # fresh masks at every call in training
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])  # the expectation: no masks
    m.zoneout = (0.0, 0.0)  # rates zero: the plain LSTM
    plain = rt.LSTM(D, H, 2, batch_first=True, bidirectional=True)
    plain.load_state_dict(m.state_dict())
    assert torch.equal(m(x)[0], plain(x)[0])


def test_zoneout_module_on_ragged_batches_keeps_the_state_past_each_length():
    torch.manual_seed(0)
    m = rt.LSTM(D, H, 2, batch_first=True, bidirectional=True, zoneout=ZONEOUT).double()
    x = torch.randn(N, T, D, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 5, 1])
    torch.manual_seed(4)
    out_p, (h_p, c_p) = m(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    torch.manual_seed(4)
    out_l, (h_l, c_l) = m(x, lengths=lengths)
    padded, _ = nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=T)
    assert torch.equal(padded, out_l) and torch.equal(h_p, h_l) and torch.equal(c_p, c_l)
    assert not out_l[1, 2:].any() and out_l[1, :2].abs().sum() > 0  # zeros past its length
    # each sequence's last state is its own: the forward direction's h_n is the output at its last step
    for n, L in enumerate(lengths.tolist()):
        torch.testing.assert_close(h_l[2, n], out_l[n, L - 1, :H], rtol=0, atol=0)


def test_zoneout_module_compiles_and_is_checked():
    torch.manual_seed(0)
    m = rt.LSTM(D, H, 2, batch_first=True, zoneout=ZONEOUT)
    assert "zoneout=(0.4, 0.3)" in repr(m)
    x = torch.randn(N, T, D)
    compiled = torch.compile(lambda x: m(x)[0].sum(), fullgraph=True, backend="aot_eager")
    torch.manual_seed(5)
    got = compiled(x)
    got.backward()
    torch.manual_seed(5)
    assert torch.allclose(got, m(x)[0].sum())  # the compiled graph draws the same seeds
    assert not torch.allclose(compiled(x), got)  # and new ones at every call
    _opcheck(_op_args("lstm", zoneout=list(ZONEOUT), zoneout_seed=torch.tensor([9])))


def test_zoneout_arguments():
    with pytest.raises(TypeError, match="zoneout"):  # the GRU's constructor has no such keyword
        rt.GRU(D, H, zoneout=ZONEOUT)
    with pytest.raises(ValueError, match="one LSTM variant"):
        rt.LSTM(D, H, zoneout=ZONEOUT, peephole=True)
    with pytest.raises(ValueError, match=r"z_h must be in \[0, 1\)"):
        rt.LSTM(D, H, zoneout=(0.1, 1.0))
    with pytest.raises(TypeError, match="pair of rates"):
        rt.LSTM(D, H, zoneout=0.1)
