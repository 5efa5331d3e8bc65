"""rnnfast.compat reproduces the NumPy time layers of "Deep Learning from Scratch 2"."""
import numpy as np
import pytest

import rnnfast.compat as fast
import textbook_numpy as book
import textbook_lm_script

G = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _weights(cell, D, H, dtype, seed):
    rng = np.random.default_rng(seed)
    g = G[cell] * H
    return [(rng.standard_normal(s) * 0.6).astype(dtype) for s in ((D, g), (H, g), (g,))]


def _pair(cls_name, *weights, **kw):
    copies = [[w.copy() for w in weights] for _ in range(2)]
    return getattr(fast, cls_name)(*copies[0], **kw), getattr(book, cls_name)(*copies[1], **kw)


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_time_layers_stateful_over_two_chunks(cell):
    N, T, D, H = 3, 6, 5, 4
    ours, theirs = _pair("Time" + cell, *_weights(cell, D, H, np.float64, 1), stateful=True)
    rng = np.random.default_rng(2)
    for chunk in range(2):  # the second chunk starts from the state the first left
        xs = rng.standard_normal((N, T, D)).astype("f")
        dhs = rng.standard_normal((N, T, H)).astype("f")
        hs, hs_ref = ours.forward(xs), theirs.forward(xs)
        assert hs.dtype == np.float32 and hs.shape == (N, T, H)
        np.testing.assert_allclose(hs, hs_ref, rtol=1e-6, atol=1e-7)
        dxs, dxs_ref = ours.backward(dhs), theirs.backward(dhs)
        assert dxs.dtype == np.float32
        np.testing.assert_allclose(dxs, dxs_ref, rtol=1e-6, atol=1e-6)
        for g, g_ref in zip(ours.grads, theirs.grads):
            np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.dh, theirs.dh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.h, theirs.h, rtol=1e-10, atol=1e-12)
    grads_before = [id(g) for g in ours.grads]
    ours.reset_state()
    assert ours.h is None and [id(g) for g in ours.grads] == grads_before  # written in place


def test_stateless_layer_starts_from_zero_each_call():
    layer = fast.TimeLSTM(*_weights("LSTM", 3, 4, np.float32, 0))
    xs = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("f")
    np.testing.assert_array_equal(layer.forward(xs), layer.forward(xs))
    zeros_start = layer.forward(xs)
    layer.set_state(np.ones((2, 4), "f"), np.ones((2, 4), "f"))
    np.testing.assert_array_equal(layer.forward(xs), zeros_start)  # stateless: the set state is not used
    stateful = fast.TimeLSTM(*layer.params, stateful=True)
    stateful.set_state(np.ones((2, 4), "f"), np.ones((2, 4), "f"))
    assert not np.array_equal(stateful.forward(xs), zeros_start)


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_single_step_cells(cell):
    N, D, H = 3, 5, 4
    ours, theirs = _pair(cell, *_weights(cell, D, H, np.float64, 3))
    rng = np.random.default_rng(4)
    x, h, c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    states = (h, c) if cell == "LSTM" else (h,)
    out, ref = ours.forward(x, *states), theirs.forward(x, *states)
    out, ref = (out, ref) if cell == "LSTM" else ((out,), (ref,))
    upstream = [rng.standard_normal((N, H)) for _ in states]
    back, back_ref = ours.backward(*upstream), theirs.backward(*upstream)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    for a, b in zip(back, back_ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for g, g_ref in zip(ours.grads, theirs.grads):
        np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)


def test_bidirectional_lstm():
    N, T, D, H = 2, 5, 3, 4
    w = _weights("LSTM", D, H, np.float64, 5) + _weights("LSTM", D, H, np.float64, 6)
    ours, theirs = _pair("TimeBiLSTM", *w)
    xs = np.random.default_rng(7).standard_normal((N, T, D)).astype("f")
    np.testing.assert_allclose(ours.forward(xs), theirs.forward(xs), rtol=1e-6, atol=1e-7)
    dhs = np.random.default_rng(8).standard_normal((N, T, 2 * H)).astype("f")
    np.testing.assert_allclose(ours.backward(dhs), theirs.backward(dhs), rtol=1e-6, atol=1e-6)
    for g, g_ref in zip(ours.grads, theirs.grads):
        np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)


