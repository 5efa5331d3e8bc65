"""Generation speed of ``RNNLM.generate`` (batch 1, a streaming stepper per layer) against the same tokens
through the layers' ``step`` (``*_step_forward`` per token and layer, which checks and lays out the weights at
every call), in alternating rounds in one process.

    python bench/generation.py [--tokens 200] [--rounds 5] [--threads 2]

Prints tokens/s of each path and their ratio for the main job's model (embedding 64, 2-layer LSTM 256) and
larger and variant models.  What it measured: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

MODELS = [  # (label, RNNLM keywords)
    ("LSTM 256 x 2 (the main job's)", dict(hidden_size=256, cell="lstm")),
    ("LSTM 1024 x 2", dict(hidden_size=1024, cell="lstm")),
    ("LSTM 1024 x 2, layer norm", dict(hidden_size=1024, cell="lstm", layer_norm=True)),
    ("LSTM 1024 x 2, projection 256", dict(hidden_size=1024, cell="lstm", proj_size=256)),
    ("GRU 1024 x 2, layer norm", dict(hidden_size=1024, cell="gru", layer_norm=True)),
]


def through_layer_steps(model, start, length):
    """What ``generate`` did before the steppers: greedy tokens through ``RecurrentStack.step``."""
    W, states, out = model.embed.params[0], None, []
    for i in start:
        h, states = model.rnn.step(W[[i]], states)
    for _ in range(length):
        out.append(int(np.argmax(model._logits(h)[0])))
        h, states = model.rnn.step(W[[out[-1]]], states)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    from rnnfast._core.threads import available_cores
    from rnnfast.models import RNNLM

    nt = args.threads or available_cores()
    print(f"greedy generation, batch 1, {args.tokens} tokens after 8, float32, {nt} threads; "
          f"median of {args.rounds} alternating rounds")
    for label, kw in MODELS:
        model = RNNLM(96, 64, num_layers=2, dropout=0.0, seed=0, num_threads=nt, **kw)
        model.eval()
        start = list(range(8))
        assert model.generate(start, 20, greedy=True) == through_layer_steps(model, start, 20)
        times = {"steppers": [], "layer steps": []}
        for _ in range(args.rounds):
            for name, run in [("steppers", lambda: model.generate(start, args.tokens, greedy=True)),
                              ("layer steps", lambda: through_layer_steps(model, start, args.tokens))]:
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
        rate = {k: (args.tokens + 8) / statistics.median(v) for k, v in times.items()}
        print(f"  {label:32s} steppers {rate['steppers']:8.0f} tok/s   layer steps {rate['layer steps']:8.0f} "
              f"tok/s   {rate['steppers'] / rate['layer steps']:5.2f}x")


if __name__ == "__main__":
    main()
