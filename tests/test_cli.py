"""The rnnfast command end to end on a small corpus, and its one-line errors."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import rnnfast
import rnnfast.train
from rnnfast.cli import main

# run the same rnnfast that this test imported (installed, or an in-place build)
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(rnnfast.__file__)))

TEXT = "def f(x):\n    return x + 1\n\nclass A:\n    pass\n" * 60


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(TEXT)
    return p


def test_train_sample_eval_resume(tmp_path, corpus, capsys):
    ckpt = tmp_path / "lm.npz"
    args = ["train", "--data", str(corpus), "--layers", "1", "--hidden", "32", "--embed", "16", "--epochs", "2",
            "--batch-size", "4", "--seq-len", "16", "--checkpoint", str(ckpt), "--quiet", "--sample-length", "40"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "epoch 2:" in out and "val ppl" in out and "tokens/s" in out and "--- sample" in out
    assert ckpt.exists()
    assert main(["sample", str(ckpt), "--length", "20", "--seed", "1", "--prime", "def"]) == 0
    assert capsys.readouterr().out.startswith("def")
    assert main(["eval", str(ckpt), "--data", str(corpus)]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert main(args[:-3] + ["--resume", "--epochs", "3", "--sample-length", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "epoch 3:" in out and "epoch 1:" not in out


def test_train_a_peephole_lstm_and_resume_it(tmp_path, corpus, capsys):
    ckpt = tmp_path / "lm.npz"
    args = ["train", "--data", str(corpus), "--cell", "lstm-peephole", "--layers", "1", "--hidden", "16", "--embed",
            "8", "--epochs", "1", "--batch-size", "4", "--seq-len", "16", "--checkpoint", str(ckpt), "--quiet",
            "--sample-length", "0"]
    assert main(args) == 0
    assert "1-layer LSTM (peephole)" in capsys.readouterr().out
    assert main(args[:-3] + ["--resume", "--epochs", "2", "--quiet", "--sample-length", "0"]) == 0
    out = capsys.readouterr().out
    assert "LSTM (peephole)" in out and "epoch 2:" in out
    assert main(["sample", str(ckpt), "--length", "10", "--seed", "1"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "/nonexistent.txt"], "data file not found"),
    (["sample", "/nonexistent.npz"], "checkpoint not found"),
    (["eval", "/nonexistent.npz", "--data", "x"], "checkpoint not found"),
])
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_option_and_damaged_checkpoint(tmp_path, corpus):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    for argv in (["sample", str(bad)], ["train", "--hidden", "-3"], ["train", "--data", str(tmp_path / "none")]):
        r = subprocess.run([sys.executable, "-m", "rnnfast", *argv], capture_output=True, text=True, cwd=tmp_path,
                           env=ENV)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip()


def test_info(capsys):
    assert main(["info"]) == 0
    assert "OpenMP" in capsys.readouterr().out


def test_addition_demo(capsys):
    assert main(["addition", "--examples", "300", "--epochs", "1", "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    assert "exact-answer accuracy" in out and " = " in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnfast {rnnfast.__version__}"


@pytest.mark.parametrize("argv, message", [
    (["train", "--embed", "32", "--hidden", "64", "--tie"], "--tie needs --embed equal to --hidden"),
    (["train", "--seq-len", "100000", "--max-chars", "1000"], "--seq-len 100000 is too long"),
    (["train", "--batch-size", "4000", "--max-chars", "1000"], "too few for --batch-size 4000"),
    (["bench", "--stream-sizes", "none", "256"], "'none' cannot be given with sizes"),
])
def test_option_errors_name_the_option(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bench_stream_sizes_none_skips_streaming(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_run(cases, backends, stream_sizes, **kw):
        seen["stream_sizes"] = stream_sizes
        raise KeyboardInterrupt  # stop before timing anything

    monkeypatch.setattr("rnnfast.benchmarks.run", fake_run)
    argv = ["bench", "--quick", "--stream-sizes", "none", "--png", "none", "--json", str(tmp_path / "b.json")]
    assert main(argv) == 130
    assert seen["stream_sizes"] == []


@pytest.fixture
def trained(tmp_path, corpus):
    ckpt = tmp_path / "lm.npz"
    assert main(["train", "--data", str(corpus), "--layers", "1", "--hidden", "16", "--embed", "8", "--epochs", "1",
                 "--batch-size", "4", "--seq-len", "8", "--checkpoint", str(ckpt), "--quiet",
                 "--sample-length", "0"]) == 0
    return ckpt


def test_checkpoint_gets_the_umask_mode(tmp_path, trained):
    old = os.umask(0o022)
    try:
        path = tmp_path / "fresh.npz"
        rnnfast.train.save_checkpoint(path, {}, {"a": np.zeros(3)})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.chmod(path, 0o640)  # a file being replaced keeps its mode
        rnnfast.train.save_checkpoint(path, {}, {"a": np.ones(3)})
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        os.umask(0o077)
        rnnfast.train.save_checkpoint(tmp_path / "private.npz", {}, {"a": np.zeros(3)})
        assert stat.S_IMODE((tmp_path / "private.npz").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert stat.S_IMODE(trained.stat().st_mode) == 0o666 & ~old


def test_eval_and_sample_with_unknown_characters(tmp_path, trained, capsys):
    other = tmp_path / "other.txt"
    other.write_text(TEXT[:300] + "ζ§ζ")
    capsys.readouterr()
    assert main(["eval", str(trained), "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not in the vocabulary" in err and "--unknown skip" in err
    assert main(["eval", str(trained), "--data", str(other), "--unknown", "skip"]) == 0
    out, err = capsys.readouterr()
    assert "perplexity" in out and "3 token(s) not in the vocabulary skipped" in err
    assert main(["eval", str(trained), "--data", str(other), "--unknown", "replace"]) == 0
    assert "3 token(s) not in the vocabulary replaced with ' '" in capsys.readouterr().err
    assert main(["eval", str(trained), "--data", str(other), "--unknown", "replace", "--replacement", "ζ"]) == 2
    assert "replacement must be a token of the vocabulary" in capsys.readouterr().err
    assert main(["sample", str(trained), "--prime", "deζ", "--length", "5", "--unknown", "skip", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("deζ")
    assert main(["sample", str(trained), "--prime", "ζ", "--unknown", "skip"]) == 2


def test_vocab_unknown_policies():
    from rnnfast.models import Vocab

    v = Vocab.from_text("abc")
    assert v.encode("abxc", unknown="skip").tolist() == [0, 1, 2]
    assert v.encode("abxc", unknown="replace", replacement="a").tolist() == [0, 1, 0, 2]
    ids, missing = v.encode_counting("xxab", unknown="skip")
    assert ids.tolist() == [0, 1] and missing == 2
    with pytest.raises(ValueError, match="1 token"):
        v.encode("abxxc")
    with pytest.raises(ValueError, match="unknown must be one of"):
        v.encode("ab", unknown="ignore")
