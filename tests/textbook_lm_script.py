"""A complete textbook-style LSTM language-model training script ("Deep Learning from Scratch 2",
ch. 6 ``BetterRnnlm``: embedding -> dropout -> LSTM -> dropout -> LSTM -> dropout -> tied affine ->
softmax loss; SGD, gradient clipping, truncated BPTT over parallel streams).

``SCRIPT`` is its source with the import line left open: the tests and the benchmark run it once
with ``from textbook_numpy import ...`` (plain NumPy) and once with ``from rnnfast.compat import ...``.
Nothing else changes.
"""

SCRIPT = '''
import numpy as np
from {module} import (TimeEmbedding, TimeDropout, TimeLSTM, TimeAffine, TimeSoftmaxWithLoss, SGD,
                      clip_grads, remove_duplicate)


class BetterRnnlm:
    def __init__(self, vocab_size, wordvec_size, hidden_size, dropout_ratio=0.5):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype('f')
        lstm_Wx1 = (rn(D, 4 * H) / np.sqrt(D)).astype('f')
        lstm_Wh1 = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
        lstm_b1 = np.zeros(4 * H).astype('f')
        lstm_Wx2 = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
        lstm_Wh2 = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
        lstm_b2 = np.zeros(4 * H).astype('f')
        affine_b = np.zeros(V).astype('f')
        self.layers = [
            TimeEmbedding(embed_W),
            TimeDropout(dropout_ratio),
            TimeLSTM(lstm_Wx1, lstm_Wh1, lstm_b1, stateful=True),
            TimeDropout(dropout_ratio),
            TimeLSTM(lstm_Wx2, lstm_Wh2, lstm_b2, stateful=True),
            TimeDropout(dropout_ratio),
            TimeAffine(embed_W.T, affine_b),  # weight tying
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layers = [self.layers[2], self.layers[4]]
        self.drop_layers = [self.layers[1], self.layers[3], self.layers[5]]
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def predict(self, xs, train_flg=False):
        for layer in self.drop_layers:
            layer.train_flg = train_flg
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts, train_flg=True):
        return self.loss_layer.forward(self.predict(xs, train_flg), ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def reset_state(self):
        for layer in self.lstm_layers:
            layer.reset_state()


def train(corpus, vocab_size, wordvec_size, hidden_size, batch_size, time_size, iters, lr=20.0,
          max_grad=0.25, dropout_ratio=0.5, seed=0):
    np.random.seed(seed)
    model = BetterRnnlm(vocab_size, wordvec_size, hidden_size, dropout_ratio)
    optimizer = SGD(lr)
    xs, ts = corpus[:-1], corpus[1:]
    jump = len(xs) // batch_size
    offsets = [i * jump for i in range(batch_size)]
    time_idx, losses = 0, []
    for _ in range(iters):
        batch_x = np.empty((batch_size, time_size), dtype='i')
        batch_t = np.empty((batch_size, time_size), dtype='i')
        for t in range(time_size):
            for i, offset in enumerate(offsets):
                batch_x[i, t] = xs[(offset + time_idx) % len(xs)]
                batch_t[i, t] = ts[(offset + time_idx) % len(xs)]
            time_idx += 1
        loss = model.forward(batch_x, batch_t)
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        clip_grads(grads, max_grad)
        optimizer.update(params, grads)
        losses.append(float(loss))
    return losses
'''


def load(module: str) -> dict:
    """The script's namespace with its imports taken from ``module``."""
    namespace: dict = {}
    exec(compile(SCRIPT.format(module=module), f"<textbook LM script on {module}>", "exec"), namespace)
    return namespace
