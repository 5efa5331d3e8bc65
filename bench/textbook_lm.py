"""The ported textbook LSTM language-model script (tests/textbook_lm_script.py), timed side by side:
plain NumPy (the book's layers) vs the same script with ``from rnnfast.compat import ...``.

    python bench/textbook_lm.py [--vocab 10000] [--hidden 650] [--batch 20] [--time 35] [--iters 4]

Prints the median seconds per training iteration of each and the speed-up.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import textbook_lm_script  # noqa: E402


def per_iteration_seconds(module, corpus, args):
    train = textbook_lm_script.load(module)["train"]
    kw = dict(vocab_size=args.vocab, wordvec_size=args.hidden, hidden_size=args.hidden,
              batch_size=args.batch, time_size=args.time)
    train(corpus, iters=1, **kw)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        train(corpus, iters=args.iters, **kw)
        times.append((time.perf_counter() - t0) / args.iters)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--hidden", type=int, default=650)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--time", type=int, default=35)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    corpus = np.random.default_rng(0).integers(0, args.vocab, 200_000).astype(np.int32)
    results = {}
    for module in ("textbook_numpy", "rnnfast.compat"):  # alternate so drift hits both
        results[module] = per_iteration_seconds(module, corpus, args)
        print(f"{module:16s} {results[module] * 1e3:9.1f} ms / iteration", flush=True)
    print(f"speed-up: {results['textbook_numpy'] / results['rnnfast.compat']:.2f}x "
          f"(V={args.vocab}, D=H={args.hidden}, N={args.batch}, T={args.time})")


if __name__ == "__main__":
    main()
