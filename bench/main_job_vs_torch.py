"""The main job (``rnnfast train`` with its defaults) against the same model written in PyTorch, side by side.

    python bench/main_job_vs_torch.py --rounds 5 --batches 40

Both train a character-level language model on the built-in corpus: embedding 64, a 2-layer LSTM of 256 units
with dropout 0.1 between the layers and before the output, a linear output layer, Adam (lr 3e-3), gradient
clipping at norm 1.0, batches of 32 x 64 tokens, the state carried from window to window (truncated BPTT).
Each round times ``--batches`` training batches of each, alternating which goes first, on the same threads
(``--threads``, default all cores); prints tokens/s per round and the medians.  Each library runs in a process of
its own, as users run them (``--one-process``: both in this one; there the memory one library frees serves the
other's next batch, which spares PyTorch most of the page faults it takes alone).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def rnnfast_trainer(ids, vocab_size, threads):
    from rnnfast.models import RNNLM
    from rnnfast.train import Adam, clip_grads_norm, tbptt_windows

    model = RNNLM(vocab_size, 64, 256, 2, "lstm", dropout=0.1, seed=0, num_threads=threads)
    opt = Adam(lr=3e-3)
    windows = tbptt_windows(ids, 32, 64)

    def batch():
        nonlocal windows
        try:
            x, y = next(windows)
        except StopIteration:
            windows = tbptt_windows(ids, 32, 64)
            model.reset_state()
            x, y = next(windows)
        model.forward(x, y)
        model.backward()
        clip_grads_norm(model.grads, 1.0)
        opt.update(model.params, model.grads)
        return y.size

    model.train()
    return batch


def torch_trainer(ids, vocab_size, threads):
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(threads)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, 64)
            self.rnn = nn.LSTM(64, 256, 2, dropout=0.1, batch_first=True)
            self.drop = nn.Dropout(0.1)
            self.out = nn.Linear(256, vocab_size)

        def forward(self, x, state):
            h, state = self.rnn(self.embed(x), state)
            return self.out(self.drop(h)), state

    model = LM()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    L = (len(ids) - 1) // 32
    xs = torch.from_numpy(ids[:32 * L].reshape(32, L).astype(np.int64))
    ys = torch.from_numpy(ids[1:32 * L + 1].reshape(32, L).astype(np.int64))
    pos, state = 0, None

    def batch():
        nonlocal pos, state
        if pos >= L:
            pos, state = 0, None
        x, y = xs[:, pos:pos + 64], ys[:, pos:pos + 64]
        pos += 64
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return y.numel()

    model.train()
    return batch


def _corpus_ids():
    from rnnfast.cli.corpus import default_corpus
    from rnnfast.models import Vocab

    text = default_corpus()[:400_000]
    vocab = Vocab.from_text(text)
    return vocab.encode(text), len(vocab)


def _timed(batch, batches: int) -> float:
    """Tokens/s over ``batches`` training batches."""
    t0, tokens = time.perf_counter(), 0
    for _ in range(batches):
        tokens += batch()
    return tokens / (time.perf_counter() - t0)


def _worker(name: str, batches: int, threads: int) -> None:
    """One library alone in this process, as a user runs it: 3 batches of warm-up, then the timed ones."""
    from threadpoolctl import threadpool_limits

    ids, vocab_size = _corpus_ids()
    batch = TRAINERS[name](ids, vocab_size, threads)
    with threadpool_limits(1, user_api="blas"):  # as rnnfast train does; PyTorch's own threads are its own
        for _ in range(3):
            batch()
        print(f"{_timed(batch, batches):.1f}")


def _in_own_processes(rounds: int, batches: int, threads: int) -> dict:
    rates = {name: [] for name in TRAINERS}
    for r in range(rounds):
        for name in (list(TRAINERS) if r % 2 == 0 else list(TRAINERS)[::-1]):
            out = subprocess.run([sys.executable, __file__, "--worker", name, "--batches", str(batches),
                                  "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
            rates[name].append(float(out.split()[-1]))
        print(f"round {r + 1}: " + "  ".join(f"{n} {rates[n][-1]:,.0f} tokens/s" for n in TRAINERS), flush=True)
    return rates


def _in_one_process(rounds: int, batches: int, threads: int) -> dict:
    from threadpoolctl import threadpool_limits

    ids, vocab_size = _corpus_ids()
    trainers = {name: make(ids, vocab_size, threads) for name, make in TRAINERS.items()}
    rates = {name: [] for name in trainers}
    with threadpool_limits(1, user_api="blas"):
        for fn in trainers.values():  # warm-up
            for _ in range(3):
                fn()
        for r in range(rounds):
            for name in (list(trainers) if r % 2 == 0 else list(trainers)[::-1]):
                rates[name].append(_timed(trainers[name], batches))
                time.sleep(0.2)  # let the other library's spinning threads go to sleep
            print(f"round {r + 1}: " + "  ".join(f"{n} {rates[n][-1]:,.0f} tokens/s" for n in trainers), flush=True)
    return rates


TRAINERS = {"rnnfast": rnnfast_trainer, "torch": torch_trainer}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=40, help="training batches per round and library")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--one-process", action="store_true",
                    help="both libraries in this process, alternating (the default: each round starts a process "
                         "per library, as users run them; memory one library freed then serves the other)")
    ap.add_argument("--worker", choices=list(TRAINERS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from rnnfast._core.threads import available_cores

    threads = args.threads or available_cores()
    if args.worker:
        return _worker(args.worker, args.batches, threads)
    rates = (_in_one_process if args.one_process else _in_own_processes)(args.rounds, args.batches, threads)
    med = {n: statistics.median(v) for n, v in rates.items()}
    ratios = sorted(a / b for a, b in zip(rates["rnnfast"], rates["torch"]))
    print(f"median tokens/s on {threads} thread(s){' (one process)' if args.one_process else ''}: "
          f"rnnfast {med['rnnfast']:,.0f}, torch {med['torch']:,.0f}, rnnfast/torch {med['rnnfast'] / med['torch']:.2f}x; "
          f"median round ratio {statistics.median(ratios):.3f}x")


if __name__ == "__main__":
    main()
