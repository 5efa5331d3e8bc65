"""The rnnfast command end to end on a small corpus, and its one-line errors."""
import os
import subprocess
import sys

import pytest

import rnnfast
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