def test_embedding_affine_loss_and_dropout():
    rng = np.random.default_rng(9)
    V, D, M, N, T = 11, 4, 6, 3, 5
    W = rng.standard_normal((V, D)).astype("f")
    ids = rng.integers(0, V, (N, T))
    ours, theirs = _pair("TimeEmbedding", W)
    np.testing.assert_array_equal(ours.forward(ids), theirs.forward(ids))
    dout = rng.standard_normal((N, T, D)).astype("f")
    ours.backward(dout), theirs.backward(dout)
    np.testing.assert_allclose(ours.grads[0], theirs.grads[0], rtol=1e-6)

    aff, aff_ref = _pair("TimeAffine", rng.standard_normal((D, M)).astype("f"), np.zeros(M, "f"))
    x = rng.standard_normal((N, T, D)).astype("f")
    np.testing.assert_array_equal(aff.forward(x), aff_ref.forward(x))
    d = rng.standard_normal((N, T, M)).astype("f")
    np.testing.assert_array_equal(aff.backward(d), aff_ref.backward(d))

    scores = rng.standard_normal((N, T, V))
    ts = rng.integers(0, V, (N, T))
    ts[0, :2] = -1  # ignore_label
    loss, loss_ref = fast.TimeSoftmaxWithLoss(), book.TimeSoftmaxWithLoss()
    assert loss.forward(scores, ts) == loss_ref.forward(scores, ts)
    dx = loss.backward()
    np.testing.assert_array_equal(dx, loss_ref.backward())
    assert np.all(dx[0, :2] == 0)

    drop, drop_ref = fast.TimeDropout(0.3), book.TimeDropout(0.3)
    np.random.seed(1)
    a = drop.forward(x)
    np.random.seed(1)
    np.testing.assert_array_equal(a, drop_ref.forward(x))
    drop.train_flg = False
    assert drop.forward(x) is x


@pytest.mark.parametrize("cls, args, err, message", [
    ("TimeLSTM", ("Wx", "Wh", "b"), TypeError, "Wx must be a float32/float64 numpy.ndarray; got str"),
    ("TimeLSTM", (np.zeros((3, 16)), np.zeros((4, 12)), np.zeros(16)), ValueError,
     r"Wh has shape \(4, 12\); expected \(4, 16\)"),
    ("TimeGRU", (np.zeros((3, 12)), np.zeros((4, 12)), np.zeros(16)), ValueError, r"b has shape \(16,\); expected \(12,\)"),
    ("LSTM", (np.zeros((3, 16)), np.zeros((4, 16)), np.zeros((16, 1))), ValueError, r"b has shape \(16, 1\); expected 1"),
    ("RNN", (np.zeros((3, 4), int), np.zeros((4, 4)), np.zeros(4)), TypeError, "Wx .* got dtype int64"),
])
def test_malformed_weights_are_clear_errors(cls, args, err, message):
    with pytest.raises(err, match=message):
        getattr(fast, cls)(*args)


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"])
def test_optimizers_descend_and_update_in_place(name):
    opt = getattr(fast, name)(lr=0.05)
    p = np.array([3.0, -2.0])
    params, start = [p], p.copy()
    for _ in range(200):
        opt.update(params, [2 * params[0]])  # gradient of |p|^2
    assert params[0] is p and np.sum(p ** 2) < 0.5 * np.sum(start ** 2)


def test_clip_grads_and_remove_duplicate():
    g = [np.full(4, 3.0), np.full(4, 4.0)]
    fast.clip_grads(g, 1.0)
    assert np.sqrt(sum(np.sum(a ** 2) for a in g)) == pytest.approx(1.0, rel=1e-5)
    W = np.arange(6.0).reshape(2, 3)
    params, grads = fast.remove_duplicate([W, W.T, W], [np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 3))])
    assert len(params) == 1 and np.all(grads[0] == 3)


