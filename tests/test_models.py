"""Classifier, tagger, regressor, seq2seq and the gradient-flow measurement."""
import numpy as np
import pytest

from rnnfast.models import Seq2Seq, SequenceClassifier, SequenceRegressor, SequenceTagger, addition_task
from rnnfast.train import Adam, clip_grads_norm

from test_gradcheck import numerical_gradient


def _check_grads(model, loss, indices):
    loss()
    model.backward()
    for i in indices:
        np.testing.assert_allclose(model.grads[i], numerical_gradient(loss, model.params[i]), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_gradients_with_lengths(pooling, bidirectional, rng):
    m = SequenceClassifier(3, 4, 5, cell="gru", bidirectional=bidirectional, pooling=pooling, dtype="float64")
    x = rng.standard_normal((3, 6, 3))
    lengths = np.array([6, 2, 4])
    labels = np.array([0, 3, 4])
    _check_grads(m, lambda: m.forward(x, labels, lengths), [0, 1, len(m.params) - 2])
    # padded steps do not matter
    x2 = x.copy()
    x2[1, 2:] = 100.0
    assert m.forward(x2, labels, lengths) == pytest.approx(m.forward(x, labels, lengths), rel=1e-12)


def test_classifier_learns_a_parity_like_task():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (256, 8))
    labels = (x.sum(axis=1) > 4).astype(int)
    m = SequenceClassifier(8, 32, 2, vocab_size=2, seed=1)
    opt = Adam(lr=1e-2)
    for _ in range(60):
        m.forward(x, labels)
        m.backward()
        opt.update(m.params, m.grads)
    assert (m.predict(x) == labels).mean() > 0.9


def test_tagger_gradients_and_padding(rng):
    m = SequenceTagger(4, 3, 5, cell="lstm", bidirectional=True, vocab_size=7, dtype="float64")
    ids = rng.integers(0, 7, (2, 5))
    tags = rng.integers(0, 5, (2, 5))
    lengths = np.array([5, 3])
    _check_grads(m, lambda: m.forward(ids, tags, lengths), [0, 1, len(m.params) - 1])
    assert m.predict(ids, lengths).shape == (2, 5)


def test_regressor_gradients_and_forecasting(rng):
    m = SequenceRegressor(1, 6, 1, cell="rnn", dtype="float64")
    x = rng.standard_normal((2, 5, 1))
    y = rng.standard_normal((2, 5, 1))
    _check_grads(m, lambda: m.forward(x, y, np.array([5, 3])), [0, 1, len(m.params) - 2])
    # one-step-ahead forecasting of a sine wave
    t = np.arange(0, 60, 0.2)
    wave = np.sin(t)[None, :, None].astype(np.float32)
    model = SequenceRegressor(1, 16, 1, seed=0)
    opt = Adam(lr=1e-2)
    first = None
    for _ in range(80):
        loss = model.forward(wave[:, :-1], wave[:, 1:])
        first = first if first is not None else loss
        model.backward()
        opt.update(model.params, model.grads)
    assert loss < first / 10


def test_seq2seq_gradients_flow_through_the_state_handoff(rng):
    m = Seq2Seq(6, 3, 4, cell="lstm", dtype="float64")
    src, tin, tout = rng.integers(0, 6, (2, 4)), rng.integers(0, 6, (2, 3)), rng.integers(0, 6, (2, 3))
    # indices 1, 2: encoder weights, reached only through the decoder's initial state
    _check_grads(m, lambda: m.forward(src, tin, tout), [0, 1, 2, 5])


def test_seq2seq_learns_addition():
    vocab, src, tgt = addition_task(3000, digits=2, seed=0)
    m = Seq2Seq(len(vocab), 16, 96, seed=0)
    opt = Adam(lr=5e-3)
    losses = []
    for epoch in range(5):
        for i in range(0, len(src), 100):
            losses.append(m.forward(src[i:i + 100], tgt[i:i + 100, :-1], tgt[i:i + 100, 1:]))
            m.backward()
            clip_grads_norm(m.grads, 5.0)
            opt.update(m.params, m.grads)
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])
    _, vs, vt = addition_task(200, 2, seed=9)
    pred = m.generate(vs, vocab.stoi["_"], vt.shape[1] - 1)
    per_char = (pred == vt[:, 1:]).mean()
    assert per_char > 0.5  # chance is ~1/13


def test_gradient_flow_vanishes_fastest_for_the_vanilla_rnn():
    from rnnfast.cli.gradflow import gradient_norms

    norms = {c: gradient_norms(c, hidden_size=16, steps=60, batch=4) for c in ("rnn", "lstm", "gru")}
    for n in norms.values():
        assert n.shape == (60,) and np.all(np.isfinite(n)) and n[-1] < n[0]
    assert norms["rnn"][-1] < norms["lstm"][-1] and norms["rnn"][-1] < norms["gru"][-1]


def test_gradflow_command_draws_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from rnnfast.cli import main

    out = tmp_path / "g.png"
    assert main(["gradflow", "--hidden", "8", "--steps", "30", "--batch", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lstm" in capsys.readouterr().out
