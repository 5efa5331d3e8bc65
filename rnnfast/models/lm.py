"""Recurrent language model: embedding -> dropout -> recurrent stack -> dropout -> affine (optionally tied)
-> softmax cross-entropy.  Trained with truncated BPTT (stateful); generates through the step kernels.  Without
dropout on the embedding, the first recurrent layer reads the ids itself (the kernels' token input)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..layers import (Embedding, LockedDropout, RecurrentStack, TiedAffine, TimeAffine, TimeDropout,
                      TimeSoftmaxWithLoss)
from ..train.batching import tbptt_windows


class RNNLM:
    def __init__(self, vocab_size: int, embed_size: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 cell: str = "lstm", dropout: float = 0.2, embed_dropout: float = 0.0, tie_weights: bool = False,
                 seed: Optional[int] = 0, dtype="float32", backend: Optional[str] = None, num_threads=None,
                 peephole: bool = False, proj_size: int = 0, layer_norm: bool = False, zoneout=None):
        out_size = proj_size or hidden_size  # what the output layer reads
        if tie_weights and embed_size != out_size:
            raise ValueError(f"tie_weights needs embed_size == {'proj_size' if proj_size else 'hidden_size'}; got "
                             f"{embed_size} and {out_size}")
        self.config = dict(vocab_size=vocab_size, embed_size=embed_size, hidden_size=hidden_size,
                           num_layers=num_layers, cell=cell, dropout=dropout, embed_dropout=embed_dropout,
                           tie_weights=tie_weights, dtype=str(np.dtype(dtype)))
        variants = {}  # in the config only when set: older checkpoints' configs stay valid
        if peephole:
            variants["peephole"] = True
        if proj_size:
            variants["proj_size"] = proj_size
        if layer_norm:
            variants["layer_norm"] = True
        if zoneout is not None:
            variants["zoneout"] = [float(z) for z in zoneout]
        for name in variants:
            if cell != "lstm" and not (name == "layer_norm" and cell == "gru"):
                raise ValueError(f"{name} needs cell='lstm'{' or gru' if name == 'layer_norm' else ''}; got "
                                 f"cell={cell!r}")
        self.config.update(variants)
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        self.embed = Embedding((rng.standard_normal((vocab_size, embed_size)) * 0.1).astype(dtype))
        self.embed_drop = LockedDropout(embed_dropout, rng=rng)
        self.rnn = RecurrentStack(cell, embed_size, hidden_size, num_layers, dropout=dropout, stateful=True,
                                  rng=rng, dtype=dtype, backend=backend, num_threads=num_threads,
                                  **variants)
        self.out_drop = TimeDropout(dropout, rng=rng)
        if tie_weights:
            self.affine = TiedAffine(self.embed, np.zeros(vocab_size, dtype))
        else:
            self.affine = TimeAffine.init(out_size, vocab_size, rng, dtype, num_threads)
        self.loss_layer = TimeSoftmaxWithLoss()
        self._token_input = False  # the last forward's first layer read the ids (``scores``)
        self.rng = rng
        parts = [self.embed, self.rnn, self.affine]
        self.params = [p for part in parts for p in part.params]
        self.grads = [g for part in parts for g in part.grads]

    # --- training -----------------------------------------------------------------
    def train(self, mode: bool = True):
        for d in (self.embed_drop, self.out_drop):
            d.training = mode
        self.rnn.train(mode)

    def eval(self):
        self.train(False)

    def reset_state(self):
        self.rnn.reset_state()

    def scores(self, ids, need_grad: bool = True):
        # Without dropout on the embedding, the first layer reads the ids itself: its input projection is
        # computed once per token (the kernels' token input), not once per position.
        self._token_input = self.embed_drop.p == 0.0 or not self.embed_drop.training
        if self._token_input:
            h = self.rnn.forward(self.embed.check_ids(ids), need_grad=need_grad, embedding=self.embed.params[0])
        else:
            h = self.rnn.forward(self.embed_drop.forward(self.embed.forward(ids)), need_grad=need_grad)
        return self.affine.forward(self.out_drop.forward(h))

    def forward(self, ids, targets) -> float:
        """Mean cross-entropy of ``targets (N, T)`` given ``ids (N, T)``; the state carries over from the last call."""
        return self.loss_layer.forward(self.scores(ids), targets)

    def backward(self):
        d = self.affine.backward(self.loss_layer.backward())
        d = self.rnn.backward(self.out_drop.backward(d))
        if self._token_input:
            self.embed.set_gradient(d)
        else:
            self.embed.backward(self.embed_drop.backward(d))
        if isinstance(self.affine, TiedAffine):
            self.affine.accumulate_into_embedding()

    def perplexity(self, tokens, batch_size: int = 16, seq_len: int = 64) -> float:
        """exp(mean cross-entropy) over a token stream, state carried across windows, dropout off."""
        was_training = self.embed_drop.training
        self.eval()
        self.reset_state()
        total, count = 0.0, 0
        batch_size = max(1, min(batch_size, (len(tokens) - 1)))
        for x, y in tbptt_windows(tokens, batch_size, seq_len):
            total += self.loss_layer.forward(self.scores(x, need_grad=False), y) * y.size
            count += y.size
        self.reset_state()
        self.train(was_training)
        return float(np.exp(total / max(count, 1)))

    # --- generation ----------------------------------------------------------------
    def _logits(self, h):
        return self.affine.forward(h[:, None, :])[:, 0]

    def generate(self, start_ids, length: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 greedy: bool = False, seed: Optional[int] = None):
        """Continue ``start_ids`` by ``length`` tokens; the state is carried token to token by a streaming
        stepper per layer (``RecurrentStack.steppers``: the weights laid out once, nothing re-run).  Returns
        the generated ids (without the seed)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        start_ids = np.asarray(start_ids, dtype=np.int64).reshape(-1)
        if start_ids.size == 0:
            raise ValueError("start_ids must hold at least one token")
        rng = np.random.default_rng(seed)
        was_training = self.embed_drop.training
        self.eval()
        W = self.embed.params[0]
        steppers = self.rnn.steppers(batch_size=1)

        def advance(token):
            x = W[[token]]
            for s in steppers:
                x = s.step(x)
            return x
        for i in start_ids:
            h = advance(i)
        out = []
        for _ in range(length):
            logits = self._logits(h)[0].astype(np.float64)
            if greedy:
                nxt = int(np.argmax(logits))
            else:
                logits = logits / temperature
                if top_k is not None and 0 < top_k < logits.size:
                    cut = np.partition(logits, -top_k)[-top_k]
                    logits = np.where(logits < cut, -np.inf, logits)
                p = np.exp(logits - logits.max())
                nxt = int(rng.choice(p.size, p=p / p.sum()))
            out.append(nxt)
            h = advance(nxt)
        self.train(was_training)
        return out

    # --- checkpoints ---------------------------------------------------------------
    def state_arrays(self) -> dict:
        return {f"param.{i}": p for i, p in enumerate(self.params)}

    def load_state_arrays(self, arrays: dict):
        for i, p in enumerate(self.params):
            a = arrays.get(f"param.{i}")
            if a is None or a.shape != p.shape:
                got = None if a is None else a.shape
                raise ValueError(f"checkpoint parameter {i} has shape {got}; the model expects {p.shape}")
            p[...] = a