def test_ported_language_model_script_matches_numpy_step_by_step():
    """The acceptance test: the same script, only its import line changed."""
    rng = np.random.default_rng(0)
    V = 40
    corpus = np.tile(rng.permutation(V), 30).astype(np.int32)  # learnable: the next word is determined
    kw = dict(vocab_size=V, wordvec_size=32, hidden_size=32, batch_size=4, time_size=9, iters=40, dropout_ratio=0.2)
    ref = textbook_lm_script.load("textbook_numpy")["train"](corpus, **kw)
    ours = textbook_lm_script.load("rnnfast.compat")["train"](corpus, **kw)
    assert len(ours) == 40 and all(np.isfinite(ours))
    # float32 rounding differs (BLAS blocking, fused kernels) and SGD at lr=20 amplifies it slowly:
    # measured <= 3e-6 relative over the first 30 steps, 5e-5 by step 40.
    np.testing.assert_allclose(ours[:30], ref[:30], rtol=1e-5)
    np.testing.assert_allclose(ours, ref, rtol=2e-4)
    assert np.mean(ref[-5:]) < 0.7 * np.mean(ref[:5])  # it learns: the comparison is not between two flat lines


def test_eval_perplexity_and_trainer_run_on_the_ported_model(capsys):
    rng = np.random.default_rng(1)
    corpus = np.concatenate([rng.permutation(20) for _ in range(40)]).astype(np.int32)
    ns = textbook_lm_script.load("rnnfast.compat")
    np.random.seed(0)
    model = ns["BetterRnnlm"](20, 16, 16)
    trainer = fast.RnnlmTrainer(model, fast.SGD(5.0))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=2, batch_size=4, time_size=10, max_grad=0.25, eval_interval=5)
    assert trainer.ppl_list and all(np.isfinite(trainer.ppl_list))
    model.reset_state()
    ppl = fast.eval_perplexity(model, corpus, batch_size=4, time_size=10)
    assert 1 < ppl < 40
    assert "perplexity" in capsys.readouterr().out


# ---- chapters 7-8: seq2seq, peeky, attention, written the book's way (one star-import) -------------

@pytest.mark.parametrize("model", ["seq2seq", "peeky", "attention"])
def test_seq2seq_models_train_as_in_numpy_with_only_the_star_import_changed(model):
    import textbook_seq2seq_script
    ref_losses, ref_gen = textbook_seq2seq_script.load("textbook_numpy")["train"](model)
    losses, gen = textbook_seq2seq_script.load("rnnfast.compat")["train"](model)
    assert len(losses) == 40 and all(np.isfinite(losses))
    # float32 rounding (BLAS blocking, the fused kernels), amplified slowly by Adam
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    assert np.mean(ref_losses[-5:]) < 0.8 * np.mean(ref_losses[:5])  # it learns
    assert gen == ref_gen


def test_star_import_gives_what_the_books_scripts_use():
    ns: dict = {}
    exec("from rnnfast.compat import *", ns)
    for name in ["np", "GPU", "TimeEmbedding", "TimeLSTM", "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout",
                 "Softmax", "SoftmaxWithLoss", "Affine", "MatMul", "Sigmoid", "SigmoidWithLoss", "Dropout",
                 "Embedding", "sigmoid", "relu", "softmax", "cross_entropy_error", "BaseModel", "SGD", "Adam",
                 "Trainer", "RnnlmTrainer", "eval_perplexity", "eval_seq2seq", "to_gpu", "to_cpu", "clip_grads",
                 "TimeSigmoidWithLoss", "Simple_TimeSoftmaxWithLoss", "Simple_TimeAffine"]:
        assert name in ns, name
    assert ns["np"] is np and ns["GPU"] is False
    from rnnfast.compat import config  # the book's `from common import config`
    assert config.GPU is False and ns["to_gpu"](np.ones(2)).__class__ is np.ndarray


