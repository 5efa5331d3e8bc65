"""Encoder-decoder (seq2seq) with teacher forcing, and the toy task that shows it: adding numbers given as text.

The encoder's final state (h, c) starts the decoder; in backward the decoder's gradient at its initial
state flows into the encoder's final state.  Decoding is greedy through the single-step kernels."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..layers import LAYER_CLASSES as _CELLS
from ..layers import Embedding, TimeAffine, TimeSoftmaxWithLoss
from .vocab import Vocab

ADDITION_SYMBOLS = "0123456789+_ "


class Seq2Seq:
    def __init__(self, vocab_size: int, embed_size: int = 16, hidden_size: int = 128, cell: str = "lstm",
                 seed: Optional[int] = 0, dtype="float32"):
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}; got {cell!r}")
        rng = np.random.default_rng(seed)
        dt = np.dtype(dtype)
        cls = _CELLS[cell]
        self.cell = cell
        self.enc_embed = Embedding((rng.standard_normal((vocab_size, embed_size)) * 0.1).astype(dt))
        self.encoder = cls.init(embed_size, hidden_size, rng=rng, dtype=dt)
        self.dec_embed = Embedding((rng.standard_normal((vocab_size, embed_size)) * 0.1).astype(dt))
        self.decoder = cls.init(embed_size, hidden_size, rng=rng, dtype=dt, stateful=True)
        self.head = TimeAffine.init(hidden_size, vocab_size, rng, dt)
        self.loss_layer = TimeSoftmaxWithLoss()
        parts = [self.enc_embed, self.encoder, self.dec_embed, self.decoder, self.head]
        self.params = [p for part in parts for p in part.params]
        self.grads = [g for part in parts for g in part.grads]

    def _encode(self, src, need_grad: bool = True):
        # the recurrent layers read the ids themselves (the kernels' token input)
        self.encoder.forward(self.enc_embed.check_ids(src), need_grad=need_grad, embedding=self.enc_embed.params[0])
        return self.encoder.h, self.encoder.c

    def forward(self, src, tgt_in, tgt_out) -> float:
        """Teacher forcing: the decoder reads ``tgt_in`` and predicts ``tgt_out`` (both ``(N, T)``)."""
        h, c = self._encode(src)
        self.decoder.set_state(h, c)
        hs = self.decoder.forward(self.dec_embed.check_ids(tgt_in), embedding=self.dec_embed.params[0])
        return self.loss_layer.forward(self.head.forward(hs), tgt_out)

    def backward(self):
        d = self.head.backward(self.loss_layer.backward())
        self.dec_embed.set_gradient(self.decoder.backward(d))
        zeros = np.zeros(self.encoder.h.shape[:1] + (self.enc_embed.ids.shape[1], self.encoder.hidden_size),
                         dtype=d.dtype)
        self.enc_embed.set_gradient(self.encoder.backward(zeros, self.decoder.dh, self.decoder.dc))

    def generate(self, src, start_id: int, length: int):
        """Greedy decoding of ``length`` tokens for each source sequence ``src (N, T)``."""
        h, c = self._encode(src, need_grad=False)
        decoder = self.decoder.stepper(self.decoder.state_of((h, c)))  # the weights laid out once
        W = self.dec_embed.params[0]
        ids = np.full(src.shape[0], start_id)
        out = []
        for _ in range(length):
            hid = decoder.step(W[ids])
            ids = np.argmax(self.head.forward(hid[:, None, :])[:, 0], axis=-1)
            out.append(ids)
        return np.stack(out, axis=1)


def addition_task(n: int, digits: int = 3, seed: Optional[int] = 0):
    """``n`` problems "a+b" -> "_sum" with a, b < 10**digits, as padded strings (the textbook's format):
    returns ``(vocab, src (n, 2*digits+1), tgt (n, digits+2))`` where tgt starts with the "_" start token."""
    rng = np.random.default_rng(seed)
    vocab = Vocab(list(ADDITION_SYMBOLS))
    a = rng.integers(0, 10**digits, n)
    b = rng.integers(0, 10**digits, n)
    src = [f"{x}+{y}".ljust(2 * digits + 1) for x, y in zip(a, b)]
    tgt = ["_" + str(x + y).ljust(digits + 1) for x, y in zip(a, b)]
    return vocab, np.stack([vocab.encode(s) for s in src]), np.stack([vocab.encode(t) for t in tgt])
