"""The ``rnnfast`` command (also ``python -m rnnfast``).

    rnnfast train                     # char-level LSTM on the built-in corpus (stdlib sources)
    rnnfast train --data FILE --cell gru --layers 1 --hidden 128 --epochs 5
    rnnfast sample CHECKPOINT --length 500 --temperature 0.8
    rnnfast eval CHECKPOINT --data FILE
    rnnfast gradflow --out gradflow.png
    rnnfast addition                  # seq2seq learns to add numbers given as text
    rnnfast bench --quick             # rnnfast vs NumPy reference, PyTorch, thinc; table, JSON, PNG
    rnnfast info
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from ..models.vocab import UNKNOWN_POLICIES

EXIT_ERROR = 2


class CLIError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise CLIError(f"data file not found: {path}") from None
    except UnicodeDecodeError:
        raise CLIError(f"data file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        raise CLIError(f"data file is empty: {path}")
    return text


def _corpus(args) -> str:
    if args.data:
        text = _read_text(args.data)
    else:
        from .corpus import default_corpus

        text = default_corpus()
    return text[: args.max_chars] if args.max_chars else text


def _positive(kind):
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}; got {s!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}; got {s!r}")
        return v
    return parse


def _positive_or_none(kind):
    """A positive ``kind``, or the word ``none`` (read as None: "skip this part")."""
    positive = _positive(kind)

    def parse(s):
        if s.strip().lower() == "none":
            return None
        try:
            return positive(s)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__} or 'none'; got {s!r}") from None
    return parse


def _unit_interval(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1); got {s!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1); got {s!r}")
    return v


def _add_unknown_options(parser, text_option: str) -> None:
    parser.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="error",
                        help=f"tokens of {text_option} outside the model's vocabulary: refuse the text (default), "
                             "skip them, or replace each with --replacement")
    parser.add_argument("--replacement", metavar="TOKEN",
                        help="the vocabulary token that --unknown replace puts in (default: a space for a "
                             "character model, <unk> for a word model, if the vocabulary has it)")


def _encode(vocab, text: str, args, what: str):
    """``vocab.encode`` with the --unknown policy; says on stderr how many tokens were skipped or replaced."""
    replacement = args.replacement
    if args.unknown == "replace" and replacement is None:
        replacement = " " if vocab.level == "char" else "<unk>"
        if replacement not in vocab.stoi:
            raise CLIError(f"--unknown replace: the vocabulary has no {replacement!r}; name a token of it with "
                           "--replacement")
    try:
        ids, missing = vocab.encode_counting(text, args.unknown, replacement)
    except ValueError as exc:
        hint = " (--unknown skip or --unknown replace accept such text)" if args.unknown == "error" else ""
        raise CLIError(f"{what}: {exc}{hint}") from None
    if missing:
        done = "skipped" if args.unknown == "skip" else f"replaced with {replacement!r}"
        print(f"rnnfast: {what}: {missing:,} token(s) not in the vocabulary {done}", file=sys.stderr)
    return ids


def _build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(prog="rnnfast", description="Fast RNN/LSTM/GRU kernels and language models.")
    p.add_argument("--version", action="version", version=f"rnnfast {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a language model (default: char-level LSTM on stdlib sources)")
    t.add_argument("--data", help="UTF-8 text file (default: the built-in corpus)")
    t.add_argument("--level", choices=["char", "word"], default="char")
    t.add_argument("--max-chars", type=_positive(int), help="use only the first N characters of the text")
    t.add_argument("--cell", choices=["lstm", "lstm-peephole", "lstm-layernorm", "gru", "gru-layernorm", "rnn"],
                   default="lstm",
                   help="lstm-peephole: the LSTM whose gates see the cell state; lstm-layernorm, gru-layernorm: the "
                        "layer-normalized LSTM, GRU (rnnfast.lstm_forward's peephole, layer_norm; gru_forward's "
                        "layer_norm)")
    t.add_argument("--layers", type=_positive(int), default=2)
    t.add_argument("--hidden", type=_positive(int), default=256)
    t.add_argument("--proj-size", type=_positive(int), default=None,
                   help="LSTM cells: project h to this many units (PyTorch's proj_size; smaller than --hidden)")
    t.add_argument("--zoneout", type=_unit_interval, nargs=2, metavar=("Z_C", "Z_H"),
                   help="--cell lstm: zoneout rates of the cell state and h (training masks; expectation when "
                        "evaluating)")
    t.add_argument("--embed", type=_positive(int), default=64)
    t.add_argument("--dropout", type=_unit_interval, default=0.1)
    t.add_argument("--tie", action="store_true", help="tie embedding and output weights (needs --embed == --hidden)")
    t.add_argument("--epochs", type=_positive(int), default=3)
    t.add_argument("--batch-size", type=_positive(int), default=32)
    t.add_argument("--seq-len", type=_positive(int), default=64)
    t.add_argument("--optimizer", choices=["adam", "sgd", "momentum", "adagrad", "rmsprop"], default="adam")
    t.add_argument("--lr", type=_positive(float), default=3e-3)
    t.add_argument("--clip", type=_positive(float), default=1.0, help="max global gradient norm")
    t.add_argument("--val-fraction", type=_unit_interval, default=0.05)
    t.add_argument("--max-minutes", type=_positive(float), help="stop after this long (end of the current batch)")
    t.add_argument("--threads", type=_positive(int), help="OpenMP threads (default: $RNNFAST_NUM_THREADS or all)")
    t.add_argument("--backend", choices=["cython", "numpy"], default="cython")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--checkpoint", default="rnnfast-lm.npz", help="where to save (default: %(default)s)")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    t.add_argument("--sample-length", type=int, default=300)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("--length", type=_positive(int), default=500)
    s.add_argument("--temperature", type=_positive(float), default=0.8)
    s.add_argument("--top-k", type=_positive(int))
    s.add_argument("--greedy", action="store_true")
    s.add_argument("--prime", default="\n", help="seed text (default: a newline)")
    s.add_argument("--seed", type=int)
    _add_unknown_options(s, "--prime")

    e = sub.add_parser("eval", help="perplexity of a checkpoint on a text file")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True)
    e.add_argument("--batch-size", type=_positive(int), default=16)
    e.add_argument("--seq-len", type=_positive(int), default=64)
    _add_unknown_options(e, "--data")

    g = sub.add_parser("gradflow", help="how the gradient vanishes back through time: RNN vs LSTM vs GRU")
    g.add_argument("--hidden", type=_positive(int), default=64)
    g.add_argument("--steps", type=_positive(int), default=150)
    g.add_argument("--batch", type=_positive(int), default=16)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default="gradflow.png", help="PNG to draw (default: %(default)s; needs matplotlib)")

    a = sub.add_parser("addition", help="seq2seq toy task: learn to add numbers given as text")
    a.add_argument("--digits", type=_positive(int), default=2)
    a.add_argument("--examples", type=_positive(int), default=20000)
    a.add_argument("--epochs", type=_positive(int), default=10)
    a.add_argument("--hidden", type=_positive(int), default=128)
    a.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    a.add_argument("--seed", type=int, default=0)

    b = sub.add_parser("bench", help="time rnnfast against its NumPy reference, PyTorch and thinc",
                       description="Each row: median ms, GFLOP/s and %% of the machine's GEMM peak for rnnfast, "
                                   "the speed-up over every other backend, and the thread-scaling efficiency; "
                                   "then batch-1 streaming latency per token.  Backends run side by side on the "
                                   "same inputs with every thread pool pinned to the row's thread count.")
    b.add_argument("--quick", action="store_true",
                   help="small grid (LSTM training step, 3 sizes, 1 and all threads, H=256 streaming): < 1 minute")
    b.add_argument("--cells", nargs="+", choices=["lstm", "gru", "rnn"], help="default: lstm")
    b.add_argument("--passes", nargs="+", choices=["train", "forward"], help="default: train (forward + backward)")
    b.add_argument("--sizes", nargs="+", metavar="N,T,D,H",
                   help="shapes, N,T,D,H or N,T,H (default: the core grid 1,100,64 16,35,128 32,35,256 "
                        "64,35,512 128,35,1024)")
    b.add_argument("--dtypes", nargs="+", choices=["float32", "float64"], help="default: float32")
    b.add_argument("--threads", nargs="+", type=_positive(int), help="default: 1 and all cores")
    b.add_argument("--peephole", action="store_true",
                   help="LSTM with peepholes (PyTorch: the same maths written from nn operations)")
    b.add_argument("--proj-size", type=_positive(int), metavar="P",
                   help="LSTM with a projection to P units (PyTorch: nn.LSTM(proj_size=P))")
    b.add_argument("--layer-norm", action="store_true",
                   help="layer-normalized LSTM or GRU (PyTorch: the same maths written from nn operations)")
    b.add_argument("--zoneout", action="store_true",
                   help="LSTM with zoneout, rates (z_c, z_h) = (0.5, 0.05) (PyTorch: the same maths written from nn "
                        "operations)")
    b.add_argument("--ragged", action="store_true",
                   help="variable-length sequences: lengths uniform in [T/4, T] (PyTorch packs them: PackedSequence)")
    b.add_argument("--backends", nargs="+", choices=["rnnfast", "rnnfast.torch", "reference", "torch", "thinc"],
                   help="default: all (missing libraries are reported as skipped)")
    b.add_argument("--stream-sizes", nargs="*", type=_positive_or_none(int), metavar="H",
                   help="hidden sizes of the streaming test (default: 256 1024; 'none' to skip)")
    b.add_argument("--blocks", type=_positive(int), help="alternating timing blocks per backend (default: 3)")
    b.add_argument("--block-seconds", type=_positive(float), help="seconds per timing block (default: 0.3)")
    b.add_argument("--json", default="rnnfast-bench.json", help="results file (default: %(default)s)")
    b.add_argument("--png", default="rnnfast-bench.png",
                   help="chart (default: %(default)s; needs matplotlib; 'none' to skip)")

    sub.add_parser("info", help="build configuration (OpenMP, threads, BLAS)")
    return p


def _load(path):
    from ..models import RNNLM, Vocab
    from ..train import load_checkpoint

    config, arrays = load_checkpoint(path)
    try:
        vocab = Vocab.from_config(config["vocab"])
        model = RNNLM(**config["model"])
        model.load_state_arrays(arrays)
    except (KeyError, TypeError) as exc:
        raise CLIError(f"{path} is not a language-model checkpoint ({exc})") from None
    return config, arrays, vocab, model


def _sample_text(model, vocab, prime, length, ids=None, **kw):
    ids = vocab.encode(prime) if ids is None else ids
    return prime + vocab.decode(model.generate(ids, length, **kw))


def _validation_tokens(n: int, args) -> int:
    """How many of the text's ``n`` tokens are held out: the --val-fraction, and at least one window of
    --seq-len + 1 tokens.  The rest must give every one of the --batch-size rows two tokens; the error
    names the option that asked for too much."""
    n_val = max(int(n * args.val_fraction), args.seq_len + 1)
    need = 2 * args.batch_size
    if n - n_val >= need:
        return n_val
    if n - max(int(n * args.val_fraction), 2) >= need:  # the validation window is what takes too much
        raise CLIError(f"--seq-len {args.seq_len} is too long for a text of {n:,} tokens: validation holds out "
                       f"seq_len + 1 = {args.seq_len + 1:,} tokens and training needs {need} (2 per row of "
                       f"--batch-size {args.batch_size}); use --seq-len at most {n - need - 1:,} or a longer text")
    raise CLIError(f"the text has {n:,} tokens: too few for --batch-size {args.batch_size}; "
                   f"use a longer text or a smaller --batch-size")


def cmd_train(args) -> int:
    from .. import backend as backend_mod
    from ..models import RNNLM, Vocab
    from ..train import OPTIMIZERS, save_checkpoint
    from ..train.trainer import LMTrainer

    if args.threads:
        os.environ["RNNFAST_NUM_THREADS"] = str(args.threads)
    text = _corpus(args)
    source = args.data or "built-in corpus (Python standard library sources)"
    if args.proj_size and not args.resume:
        if not args.cell.startswith("lstm"):
            raise CLIError(f"--proj-size needs an LSTM cell; got --cell {args.cell}")
        if args.cell == "lstm-layernorm":
            raise CLIError("--proj-size: not with --cell lstm-layernorm (one LSTM variant at a time)")
        if args.proj_size >= args.hidden:
            raise CLIError(f"--proj-size must be smaller than --hidden; got {args.proj_size} and {args.hidden}")
    if args.zoneout and not args.resume and args.cell != "lstm":
        raise CLIError(f"--zoneout needs --cell lstm (one LSTM variant at a time); got --cell {args.cell}")
    if args.zoneout and not args.resume and args.proj_size:
        raise CLIError("--zoneout: not with --proj-size (one LSTM variant at a time)")
    out_size = args.proj_size or args.hidden
    if args.tie and not args.resume and args.embed != out_size:
        raise CLIError(f"--tie needs --embed equal to {'--proj-size' if args.proj_size else '--hidden'}; got --embed "
                       f"{args.embed} and {out_size}")
    if args.resume:
        config, arrays, vocab, model = _load(args.checkpoint)
    else:
        vocab = Vocab.from_text(text, args.level)
        cell, _, variant = args.cell.partition("-")
        model = RNNLM(len(vocab), args.embed, args.hidden, args.layers, cell, dropout=args.dropout,
                      tie_weights=args.tie, seed=args.seed, dtype=args.dtype, peephole=variant == "peephole",
                      layer_norm=variant == "layernorm", proj_size=args.proj_size or 0, zoneout=args.zoneout)
    try:
        ids = vocab.encode(text)
    except ValueError as exc:  # --resume with a text the checkpoint's vocabulary lacks
        raise CLIError(f"{source}: {exc}") from None
    n_val = _validation_tokens(len(ids), args)
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    optimizer = OPTIMIZERS[args.optimizer](lr=args.lr)
    parallel = _data_parallel(args)
    trainer = LMTrainer(model, optimizer, clip_norm=args.clip, progress=not args.quiet, parallel=parallel)
    say = print if parallel is None or parallel.is_main else (lambda *a, **k: None)
    if args.resume:
        optimizer.load_state_dict({k[4:]: v for k, v in arrays.items() if k.startswith("opt.")})
        st = config["train"]
        trainer.state.epoch, trainer.state.best_val_ppl = st["epoch"], st["best_val_ppl"]
        trainer.state.history = st["history"]

    def save(tr):
        cfg = {"model": model.config, "vocab": vocab.to_config(), "optimizer": args.optimizer,
               "train": {"epoch": tr.state.epoch, "best_val_ppl": tr.state.best_val_ppl,
                         "history": tr.state.history}}
        arrays = dict(model.state_arrays())
        arrays.update({"opt." + k: v for k, v in optimizer.state_dict().items()})
        save_checkpoint(args.checkpoint, cfg, arrays)

    if parallel is None or parallel.is_main:
        trainer.save = save
    say(f"data: {source}: {len(ids):,} tokens ({len(vocab)} symbols), train {len(train_ids):,} / val {len(val_ids):,}")
    cfg = model.config
    kind = cfg["cell"].upper() + (" (peephole)" if cfg.get("peephole") else "") + (
        " (layer norm)" if cfg.get("layer_norm") else "") + (
        " (zoneout {:g}, {:g})".format(*cfg["zoneout"]) if cfg.get("zoneout") else "") + (
        f" (projection to {cfg['proj_size']})" if cfg.get("proj_size") else "")
    say(f"model: {cfg['num_layers']}-layer {kind}, hidden {cfg['hidden_size']}, embed "
        f"{cfg['embed_size']}, {sum(p.size for p in model.params):,} parameters, {cfg['dtype']}; backend "
        f"{args.backend}; batch {args.batch_size} x {args.seq_len} steps; {args.optimizer} lr {optimizer.lr:g}")
    if parallel is not None:
        say(f"data parallel: {parallel.world_size} processes (torch.distributed, gloo), "
            f"{args.batch_size // parallel.world_size} rows of each batch apiece")
    t0 = time.perf_counter()
    try:
        with backend_mod.use(args.backend):
            prime = "\n"
            trainer.fit(train_ids, val_ids, args.epochs, args.batch_size, args.seq_len,
                        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
            say(f"trained {trainer.state.epoch} epoch(s) in {time.perf_counter() - t0:.1f} s; best val perplexity "
                f"{trainer.state.best_val_ppl:.6f}; checkpoint: {args.checkpoint}")
            if args.sample_length > 0 and (parallel is None or parallel.is_main):
                print("--- sample (temperature 0.8) ---")
                print(_sample_text(model, vocab, prime, args.sample_length, temperature=0.8, seed=args.seed))
    finally:
        if parallel is not None:
            parallel.close()
    return 0


def _data_parallel(args):
    """Across processes when torchrun started several (``rnnfast.train.distributed``), else None."""
    from ..train.distributed import DataParallel, launched_by_torchrun

    if not launched_by_torchrun():
        return None
    try:
        parallel = DataParallel()
    except RuntimeError as exc:
        raise CLIError(str(exc)) from None
    if args.batch_size % parallel.world_size:
        parallel.close()
        raise CLIError(f"--batch-size {args.batch_size} does not divide among {parallel.world_size} processes; "
                       f"use a multiple of {parallel.world_size}")
    return parallel


def cmd_sample(args) -> int:
    _, _, vocab, model = _load(args.checkpoint)
    ids = _encode(vocab, args.prime, args, "--prime")
    if len(ids) == 0:
        raise CLIError("--prime has no token of the vocabulary left")
    try:
        text = _sample_text(model, vocab, args.prime, args.length, ids=ids, temperature=args.temperature,
                            top_k=args.top_k, greedy=args.greedy, seed=args.seed)
    except ValueError as exc:
        raise CLIError(f"--prime: {exc}") from None
    print(text)
    return 0


def cmd_eval(args) -> int:
    _, _, vocab, model = _load(args.checkpoint)
    text = _read_text(args.data)
    ids = _encode(vocab, text, args, args.data)
    if len(ids) < 2:
        raise CLIError(f"{args.data} has fewer than two tokens")
    ppl = model.perplexity(ids, args.batch_size, args.seq_len)
    print(f"perplexity {ppl:.4f} ({math.log(ppl):.4f} nats/token) on {len(ids):,} tokens of {args.data}")
    return 0


def cmd_gradflow(args) -> int:
    from .gradflow import CELLS, gradient_norms, plot

    norms = {cell: gradient_norms(cell, args.hidden, args.steps, args.batch, args.seed) for cell in CELLS}
    marks = sorted({0, 10, 25, 50, 100, args.steps - 1} & set(range(args.steps)))
    print("mean ||dL/dh_t|| at k steps back (H=%d, %d steps, batch %d)" % (args.hidden, args.steps, args.batch))
    print("cell  " + "".join(f"{'k=' + str(k):>11}" for k in marks))
    for cell, n in norms.items():
        print(f"{cell:5} " + "".join(f"{n[k]:11.3e}" for k in marks))
    try:
        plot(norms, args.out, args.hidden)
    except ImportError:
        raise CLIError("drawing the PNG needs matplotlib: pip install 'rnnfast[plot]'") from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"plot: {args.out}")
    return 0


def cmd_addition(args) -> int:
    from ..models import Seq2Seq, addition_task
    from ..train import Adam, clip_grads_norm

    vocab, src, tgt = addition_task(args.examples, args.digits, seed=args.seed)
    _, val_src, val_tgt = addition_task(1000, args.digits, seed=args.seed + 1)
    model = Seq2Seq(len(vocab), 16, args.hidden, cell=args.cell, seed=args.seed)
    opt = Adam(lr=5e-3)
    rng = np.random.default_rng(args.seed)
    start = vocab.stoi["_"]
    print(f"seq2seq {args.cell.upper()} H={args.hidden}: {args.examples} problems like "
          f"{vocab.decode(src[0]).strip()!r} -> {vocab.decode(tgt[0, 1:]).strip()!r}")
    for epoch in range(1, args.epochs + 1):
        t0, losses = time.perf_counter(), []
        for i in range(0, len(src), 128):
            b = rng.permutation(len(src))[:128] if i == 0 else slice(i, i + 128)
            losses.append(model.forward(src[b], tgt[b, :-1], tgt[b, 1:]))
            model.backward()
            clip_grads_norm(model.grads, 5.0)
            opt.update(model.params, model.grads)
        pred = model.generate(val_src, start, val_tgt.shape[1] - 1)
        acc = (pred == val_tgt[:, 1:]).all(axis=1).mean()
        print(f"epoch {epoch}: loss {np.mean(losses):.3f}  validation exact-answer accuracy {acc:.1%}  "
              f"{time.perf_counter() - t0:.1f} s")
    for i in range(5):
        q, a = vocab.decode(val_src[i]).strip(), vocab.decode(pred[i]).strip()
        print(f"  {q} = {a} {'ok' if (pred[i] == val_tgt[i, 1:]).all() else 'x'}")
    return 0


def cmd_bench(args) -> int:
    from .._core.threads import available_cores
    from ..benchmarks import report, run
    from ..benchmarks.cases import CORE_SIZES, QUICK_SIZES, Case, parse_size

    try:
        sizes = [parse_size(s) for s in args.sizes] if args.sizes else (QUICK_SIZES if args.quick else CORE_SIZES)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    threads = args.threads or sorted({1, available_cores()})
    if (args.peephole or args.proj_size or args.zoneout) and set(args.cells or ["lstm"]) != {"lstm"}:
        raise CLIError("--peephole, --proj-size and --zoneout are LSTM variants: use them with --cells lstm")
    if args.layer_norm and not set(args.cells or ["lstm"]) <= {"lstm", "gru"}:
        raise CLIError("--layer-norm is an LSTM and GRU variant: use it with --cells lstm gru")
    try:
        cases = [Case(cell, pass_, N, T, D, H, dtype, nt, args.ragged, args.peephole, args.proj_size or 0,
                      args.layer_norm, args.zoneout)
                 for cell in args.cells or ["lstm"] for pass_ in args.passes or ["train"]
                 for (N, T, D, H) in sizes for dtype in args.dtypes or ["float32"] for nt in threads]
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.stream_sizes is None:
        stream = [256] if args.quick else [256, 1024]
    elif None in args.stream_sizes:  # 'none' skips the streaming test
        if len(args.stream_sizes) > 1:
            raise CLIError("--stream-sizes: 'none' cannot be given with sizes")
        stream = []
    else:
        stream = args.stream_sizes
    png = None if args.png.lower() == "none" else args.png
    for path in [args.json] + ([png] if png else []):
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise CLIError(f"directory does not exist for output file: {path}")
    if png:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CLIError("--png needs matplotlib (pip install rnnfast[plot]), or pass --png none") from None
    result = run(cases, args.backends or ["rnnfast", "rnnfast.torch", "reference", "torch", "thinc"], stream_sizes=stream,
                 blocks=args.blocks or (2 if args.quick else 3),
                 block_seconds=args.block_seconds or (0.15 if args.quick else 0.3),
                 progress=lambda what: print(f"  timing {what}", file=sys.stderr, flush=True))
    print(report.format_table(result))
    report.write_json(result, args.json)
    print(f"wrote {args.json}")
    if png:
        report.plot_png(result, png)
        print(f"wrote {png}")
    return 0


def cmd_info(args) -> int:
    from .. import show_config

    show_config()
    return 0


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    from ..train import CheckpointError

    try:
        commands = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "gradflow": cmd_gradflow,
                    "addition": cmd_addition, "bench": cmd_bench, "info": cmd_info}
        return commands[args.command](args)
    except (CLIError, CheckpointError) as exc:
        print(f"rnnfast: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rnnfast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
