"""Run the scripts of "Deep Learning from Scratch 2" (chapters 5-8) twice: as published, and with each
``from common... import X`` line replaced by ``from rnnfast.compat import X`` (nothing else changed); compare
the figures they print.

    python bench/try_textbook_scripts.py BOOK_CHECKOUT WORKDIR [--scripts ch05/train.py ...] [--timeout 900]

BOOK_CHECKOUT is a clone of https://github.com/oreilly-japan/deep-learning-from-scratch-2 (this script copies it
into WORKDIR/orig and WORKDIR/port; the project holds none of its code).  PTB cannot be downloaded here, so both
copies get the same synthetic corpus in the book's file format (``dataset/ptb.*.txt``: 10,000 words with
``<eos>``, the vocabulary size the book's models default to); the addition and date datasets ship with the book.
Each script runs in its own folder with NumPy's global seed set to 1 first, as ``python -c`` around
``runpy.run_path``, the two copies side by side, with a timeout (a cut run still compares what it printed).
For each it prints how far the printed losses, perplexities and accuracies agree, and how far the original
agrees with itself when its BLAS runs on one thread instead of two (``--self-check``): float32 training is
chaotic, and that is the yardstick for "matches within float32 rounding".  Use NumPy < 2.4 for the book's
generation scripts: they call ``int()`` on one-element arrays, an error since NumPy 2.4 (in both copies).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

import numpy as np

# In this order: the generation scripts read the book's trained files before training replaces them, eval.py
# and generate_better_text.py read what train_rnnlm.py and train_better_rnnlm.py saved.
SCRIPTS = ["ch07/generate_text.py", "ch08/visualize_attention.py", "ch05/train.py", "ch05/train_custom_loop.py",
           "ch06/train_rnnlm.py", "ch06/eval.py", "ch07/train_seq2seq.py", "ch08/train.py",
           "ch06/train_better_rnnlm.py", "ch07/generate_better_text.py"]
COMMON_IMPORT = re.compile(r"^(\s*)from common(?:\.\w+)? import (.*)$")
FIGURE = re.compile(r"(perplexity|loss|val acc|valid perplexity:|test perplexity:)\s*([0-9]+\.?[0-9]*|nan|inf)")


def make_copies(book: str, work: str) -> None:
    for name in ("orig", "port"):
        shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        shutil.copytree(book, os.path.join(work, name), ignore=shutil.ignore_patterns(".git"))
    port = os.path.join(work, "port")
    for root, _, files in os.walk(port):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                lines = open(path, encoding="utf-8").read().split("\n")
                new = [COMMON_IMPORT.sub(r"\1from rnnfast.compat import \2", line) for line in lines]
                if new != lines:
                    open(path, "w", encoding="utf-8").write("\n".join(new))
    shutil.rmtree(os.path.join(port, "common"))  # nothing of the book's own package is left to fall back on
    write_synthetic_ptb(work)


def write_synthetic_ptb(work: str, train_tokens: int = 30000, other_tokens: int = 5000) -> None:
    """A Zipfian Markov chain over 9,999 words (+ ``<eos>``); the words the generation scripts name come first."""
    rng = np.random.default_rng(0)
    special = ["the", "N", "<unk>", "$", "you", "meaning", "of", "life", "is", "a", "to", "and"]
    V = 9999
    words = special + [f"w{i}" for i in range(V - len(special))]
    zipf = 1 / np.arange(1, V + 1) ** 1.1
    zipf /= zipf.sum()
    successors = rng.integers(0, V, size=(V, 3))

    def text(n):
        out, line, prev = [], [], 0
        for _ in range(n):
            prev = successors[prev, rng.integers(0, 3)] if rng.random() < 0.6 else rng.choice(V, p=zipf)
            line.append(words[prev])
            if rng.random() < 0.06:
                out.append(" " + " ".join(line) + " ")
                line = []
        return "\n".join(out) + "\n"

    files = {"train": text(train_tokens) + " " + " ".join(words) + " \n",  # every word in the vocabulary
             "valid": text(other_tokens), "test": text(other_tokens)}
    for name in ("orig", "port"):
        for split, content in files.items():
            with open(os.path.join(work, name, "dataset", f"ptb.{split}.txt"), "w") as f:
                f.write(content)


def run(work: str, tree: str, script: str, timeout: int, log: str, env_extra=None) -> subprocess.Popen:
    folder, name = os.path.split(script)
    cwd = os.path.join(work, tree, folder)
    env = dict(os.environ, MPLBACKEND="Agg", **(env_extra or {}))
    # ch08 imports ch07's modules, which import their neighbours by bare name: ch07 on the path for both copies
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.join(work, tree, "ch07"), env.get("PYTHONPATH")] if p)
    code = f"import numpy as np, runpy, sys; np.random.seed(1); sys.argv = [{name!r}]; " \
           f"runpy.run_path({name!r}, run_name='__main__')"
    return subprocess.Popen(["timeout", str(timeout), sys.executable, "-c", code], cwd=cwd, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def figures(path: str) -> dict:
    out = defaultdict(list)
    for line in open(path, errors="replace"):
        for m in FIGURE.finditer(line):
            out[m.group(1)].append(float(m.group(2)))
    return out


def compare(a: str, b: str) -> list:
    rows, fa, fb = [], figures(a), figures(b)
    for kind, x in fa.items():
        y = fb.get(kind, [])
        n = min(len(x), len(y))
        if not n:
            continue
        rel = sorted(abs(p - q) / max(abs(p), 1e-12) for p, q in zip(x, y))
        same = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), n)
        rows.append(f"{kind}: {n} compared, the first {same} identical, median rel. diff {rel[n // 2]:.1e}, "
                    f"max {rel[-1]:.1e}, last {x[n - 1]} vs {y[n - 1]}")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("book")
    ap.add_argument("work")
    ap.add_argument("--scripts", nargs="+", default=SCRIPTS)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--self-check", action="store_true", help="also the original with a one-thread BLAS")
    ap.add_argument("--keep", action="store_true", help="reuse WORKDIR's copies (trained files included)")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    if not args.keep:
        make_copies(args.book, args.work)
    for script in args.scripts:
        tag = script.replace("/", "_")[:-3]
        logs = {tree: os.path.join(args.work, f"{tree}_{tag}.log") for tree in ("orig", "port")}
        procs = {tree: run(args.work, tree, script, args.timeout, log) for tree, log in logs.items()}
        codes = {tree: p.wait() for tree, p in procs.items()}
        print(f"{script}: exit status original {codes['orig']}, port {codes['port']} (124: cut at the timeout)")
        if open(logs["orig"], errors="replace").read() == open(logs["port"], errors="replace").read():
            print("  identical output")
        for row in compare(logs["orig"], logs["port"]):
            print("  port vs original:", row)
        if args.self_check:
            log1 = os.path.join(args.work, f"orig1_{tag}.log")
            run(args.work, "orig", script, args.timeout, log1, {"OPENBLAS_NUM_THREADS": "1"}).wait()
            for row in compare(logs["orig"], log1):
                print("  original, 1 vs 2 BLAS threads:", row)


if __name__ == "__main__":
    main()
