"""Optimizers, clipping, batching, checkpoints (round trip, atomicity, damage) and LM training/resume."""
import numpy as np
import pytest

from rnnfast.models import RNNLM, Vocab
from rnnfast.train import (OPTIMIZERS, CheckpointError, clip_grads_norm, clip_grads_value, load_checkpoint,
                           save_checkpoint, tbptt_windows)
from rnnfast.train.trainer import LMTrainer


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_minimize_a_quadratic_in_place(name):
    p = np.array([3.0, -2.0])
    opt = OPTIMIZERS[name](lr=0.1)
    start = id(p)
    for _ in range(300):
        opt.update([p], [2 * p])
    assert id(p) == start and np.all(np.abs(p) < 0.5 * np.array([3.0, 2.0]))
    state = opt.state_dict()
    other = OPTIMIZERS[name](lr=1.0)
    other.load_state_dict(state)
    assert other.lr == opt.lr and other.t == opt.t


def test_clipping():
    g = [np.array([3.0, 0.0]), np.array([[4.0]])]
    assert clip_grads_norm(g, 1.0) == pytest.approx(5.0)
    assert np.sqrt(sum((x**2).sum() for x in g)) == pytest.approx(1.0, rel=1e-5)
    g = [np.array([-9.0, 0.5, 9.0])]
    clip_grads_value(g, 5)
    np.testing.assert_array_equal(g[0], [-5.0, 0.5, 5.0])


def test_tbptt_windows_continue_streams():
    tokens = np.arange(23)
    wins = list(tbptt_windows(tokens, batch_size=2, seq_len=4))
    x = np.concatenate([w[0] for w in wins], axis=1)
    y = np.concatenate([w[1] for w in wins], axis=1)
    np.testing.assert_array_equal(x[0], np.arange(11))
    np.testing.assert_array_equal(x[1], np.arange(11, 22))
    np.testing.assert_array_equal(y, x + 1)
    assert [w[0].shape[1] for w in wins] == [4, 4, 3]


def test_checkpoint_round_trip_is_bitwise(tmp_path):
    arrays = {"a": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), "b": np.arange(5)}
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"x": 1, "nested": {"y": [1, 2]}}, arrays)
    cfg, back = load_checkpoint(path)
    assert cfg == {"x": 1, "nested": {"y": [1, 2]}}
    for k in arrays:
        assert back[k].dtype == arrays[k].dtype
        np.testing.assert_array_equal(back[k], arrays[k])
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary left behind


def test_damaged_or_foreign_checkpoints_are_rejected(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.npz")
    path = tmp_path / "c.npz"
    save_checkpoint(path, {}, {"a": np.zeros(1000)})
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "trunc.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an rnnfast checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    np.save(tmp_path / "obj.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "obj.npy")
    with pytest.raises(TypeError, match="object"):
        save_checkpoint(tmp_path / "x.npz", {}, {"o": np.array([None], dtype=object)})


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"v": 1}, {"a": np.ones(3)})

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"v": 2}, {"a": Boom()})
    assert load_checkpoint(path)[0] == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def _text():
    return ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs. " * 40)


def test_lm_learns_and_generates(tmp_path):
    vocab = Vocab.from_text(_text())
    ids = vocab.encode(_text())
    model = RNNLM(len(vocab), 16, 32, 1, "lstm", dropout=0.0, seed=0)
    from rnnfast.train import Adam

    before = model.perplexity(ids, 8, 16)
    LMTrainer(model, Adam(lr=1e-2), progress=False, log=lambda s: None).fit(ids, ids, epochs=3, batch_size=8, seq_len=16)
    after = model.perplexity(ids, 8, 16)
    assert after < before / 3
    out = model.generate(vocab.encode("the "), 30, seed=1)
    assert len(out) == 30 and all(0 <= i < len(vocab) for i in out)
    assert model.generate(vocab.encode("the "), 5, greedy=True) == model.generate(vocab.encode("the "), 5, greedy=True)


def test_generation_carries_state_like_the_sequence_forward():
    model = RNNLM(9, 4, 6, 2, "lstm", dropout=0.0, seed=0, dtype="float64")
    model.eval()
    ids = np.array([[1, 4, 2, 7, 3]])
    model.reset_state()
    scores = model.scores(ids)
    W = model.embed.params[0]
    states = None
    for t in range(5):
        h, states = model.rnn.step(W[[ids[0, t]]], states)
        np.testing.assert_allclose(model._logits(h)[0], scores[0, t], rtol=1e-10)


def test_backends_train_identically_for_a_few_steps():
    vocab = Vocab.from_text(_text())
    ids = vocab.encode(_text())[:400]
    from rnnfast import backend
    from rnnfast.train import SGD

    losses = {}
    for name in ("cython", "numpy"):
        model = RNNLM(len(vocab), 8, 12, 2, "gru", dropout=0.0, seed=5, dtype="float64")
        opt = SGD(lr=0.5)
        with backend.use(name):
            run = []
            for x, y in tbptt_windows(ids, 4, 10):
                run.append(model.forward(x, y))
                model.backward()
                opt.update(model.params, model.grads)
        losses[name] = run
    np.testing.assert_allclose(losses["cython"], losses["numpy"], rtol=1e-9)


def test_keyboard_interrupt_saves_a_checkpoint_and_reraises():
    vocab = Vocab.from_text(_text())
    ids = vocab.encode(_text())
    model = RNNLM(len(vocab), 8, 8, 1, "rnn", dropout=0.0, seed=0)
    from rnnfast.train import SGD

    calls = {"forward": 0, "saved": 0}
    real_forward = model.forward

    def forward(x, y):
        calls["forward"] += 1
        if calls["forward"] == 3:
            raise KeyboardInterrupt
        return real_forward(x, y)

    model.forward = forward
    trainer = LMTrainer(model, SGD(lr=0.1), progress=False, log=lambda s: None,
                        save=lambda tr: calls.__setitem__("saved", calls["saved"] + 1))
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(ids, ids, epochs=2, batch_size=4, seq_len=8)
    assert calls["saved"] == 1


def test_trainer_blas_threads_is_checked():
    from rnnfast.train.trainer import LMTrainer

    with pytest.raises(ValueError, match="blas_threads must be >= 1; got 0"):
        LMTrainer(None, None, blas_threads=0)
    with pytest.raises(TypeError, match="blas_threads must be a positive int; got float"):
        LMTrainer(None, None, blas_threads=1.5)
    assert LMTrainer(None, None, blas_threads=None).blas_threads is None
