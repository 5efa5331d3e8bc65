"""Token input (the sequence functions' ``embedding=``): x is token ids into an embedding.  The kernels fold
the embedding into the input projection where the vocabulary is smaller than the rows the steps run
(``driver.TokenInput``) and gather ``embedding[x]`` otherwise; the reference gathers.  Checked against the
reference, against the kernels on the gathered input, by finite differences, for thread-count invariance,
for bad input, and in the layers and models that use it."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast import backend
from rnnfast._core import driver, training_passes
from rnnfast._core.plan import CONSTANTS
from rnnfast.layers import RecurrentStack
from rnnfast.models import RNNLM, SequenceClassifier

from cells import CELLS, CELL_BY_NAME, rel_err, run
from cells import problem as problem_of
from test_gradcheck import numerical_gradient

TOL = {np.float64: 1e-12, np.float32: 1e-5}


def token_problem(cell, rng, N=5, T=6, D=4, H=5, V=7, dtype=np.float64, ragged=False):
    ids = rng.integers(0, V, (N, T))
    E = rng.standard_normal((V, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    states = cell.states(rng, N, H, dtype)
    lengths = rng.integers(1, T + 1, size=N) if ragged else None
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dfinals = cell.states(rng, N, H, dtype)
    return ids, E, params, states, lengths, dhs, dfinals


def run_tokens(cell, impl, ids, E, params, states, lengths, dhs, dfinals, num_threads=None, **kw):
    """Forward with ``embedding=E``, then backward: ``(outputs, gradients, cache)``, the gradients in the order
    ``[dE, *dparams, *dstates0]``."""
    forward = getattr(impl, f"{cell.spec.name}_forward")
    hs, *finals, cache = forward(ids, *cell.weights(params), *states, lengths=lengths, num_threads=num_threads,
                                 embedding=E, **cell.keywords(params), **kw)
    return [hs, *finals], list(cell.backward(impl, dhs, cache, dfinals)), cache


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
@pytest.mark.parametrize("V", [7, 100], ids=["folded", "gathered"])
def test_kernels_match_the_reference(cell, dtype, ragged, V, rng):
    problem = token_problem(cell, rng, V=V, dtype=dtype, ragged=ragged)
    out, grads, cache = run_tokens(cell, rnnfast, *problem)
    ref_out, ref_grads, _ = run_tokens(cell, reference, *problem)
    assert (cache.tokens.embedding is not None) == (2 * V <= 30)  # 30 rows: fold only a table of <= 15
    assert grads[0].shape == problem[1].shape  # the embedding's gradient in dx's place
    for a, b in zip(out + grads, ref_out + ref_grads):
        assert a.dtype == dtype and a.shape == b.shape
        assert rel_err(a, b) < TOL[dtype]


@pytest.mark.parametrize("cell", [CELL_BY_NAME["lstm"], CELL_BY_NAME["gru_reset_after"]], ids=str)
def test_same_as_the_kernels_on_the_gathered_input(cell, rng):
    """What a user would otherwise write: gather, run, and scatter dx by token."""
    ids, E, params, states, lengths, dhs, dfinals = token_problem(cell, rng, N=8, T=9, D=24, H=16, V=11,
                                                                  dtype=np.float32, ragged=True)
    out, grads, _ = run_tokens(cell, rnnfast, ids, E, params, states, lengths, dhs, dfinals)
    hs, finals, cache = cell.forward(rnnfast, E[ids], params, states, lengths)
    dx, *rest = cell.backward(rnnfast, dhs, cache, dfinals)
    dE = np.zeros_like(E)
    np.add.at(dE, ids, dx)
    for a, b in zip(out + grads, [hs, *finals, dE, *rest]):
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("cell", [CELL_BY_NAME[n] for n in ("lstm", "gru_reset_before", "rnn_tanh")], ids=str)
def test_gradients_by_finite_differences(cell, rng):
    ids, E, params, states, lengths, dhs, dfinals = token_problem(cell, rng, N=4, T=5, D=3, H=4, V=5, ragged=True)

    def loss():
        out, _, _ = run_tokens(cell, rnnfast, ids, E, params, states, lengths, dhs, dfinals)
        return float((out[0] * dhs).sum() + sum((f * d).sum() for f, d in zip(out[1:], dfinals)))

    _, grads, cache = run_tokens(cell, rnnfast, ids, E, params, states, lengths, dhs, dfinals)
    assert cache.tokens.embedding is not None  # 5 tokens < the rows: the folded path
    for analytic, array in [(grads[0], E), (grads[1], params[0]), (grads[3], params[2])]:  # dE, dWx, dbias
        assert rel_err(analytic, numerical_gradient(loss, array)) < 1e-7


def test_bits_do_not_depend_on_the_thread_count(rng):
    for cell in CELLS:
        problem = token_problem(cell, rng, N=16, T=12, D=40, H=48, V=23, dtype=np.float32, ragged=True)
        one = run_tokens(cell, rnnfast, *problem, num_threads=1)
        for threads in (2, 3):
            other = run_tokens(cell, rnnfast, *problem, num_threads=threads)
            for a, b in zip(one[0] + one[1], other[0] + other[1]):
                np.testing.assert_array_equal(a, b, err_msg=f"{cell} with {threads} threads")


@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
def test_every_schedule_copies_the_table_rows(ragged, rng):
    """Serial and owned-row steps copy each step's table rows as they run it, shared tiles a window at a
    time: on the same tiles, every schedule on 1-3 threads gives the bits of one thread's serial steps, over
    more steps than a window."""
    N, T, H = 12, 20, 16
    for cell in (CELL_BY_NAME["lstm"], CELL_BY_NAME["gru_reset_after"], CELL_BY_NAME["rnn_tanh"]):
        ids, E, params, states, lengths, dhs, dfinals = token_problem(cell, rng, N=N, T=T, D=8, H=H, V=9,
                                                                      dtype=np.float32, ragged=ragged)
        results = []
        for schedule, nt in [("serial", 1), ("serial", 2), ("owned_rows", 2), ("owned_rows", 3),
                             ("shared_tiles", 2), ("shared_tiles", 3)]:
            plan = cell.plan(N, T, H, np.float32, nt, schedule=schedule, rows=4, units=8)
            hs, finals, cache = driver.sequence_forward(cell.spec, ids, params[0], params[1],
                                                        params[2:2 + cell.n_biases], states, lengths, cell.option,
                                                        nt, plan=plan, embedding=E, **cell._extra(params))
            assert cache.tokens.embedding is not None  # folded: the kernel copies table rows
            results.append([hs, *finals, *cell.backward(rnnfast, dhs, cache, dfinals)])
        for other in results[1:]:
            for a, b in zip(results[0], other):
                np.testing.assert_array_equal(a, b)
        ref_out, ref_grads, _ = run_tokens(cell, reference, ids, E, params, states, lengths, dhs, dfinals)
        for a, b in zip(results[0], ref_out + ref_grads):
            assert rel_err(a, b) < TOL[np.float32]


class _SpyKernels:
    """The kernels module, with ``backward`` keeping a copy of what it leaves in its buffers."""

    def __init__(self, kernels):
        self._kernels, self.seen = kernels, []

    def __getattr__(self, name):
        return getattr(self._kernels, name)

    def backward(self, buf, plan):
        self._kernels.backward(buf, plan)
        self.seen.append({"dGx": buf.dGx.copy(), "dbx": buf.dbx.copy(), "tokens": buf.tokens,
                          "token_sums": None if buf.token_sums is None else buf.token_sums.copy(),
                          "packed": plan.microkernel_products})


@pytest.mark.parametrize("cell", [CELL_BY_NAME["lstm"], CELL_BY_NAME["rnn_tanh"]], ids=str)
@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
@pytest.mark.parametrize("inputs", ["tokens", "vectors"])
def test_the_sums_made_while_packing_are_the_row_loops_bits(cell, ragged, inputs, rng, monkeypatch):
    """The weight gradients' product sums dG by column (the bias gradient) and, for folded token input, by token
    as it packs dG (``rnnfast_pack_panels_sums_s``): the bits of adding the rows in order one at a time, as a
    cumulative sum and ``scatter_add_rows`` do, on any number of threads, whichever threads pack which columns
    (on 4 threads the products are cut in row parts that each pack every column, but the LSTM's of token input).
    A build without the micro-kernel makes them in those passes: the same bits."""
    spy = _SpyKernels(driver._kernels)
    monkeypatch.setattr(driver, "_kernels", spy)
    if inputs == "tokens":
        problem = token_problem(cell, rng, N=16, T=10, D=24, H=96, V=11, dtype=np.float32, ragged=ragged)
    else:
        x, params, states, lengths, dhs, dfinals = problem_of(cell, rng, 16, 10, 160, 96, dtype=np.float32)
        lengths = lengths if ragged else None
    for threads in (1, 2, 3, 4):
        if inputs == "tokens":
            run_tokens(cell, rnnfast, *problem, num_threads=threads)
        else:
            run(cell, rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=threads)
        seen = spy.seen.pop()
        # 160 rows, H = 96 (over 1e7 flops: the threads asked for): on the micro-kernel's product, which makes
        # the sums, where the build has it
        assert seen["packed"] == bool(CONSTANTS["microkernel"])
        np.testing.assert_array_equal(seen["dbx"], np.cumsum(seen["dGx"], axis=0)[-1])
        if inputs == "tokens":
            by_token = np.zeros_like(seen["token_sums"])
            training_passes.scatter_add_rows(by_token, seen["tokens"], seen["dGx"])
            np.testing.assert_array_equal(seen["token_sums"], by_token)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernels", "reference"])
def test_inputs_are_not_modified_and_inference_gives_the_same_bits(impl, rng):
    cell = CELL_BY_NAME["lstm"]
    problem = token_problem(cell, rng, dtype=np.float32, ragged=True)
    ids, E = problem[0], problem[1]
    before = [ids.copy(), E.copy()]
    out, _, _ = run_tokens(cell, impl, *problem)
    np.testing.assert_array_equal(ids, before[0])
    np.testing.assert_array_equal(E, before[1])
    hs, hT, cT, cache = impl.lstm_forward(ids, *problem[2][:3], *problem[3], lengths=problem[4], embedding=E,
                                          need_grad=False)
    assert cache is None
    for a, b in zip([hs, hT, cT], out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernels", "reference"])
def test_bad_token_input_is_a_clear_error(impl, rng):
    ids, E, (Wx, Wh, b), _, _, _, _ = token_problem(CELL_BY_NAME["lstm"], rng)
    with pytest.raises(TypeError, match="x has dtype float64; expected integer token ids"):
        impl.lstm_forward(ids.astype(np.float64), Wx, Wh, b, embedding=E)
    with pytest.raises(ValueError, match=r"x must lie in 0..6; got values from 1 to 7"):
        impl.lstm_forward(np.where(ids == 0, 7, ids), Wx, Wh, b, embedding=E)
    with pytest.raises(ValueError, match=r"expected \(N, T\) token ids"):
        impl.lstm_forward(ids[..., None], Wx, Wh, b, embedding=E)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray of token ids"):
        impl.lstm_forward(ids.tolist(), Wx, Wh, b, embedding=E)
    with pytest.raises(TypeError, match=r"Wx has dtype float64; expected float32 \(the dtype of embedding\)"):
        impl.lstm_forward(ids, Wx, Wh, b, embedding=E.astype(np.float32))
    with pytest.raises(ValueError, match="Wx has shape"):
        impl.lstm_forward(ids, Wx, Wh, b, embedding=E[:, :3])
    with pytest.raises(ValueError, match=r"embedding has 1 dimension"):
        impl.lstm_forward(ids, Wx, Wh, b, embedding=E[0])
    bad = E.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="embedding contains NaN or Inf"):
        impl.lstm_forward(ids, Wx, Wh, b, embedding=bad)
    with np.errstate(invalid="ignore"):  # then it propagates, as NumPy would
        impl.lstm_forward(ids, Wx, Wh, b, embedding=bad, check_finite=False)


@pytest.mark.parametrize("variant", ["projection", "layer_norm"])
def test_the_whole_row_block_variants_gather(variant, rng):
    """The projection and layer-normalized LSTMs read x itself: the kernels gather, and agree with the
    reference."""
    ids, E, (Wx, Wh, b), _, lengths, _, _ = token_problem(CELL_BY_NAME["lstm"], rng, H=6, ragged=True)
    H, P = 6, 3
    kw = ({"projection": rng.standard_normal((H, P)) * 0.4} if variant == "projection" else
          {"layer_norm": 1 + 0.1 * rng.standard_normal(10 * H)})
    if variant == "projection":
        Wh = Wh[:P]
    dhs = rng.standard_normal((ids.shape[0], ids.shape[1], P if variant == "projection" else H))
    results = []
    for impl in (rnnfast, reference):
        hs, hT, cT, cache = impl.lstm_forward(ids, Wx, Wh, b, lengths=lengths, embedding=E, **kw)
        results.append([hs, hT, cT, *impl.lstm_backward(dhs, cache)])
    assert results[0][3].shape == E.shape
    for a, b_ in zip(*results):
        assert rel_err(a, b_) < 1e-12


def test_the_layer_normalized_gru_gathers(rng):
    ids, E, (Wx, Wh, bx, bh), _, lengths, dhs, _ = token_problem(CELL_BY_NAME["gru_reset_after"], rng, ragged=True)
    ln = 1 + 0.1 * rng.standard_normal(6 * Wh.shape[0])
    results = []
    for impl in (rnnfast, reference):
        hs, hT, cache = impl.gru_forward(ids, Wx, Wh, bx, bh, lengths=lengths, embedding=E, layer_norm=ln)
        results.append([hs, hT, *impl.gru_backward(dhs, cache)])
    assert results[0][2].shape == E.shape
    for a, b_ in zip(*results):
        assert rel_err(a, b_) < 1e-12


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_bidirectional_stack_sums_both_directions_gradients(cell, rng):
    ids = rng.integers(0, 6, (4, 7))
    lengths = np.array([7, 3, 5, 1])
    E = rng.standard_normal((6, 5))
    dout = rng.standard_normal((4, 7, 8))
    grads = []
    for folded in (True, False):
        stack = RecurrentStack(cell, 5, 4, num_layers=2, bidirectional=True, rng=np.random.default_rng(0),
                               dtype=np.float64)
        if folded:
            stack.forward(ids, lengths, embedding=E)
            dE = stack.backward(dout)
        else:
            stack.forward(E[ids], lengths)
            dx = stack.backward(dout)
            dE = np.zeros_like(E)
            np.add.at(dE, ids, dx)
        grads.append([dE, *stack.grads])
    for a, b in zip(*grads):
        assert rel_err(a, b) < 1e-12


@pytest.mark.parametrize("tie_weights", [False, True], ids=["untied", "tied"])
def test_the_language_model_folds_its_embedding_and_keeps_its_gradients(tie_weights, rng):
    """``RNNLM`` without embedding dropout: the first layer reads the ids.  Its loss and gradients are those
    of the reference backend, which gathers, and of the layers run by hand on the gathered rows; tied weights
    add the output layer's gradient to the embedding's after it."""
    ids, targets = rng.integers(0, 11, (6, 9)), rng.integers(0, 11, (6, 9))
    results = []
    for name in ("cython", "numpy"):
        model = RNNLM(11, embed_size=10 if tie_weights else 8, hidden_size=10, num_layers=2, dropout=0.0,
                      tie_weights=tie_weights, dtype="float64", seed=5)
        with backend.use(name):
            loss = model.forward(ids, targets)
            model.backward()
        assert model._token_input
        results.append([np.array(loss), *(g.copy() for g in model.grads)])
        model.reset_state()
        by_hand = model.loss_layer.forward(model.affine.forward(model.rnn.forward(model.embed.forward(ids))), targets)
        assert abs(by_hand - loss) < 1e-12
    for a, b in zip(*results):
        assert rel_err(a, b) < 1e-11
    dropped = RNNLM(11, embed_size=8, hidden_size=10, embed_dropout=0.3, dtype="float64", seed=5)
    dropped.forward(ids, targets)
    assert not dropped._token_input  # a dropout mask per position: the rows are gathered
    dropped.eval()
    dropped.forward(ids, targets)
    assert dropped._token_input
    with pytest.raises(ValueError, match="ids must lie in 0..10"):
        dropped.forward(ids + 1, targets)


def test_a_classifier_over_ids_matches_the_reference_backend(rng):
    ids, lengths = rng.integers(0, 9, (5, 6)), np.array([6, 2, 4, 1, 5])
    labels = rng.integers(0, 3, 5)
    results = []
    for name in ("cython", "numpy"):
        model = SequenceClassifier(4, 6, 3, cell="gru", bidirectional=True, vocab_size=9, seed=2, dtype="float64")
        with backend.use(name):
            loss = model.forward(ids, labels, lengths=lengths)
            model.backward()
        results.append([np.array(loss), *(g.copy() for g in model.grads)])
    for a, b in zip(*results):
        assert rel_err(a, b) < 1e-11
