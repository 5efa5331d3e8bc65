"""Where a batch of the main job goes: ``rnnfast train``'s model (embedding 64, 2-layer LSTM 256, dropout 0.1,
Adam 3e-3, clipping 1.0, batches of 32 x 64, state carried), each part of a training step timed on its own.

    python bench/main_job_parts.py [--batches 50] [--threads 2]

Prints each part's ms per batch, its share of the step and the pages it faulted in per batch (minor faults: new
memory the kernel had to zero and map; glibc hands freed blocks back, so a loop that allocates afresh each batch
pays them every batch), and the tokens/s.  What it measured: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import collections
import time

try:
    import resource
except ImportError:  # no getrusage (Windows): no fault counts
    resource = None


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource is not None else 0

from threadpoolctl import threadpool_limits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=50, help="timed batches (after 10 of warm-up)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    from rnnfast._core.threads import available_cores
    from rnnfast.cli.corpus import default_corpus
    from rnnfast.models import RNNLM, Vocab
    from rnnfast.train import Adam, clip_grads_norm, tbptt_windows

    text = default_corpus()[:400_000]
    vocab = Vocab.from_text(text)
    model = RNNLM(len(vocab), 64, 256, 2, "lstm", dropout=0.1, seed=0, num_threads=args.threads or available_cores())
    opt = Adam(lr=3e-3)
    model.train()
    spent = collections.defaultdict(float)

    faults = collections.defaultdict(int)

    def timed(name, f, *a):
        f0, t0 = _page_faults(), time.perf_counter()
        out = f(*a)
        spent[name] += time.perf_counter() - t0
        faults[name] += _page_faults() - f0
        return out

    m, windows = model, tbptt_windows(vocab.encode(text), 32, 64)
    with threadpool_limits(1, user_api="blas"):  # as rnnfast train does
        for it in range(10 + args.batches):
            if it == 10:
                spent.clear()
                faults.clear()
                start = time.perf_counter()
            x, y = next(windows)
            # as RNNLM.scores: the first layer reads the ids (its embedding has no dropout)
            ids = timed("embedding", m.embed.check_ids, x)
            h = timed("dropout", m.out_drop.forward, timed("LSTM layers, forward", m.rnn.forward, ids, None, True,
                                                           None, None, m.embed.params[0]))
            timed("output layer and softmax", m.loss_layer.forward, timed("output layer and softmax",
                                                                          m.affine.forward, h), y)
            d = timed("output layer and softmax", m.affine.backward,
                      timed("output layer and softmax", m.loss_layer.backward))
            d = timed("LSTM layers, backward", m.rnn.backward, timed("dropout", m.out_drop.backward, d))
            timed("embedding", m.embed.set_gradient, d)
            timed("clipping", clip_grads_norm, m.grads, 1.0)
            timed("Adam", opt.update, m.params, m.grads)
        total = time.perf_counter() - start
    for name, t in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:26s} {t / args.batches * 1e3:7.2f} ms  {100 * t / total:5.1f}%  "
              f"{faults[name] / args.batches:7.0f} page faults")
    print(f"step {total / args.batches * 1e3:.2f} ms, {args.batches * 32 * 64 / total:,.0f} tokens/s")


if __name__ == "__main__":
    main()
