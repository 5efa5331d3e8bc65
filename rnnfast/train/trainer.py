"""Language-model training with truncated BPTT: progress bar, evaluation perplexity, learning-rate decay
on plateau, checkpoints (also on Ctrl-C) and resume."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from threadpoolctl import threadpool_limits

from .._core.threads import _check_count
from .batching import n_windows, tbptt_windows
from .clip import clip_grads_norm


@dataclass
class TrainState:
    """What a checkpoint needs to continue training where it stopped."""

    epoch: int = 0  # completed epochs
    best_val_ppl: float = math.inf
    history: list = field(default_factory=list)  # per epoch: dict(epoch, train_ppl, val_ppl, lr, seconds, tokens_per_s)


class LMTrainer:
    """Trains a language model by truncated BPTT (``fit``).

    NumPy's own BLAS is limited to ``blas_threads`` (default 1) while it trains:
    the model's NumPy products (output projection, softmax) are small next to
    the recurrent kernels, and OpenBLAS's worker threads keep spinning after
    each of them, taking the cores from the kernels' OpenMP threads (measured:
    the default ``rnnfast train`` ran 1.5-1.7x faster pinned).  ``None`` leaves
    BLAS alone.

    ``parallel`` (a ``rnnfast.train.distributed.DataParallel``): one of several processes, each training
    on its share of every batch's rows, the gradients averaged over all before clipping and the update;
    only the first process shows the bar, logs and saves.
    """

    def __init__(self, model, optimizer, clip_norm: Optional[float] = 1.0, lr_decay: float = 4.0,
                 save: Optional[Callable[["LMTrainer"], None]] = None, progress: bool = True,
                 log: Callable[[str], None] = print, blas_threads: Optional[int] = 1, parallel=None):
        self.blas_threads = None if blas_threads is None else _check_count(blas_threads, "blas_threads")
        self.model, self.optimizer = model, optimizer
        self.clip_norm, self.lr_decay = clip_norm, lr_decay
        self.parallel = parallel
        main = parallel is None or parallel.is_main
        self.save = save if main else None
        self.progress = progress and main
        self.log = log if main else (lambda message: None)
        self.state = TrainState()

    def _bar(self, total, desc):
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)

    def train_epoch(self, tokens, batch_size, seq_len, deadline=None) -> tuple:
        model = self.model
        model.train()
        model.reset_state()
        bar = self._bar(n_windows(len(tokens), batch_size, seq_len), f"epoch {self.state.epoch + 1}")
        total_loss, total_tokens, t0 = 0.0, 0, time.perf_counter()
        par = self.parallel
        rows = par.rows(batch_size) if par is not None else slice(None)
        try:
            for x, y in tbptt_windows(tokens, batch_size, seq_len):
                x, y = x[rows], y[rows]
                loss = model.forward(x, y)
                model.backward()
                if par is not None:
                    par.average_gradients(model.grads)
                if self.clip_norm is not None:
                    clip_grads_norm(model.grads, self.clip_norm)
                self.optimizer.update(model.params, model.grads)
                total_loss += loss * y.size
                total_tokens += y.size
                elapsed = time.perf_counter() - t0
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(total_loss / total_tokens):.2f}",
                                    tok_s=f"{total_tokens / max(elapsed, 1e-9):,.0f}")
                if deadline is not None and self._all_past(deadline):
                    break
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        if par is not None:  # the epoch's loss over every process's rows
            total_loss, total_tokens = par.sum(total_loss, total_tokens)
        return math.exp(total_loss / max(total_tokens, 1)), int(total_tokens), elapsed

    def _all_past(self, deadline: float) -> bool:
        """The deadline has passed -- for every process, so that all stop at the same batch."""
        past = time.perf_counter() > deadline
        return past if self.parallel is None else self.parallel.sum(float(past))[0] > 0

    def fit(self, train_tokens, val_tokens, epochs: int, batch_size: int = 32, seq_len: int = 64,
            max_seconds: Optional[float] = None, sample: Optional[Callable[[], str]] = None):
        """Train until ``epochs`` epochs are complete (counting those of a resumed run) or ``max_seconds`` pass.
        Ctrl-C saves a checkpoint (if ``save`` was given) and re-raises."""
        if self.blas_threads is None:
            return self._fit(train_tokens, val_tokens, epochs, batch_size, seq_len, max_seconds, sample)
        with threadpool_limits(self.blas_threads, user_api="blas"):
            return self._fit(train_tokens, val_tokens, epochs, batch_size, seq_len, max_seconds, sample)

    def _fit(self, train_tokens, val_tokens, epochs, batch_size, seq_len, max_seconds, sample):
        deadline = None if max_seconds is None else time.perf_counter() + max_seconds
        try:
            while self.state.epoch < epochs:
                train_ppl, n_tok, secs = self.train_epoch(train_tokens, batch_size, seq_len, deadline)
                val_ppl = self.model.perplexity(val_tokens, batch_size, seq_len)
                self.state.epoch += 1
                row = dict(epoch=self.state.epoch, train_ppl=train_ppl, val_ppl=val_ppl, lr=self.optimizer.lr,
                           seconds=secs, tokens_per_s=n_tok / max(secs, 1e-9))
                self.state.history.append(row)
                self.log(f"epoch {row['epoch']}: train ppl {train_ppl:.3f}  val ppl {val_ppl:.3f}  "
                         f"lr {row['lr']:.2e}  {row['tokens_per_s']:,.0f} tokens/s  {secs:.1f} s")
                if val_ppl < self.state.best_val_ppl:
                    self.state.best_val_ppl = val_ppl
                else:  # plateau: smaller steps
                    self.optimizer.lr /= self.lr_decay
                if self.save is not None:
                    self.save(self)
                if sample is not None:
                    self.log("sample: " + sample())
                if deadline is not None and self._all_past(deadline):
                    self.log(f"time limit reached after {self.state.epoch} epoch(s)")
                    break
        except KeyboardInterrupt:
            if self.save is not None:
                self.save(self)
                self.log("interrupted: checkpoint saved")
            raise
        return self.state.history
