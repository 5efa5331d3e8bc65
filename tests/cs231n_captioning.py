"""A transcription of the solved cs231n (2022) ``CaptioningRNN`` (``cs231n/classifiers/rnn.py``), written
against a module of layer functions: the same model runs on ``rnnfast.compat.cs231n`` or on the plain-NumPy
functions of ``cs231n_numpy``.  As the assignment's file, it takes everything from ``from ..rnn_layers
import *``: the recurrent functions, the word embedding, the temporal affine and softmax loss, and
``affine_forward`` (used by ``sample``)."""
import numpy as np


class CaptioningRNN:
    def __init__(self, layers, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128, cell_type="rnn",
                 dtype=np.float32):
        if cell_type not in {"rnn", "lstm"}:
            raise ValueError('Invalid cell_type "%s"' % cell_type)
        self.L = layers
        self.cell_type = cell_type
        self.dtype = dtype
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self.params = {}
        vocab_size = len(word_to_idx)
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>", None)
        self._end = word_to_idx.get("<END>", None)
        gates = {"lstm": 4, "rnn": 1}[cell_type]
        self.params["W_embed"] = np.random.randn(vocab_size, wordvec_dim) / 100
        self.params["W_proj"] = np.random.randn(input_dim, hidden_dim) / np.sqrt(input_dim)
        self.params["b_proj"] = np.zeros(hidden_dim)
        self.params["Wx"] = np.random.randn(wordvec_dim, gates * hidden_dim) / np.sqrt(wordvec_dim)
        self.params["Wh"] = np.random.randn(hidden_dim, gates * hidden_dim) / np.sqrt(hidden_dim)
        self.params["b"] = np.zeros(gates * hidden_dim)
        self.params["W_vocab"] = np.random.randn(hidden_dim, vocab_size) / np.sqrt(hidden_dim)
        self.params["b_vocab"] = np.zeros(vocab_size)
        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    def loss(self, features, captions):
        L, p = self.L, self.params
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        h0 = features @ p["W_proj"] + p["b_proj"]
        x, cache_embed = L.word_embedding_forward(captions_in, p["W_embed"])
        forward = L.rnn_forward if self.cell_type == "rnn" else L.lstm_forward
        h, cache_rnn = forward(x, h0, p["Wx"], p["Wh"], p["b"])
        scores, cache_scores = L.temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, dscores = L.temporal_softmax_loss(scores, captions_out, mask)
        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = L.temporal_affine_backward(dscores, cache_scores)
        backward = L.rnn_backward if self.cell_type == "rnn" else L.lstm_backward
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = backward(dh, cache_rnn)
        grads["W_embed"] = L.word_embedding_backward(dx, cache_embed)
        grads["W_proj"] = features.T @ dh0
        grads["b_proj"] = dh0.sum(axis=0)
        return loss, grads

    def sample(self, features, max_length=30):
        L, p = self.L, self.params
        N = features.shape[0]
        captions = self._null * np.ones((N, max_length), dtype=np.int32)
        prev_h = features @ p["W_proj"] + p["b_proj"]
        prev_c = np.zeros_like(prev_h)
        word = self._start * np.ones(N, dtype=np.int32)
        for t in range(max_length):
            x, _ = L.word_embedding_forward(word, p["W_embed"])
            if self.cell_type == "rnn":
                prev_h, _ = L.rnn_step_forward(x, prev_h, p["Wx"], p["Wh"], p["b"])
            else:
                prev_h, prev_c, _ = L.lstm_step_forward(x, prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
            scores, _ = L.affine_forward(prev_h, p["W_vocab"], p["b_vocab"])
            word = np.argmax(scores, axis=1)
            captions[:, t] = word
        return captions
