"""A character-level language model in PyTorch with ``rnnfast.torch.LSTM``, trained data-parallel under
``torch.nn.parallel.DistributedDataParallel`` (gloo, CPUs).  The same command runs on one machine or many:

    torchrun --nproc-per-node 2 -m rnnfast.torch.ddp_char_lm --steps 200
    # two machines, two processes each: on each, with its own --node-rank (0 on the first)
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
             -m rnnfast.torch.ddp_char_lm --steps 200

Every process reads its share of each batch's rows (a global batch of ``--batch-size`` streams of the built-in
corpus, or ``--data FILE``); DDP averages the gradients; rank 0 prints the loss.  Without torchrun it runs
as one process.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import LSTM


class CharLM(nn.Module):
    def __init__(self, vocab_size: int, embed: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = LSTM(embed, hidden, layers, batch_first=True, dropout=dropout)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, x, state=None):
        h, state = self.rnn(self.embed(x), state)
        return self.out(h), state


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="UTF-8 text (default: the built-in corpus)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32, help="global batch: divided among the processes")
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args(argv)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} does not divide among {world} processes")

    if args.data:
        with open(args.data, encoding="utf-8") as f:
            text = f.read()
    else:
        from ..cli.corpus import default_corpus

        text = default_corpus()[:1_000_000]
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    share = args.batch_size // world
    L = (len(ids) - 1) // args.batch_size
    rows = slice(rank * share, (rank + 1) * share)  # this process's streams
    xs = torch.from_numpy(ids[:args.batch_size * L].reshape(args.batch_size, L)[rows].copy())
    ys = torch.from_numpy(ids[1:args.batch_size * L + 1].reshape(args.batch_size, L)[rows].copy())

    torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = CharLM(len(chars), 64, args.hidden, 2, 0.1)
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    state, pos, t0 = None, 0, time.perf_counter()
    for step in range(1, args.steps + 1):
        if pos + args.seq_len >= L:
            pos, state = 0, None
        x, y = xs[:, pos:pos + args.seq_len], ys[:, pos:pos + args.seq_len]
        pos += args.seq_len
        logits, state = ddp(x, state)
        state = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if rank == 0 and (step % 20 == 0 or step == args.steps):
            rate = step * args.batch_size * args.seq_len / (time.perf_counter() - t0)
            print(f"step {step}: loss {loss.item():.3f} (rank 0's rows)  {rate:,.0f} tokens/s over {world} process(es)",
                  flush=True)
    if world > 1:
        # Every rank's traffic done, and DDP's hold on the group dropped, before the group goes: a rank that tears
        # gloo down while its peer still talks to it can abort in gloo's threads.
        dist.barrier()
        del ddp
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # torch 2.13's gloo may still own threads when the interpreter's C++ destructors run, and one of them then
    # aborts the rank ("terminate called without an active exception") after its work is done: leave without them,
    # as the spawned workers of tests/test_distributed.py do.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