@pytest.mark.parametrize("cell", ["TimeRNN", "TimeLSTM", "TimeGRU"])
def test_set_state_broadcasts_a_single_state_over_the_batch(cell):
    """The book's ``set_state(h)`` with ``h (1, H)`` for N sequences: NumPy broadcasts, and so do we."""
    Wx, Wh, b = _weights(cell[4:], 5, 4, np.float32, 0)
    fast_layer, ref_layer = _pair(cell, Wx, Wh, b, stateful=True)
    rng = np.random.default_rng(1)
    h = rng.standard_normal((1, 4)).astype("f")
    states = (h, rng.standard_normal((1, 4)).astype("f")) if cell == "TimeLSTM" else (h,)
    xs = rng.standard_normal((3, 6, 5)).astype("f")
    fast_layer.set_state(*states)
    ref_layer.set_state(*states)
    np.testing.assert_allclose(fast_layer.forward(xs), ref_layer.forward(xs), rtol=1e-5, atol=1e-6)
    # The book broadcasts in forward only (generation); its backward fails on h_prev.T @ dA.  Ours goes on
    # as with the state tiled over the batch: dh per sequence.
    dhs = rng.standard_normal((3, 6, 4)).astype("f")
    dx = fast_layer.backward(dhs)
    grads = [g.copy() for g in fast_layer.grads]
    tiled, _ = _pair(cell, Wx, Wh, b, stateful=True)
    tiled.set_state(*(np.repeat(s, 3, axis=0) for s in states))
    tiled.forward(xs)
    np.testing.assert_array_equal(dx, tiled.backward(dhs))
    for g, w in zip(grads, tiled.grads):
        np.testing.assert_array_equal(g, w)
    assert fast_layer.dh.shape == (3, 4)
    np.testing.assert_array_equal(fast_layer.dh, tiled.dh)
    fast_layer.set_state(np.zeros((2, 4), "f"), *([np.zeros((2, 4), "f")] if cell == "TimeLSTM" else []))
    with pytest.raises(ValueError, match=r"h has shape \(2, 4\); expected \(N, H\) = \(3, 4\) or a shape that "
                                         r"broadcasts to it"):
        fast_layer.forward(xs)


def test_nan_in_a_diverged_run_propagates_as_in_numpy():
    Wx, Wh, b = _weights("LSTM", 5, 4, np.float32, 0)
    fast_layer, ref_layer = _pair("TimeLSTM", Wx, Wh, b)
    xs = np.random.default_rng(2).standard_normal((3, 6, 5)).astype("f")
    xs[1, 2, 3] = np.nan
    with np.errstate(invalid="ignore"):
        got, want = fast_layer.forward(xs), ref_layer.forward(xs)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[1, 2:]).all() and not np.isnan(got[0]).any()
    loss = fast.TimeSoftmaxWithLoss().forward(got, np.zeros((3, 6), dtype=int))
    assert np.isnan(loss)


def test_base_model_reads_and_writes_the_books_parameter_files(tmp_path):
    import pickle

    class Model(fast.BaseModel):
        def __init__(self):
            self.params = [np.arange(6, dtype="f").reshape(2, 3) / 7, np.ones(3, "f")]
            self.grads = [np.zeros_like(p) for p in self.params]

    m = Model()
    path = tmp_path / "Model.pkl"
    m.save_params(str(path))
    with open(path, "rb") as f:  # the book's format: a pickled list of float16 arrays
        stored = pickle.load(f)
    assert [a.dtype for a in stored] == [np.float16, np.float16]
    m2 = Model()
    m2.params[0][...] = 0
    m2.load_params(str(path))
    np.testing.assert_array_equal(m2.params[0], m.params[0].astype(np.float16).astype("f"))
    # a pickle that would run code is refused, not executed
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([np.ones(2)]).replace(b"numpy", b"posix", 1))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load it"):
        m2.load_params(str(evil))
    with pytest.raises(IOError, match="No file"):
        m2.load_params(str(tmp_path / "missing.pkl"))
    bad = tmp_path / "bad.pkl"
    with open(bad, "wb") as f:
        pickle.dump([np.ones((4, 4), np.float16)] * 2, f)
    with pytest.raises(ValueError, match=r"array 0 has shape \(4, 4\); the model's parameter 0 has shape \(2, 3\)"):
        m2.load_params(str(bad))


def test_trainer_and_eval_seq2seq_as_the_books(capsys):
    import textbook_seq2seq_script
    ns = textbook_seq2seq_script.load("rnnfast.compat")
    x, t, chars = ns["addition_data"](256, 0)
    np.random.seed(0)
    model = ns["Seq2seq"](len(chars), 16, 32)
    trainer = fast.Trainer(model, fast.Adam())
    trainer.fit(x, t, max_epoch=2, batch_size=32, max_grad=5.0, eval_interval=4)
    assert len(trainer.loss_list) == 4 and trainer.loss_list[-1] < trainer.loss_list[0]
    out = capsys.readouterr().out
    assert "| epoch 2 |  iter 5 / 8 |" in out and "| loss " in out
    id_to_char = dict(enumerate(chars))
    ok = fast.eval_seq2seq(model, x[[0]], t[[0]], id_to_char, verbose=True)
    assert ok in (0, 1)
    out = capsys.readouterr().out
    assert out.startswith("Q ") and "\nT " in out and out.endswith("---\n")
