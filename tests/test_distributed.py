"""Training across processes through ``torch.distributed`` (gloo, 2 processes on 127.0.0.1): the modules
under ``DistributedDataParallel``, ``LMTrainer``'s data parallelism, and ``rnnfast train`` under torchrun,
each against one process with the whole batch."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
import torch.distributed as dist  # noqa: E402

import rnnfast  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(rnnfast.__file__))
ENV = dict(os.environ, PYTHONPATH=ROOT)
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exit_now():
    """End a spawned worker without the interpreter's finalization: a spawned child runs C++ static destructors
    at exit, where gloo's threads in torch 2.13 may still hold work and abort the process (CI saw rank 1 die of
    SIGABRT after its results were written).  What is tested is written and the process group is gone by here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _ddp_worker(rank, world, port, out_dir):
    import rnnfast.torch as rt

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = rt.LSTM(5, 7, 2, batch_first=True, num_threads=1).double()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    x = torch.randn(8, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    share = x[rank * 4:(rank + 1) * 4]
    ddp(share)[0].pow(2).mean().backward()  # DDP averages the gradients over the processes
    if rank == 0:
        np.savez(os.path.join(out_dir, "ddp.npz"), *[p.grad.numpy() for p in model.parameters()])
    dist.barrier()  # as the example does: all traffic done and DDP's hold dropped before gloo goes
    del ddp
    dist.destroy_process_group()
    _exit_now()


def test_ddp_gradients_equal_one_process_on_the_whole_batch(tmp_path):
    import rnnfast.torch as rt

    torch.multiprocessing.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = rt.LSTM(5, 7, 2, batch_first=True, num_threads=1).double()
    x = torch.randn(8, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    model(x)[0].pow(2).mean().backward()
    with np.load(tmp_path / "ddp.npz") as z:
        got = [z[f"arr_{i}"] for i in range(len(z.files))]
    for p, g in zip(model.parameters(), got):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-14)


def _trainer_run(parallel, steps=4):
    from rnnfast.models import RNNLM, Vocab
    from rnnfast.train import Adam
    from rnnfast.train.trainer import LMTrainer

    text = "def f(x):\n    return x + 1\n\nclass A:\n    pass\n" * 40
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = RNNLM(len(vocab), 8, 16, 1, "lstm", dropout=0.0, seed=3, dtype="float64", num_threads=1)
    trainer = LMTrainer(model, Adam(lr=1e-2), progress=False, log=lambda s: None, parallel=parallel)
    trainer.train_epoch(ids[: 8 * 16 * steps + 1], batch_size=8, seq_len=16)
    return model.params


def _trainer_worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    from rnnfast.train.distributed import DataParallel

    parallel = DataParallel()
    params = _trainer_run(parallel)
    if rank == 0:
        np.savez(os.path.join(out_dir, "params.npz"), *params)
    parallel.close()
    _exit_now()


def test_lm_trainer_across_processes_equals_one_process(tmp_path):
    torch.multiprocessing.spawn(_trainer_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    expected = _trainer_run(None)
    with np.load(tmp_path / "params.npz") as z:
        for i, p in enumerate(expected):
            np.testing.assert_allclose(z[f"arr_{i}"], p, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(shutil.which("torchrun") is None
                    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun is not on the PATH")
def test_rnnfast_train_under_torchrun_reaches_the_one_process_loss(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("def f(x):\n    return x + 1\n\nclass A:\n    pass\n" * 300)
    common = ["train", "--data", str(corpus), "--epochs", "1", "--dropout", "0", "--layers", "1", "--hidden", "24",
              "--embed", "8", "--batch-size", "8", "--seq-len", "16", "--quiet", "--sample-length", "0",
              "--dtype", "float64", "--threads", "1"]
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", str(free_port()), "-m", "rnnfast",
                          *common, "--checkpoint", str(tmp_path / "two.npz")], capture_output=True, text=True,
                         env=ENV, cwd=tmp_path, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "rnnfast", *common, "--checkpoint", str(tmp_path / "one.npz")],
                         capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]

    def perplexity(out):
        line = next(ln for ln in out.splitlines() if "best val perplexity" in ln)
        return float(line.split("best val perplexity")[1].split(";")[0])

    assert "data parallel: 2 processes" in two.stdout and two.stdout.count("epoch 1:") == 1
    assert perplexity(two.stdout) == pytest.approx(perplexity(one.stdout), rel=1e-6)
    assert (tmp_path / "two.npz").exists()


def test_the_ddp_example_runs_under_torchrun(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world, hello rnnfast\n" * 200)
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    r = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", str(free_port()), "-m",
                        "rnnfast.torch.ddp_char_lm", "--data", str(corpus), "--steps", "20", "--hidden", "16",
                        "--batch-size", "4", "--seq-len", "8"], capture_output=True, text=True, env=ENV, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step 20: loss" in r.stdout and "over 2 process(es)" in r.stdout
