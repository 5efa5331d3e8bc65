"""The book's chapter 7-8 models in the book's own style ("Deep Learning from Scratch 2": ``Seq2seq``,
``PeekySeq2seq``, ``AttentionSeq2seq``), written as its files are: everything, ``np`` included, comes from
one star-import.  ``SCRIPT`` leaves that import open: the tests run it once on ``textbook_numpy`` (plain
NumPy) and once on ``rnnfast.compat``, nothing else changed."""

SCRIPT = '''
from {module} import *


class Encoder:
    def __init__(self, V, D, H):
        rn = np.random.randn
        self.embed = TimeEmbedding((rn(V, D) / 100).astype('f'))
        self.lstm = TimeLSTM((rn(D, 4 * H) / np.sqrt(D)).astype('f'), (rn(H, 4 * H) / np.sqrt(H)).astype('f'),
                             np.zeros(4 * H).astype('f'), stateful=False)
        self.params = self.embed.params + self.lstm.params
        self.grads = self.embed.grads + self.lstm.grads
        self.hs = None

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs[:, -1, :]

    def backward(self, dh):
        dhs = np.zeros_like(self.hs)
        dhs[:, -1, :] = dh
        self.embed.backward(self.lstm.backward(dhs))


class Decoder:
    peeky = False

    def __init__(self, V, D, H):
        rn = np.random.randn
        K = H + D if self.peeky else D
        M = 2 * H if self.peeky else H
        self.embed = TimeEmbedding((rn(V, D) / 100).astype('f'))
        self.lstm = TimeLSTM((rn(K, 4 * H) / np.sqrt(K)).astype('f'), (rn(H, 4 * H) / np.sqrt(H)).astype('f'),
                             np.zeros(4 * H).astype('f'), stateful=True)
        self.affine = TimeAffine((rn(M, V) / np.sqrt(M)).astype('f'), np.zeros(V).astype('f'))
        self.params, self.grads = [], []
        for layer in (self.embed, self.lstm, self.affine):
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs, h):
        self.lstm.set_state(h)
        out = self.embed.forward(xs)
        if self.peeky:
            N, T = xs.shape
            hs = np.repeat(h, T, axis=0).reshape(N, T, h.shape[1])
            out = np.concatenate((hs, out), axis=2)
        out = self.lstm.forward(out)
        if self.peeky:
            out = np.concatenate((hs, out), axis=2)
        return self.affine.forward(out)

    def backward(self, dscore):
        H = self.lstm.params[1].shape[0]
        dout = self.affine.backward(dscore)
        if self.peeky:
            dout, dhs0 = dout[:, :, H:], dout[:, :, :H]
        dout = self.lstm.backward(dout)
        if self.peeky:
            dout, dhs1 = dout[:, :, H:], dout[:, :, :H]
        self.embed.backward(dout)
        dh = self.lstm.dh
        if self.peeky:
            dh = dh + np.sum(dhs0 + dhs1, axis=1)
        return dh

    def generate(self, h, start_id, sample_size):
        sampled, sample_id = [], start_id
        self.lstm.set_state(h)
        peeky_h = h.reshape(1, 1, h.shape[1])
        for _ in range(sample_size):
            out = self.embed.forward(np.array(sample_id).reshape((1, 1)))
            if self.peeky:
                out = np.concatenate((peeky_h, out), axis=2)
            out = self.lstm.forward(out)
            if self.peeky:
                out = np.concatenate((peeky_h, out), axis=2)
            sample_id = int(np.argmax(self.affine.forward(out).flatten()))
            sampled.append(sample_id)
        return sampled


class PeekyDecoder(Decoder):
    peeky = True


class Seq2seq(BaseModel):
    decoder_class = Decoder

    def __init__(self, V, D, H):
        self.encoder = Encoder(V, D, H)
        self.decoder = self.decoder_class(V, D, H)
        self.softmax = TimeSoftmaxWithLoss()
        self.params = self.encoder.params + self.decoder.params
        self.grads = self.encoder.grads + self.decoder.grads

    def forward(self, xs, ts):
        h = self.encoder.forward(xs)
        return self.softmax.forward(self.decoder.forward(ts[:, :-1], h), ts[:, 1:])

    def backward(self, dout=1):
        self.encoder.backward(self.decoder.backward(self.softmax.backward(dout)))

    def generate(self, xs, start_id, sample_size):
        return self.decoder.generate(self.encoder.forward(xs), start_id, sample_size)


class PeekySeq2seq(Seq2seq):
    decoder_class = PeekyDecoder


class AttentionWeight:
    def __init__(self):
        self.params, self.grads = [], []
        self.softmax = Softmax()

    def forward(self, hs, h):
        N, T, H = hs.shape
        hr = h.reshape(N, 1, H)
        self.cache = (hs, hr)
        return self.softmax.forward(np.sum(hs * hr, axis=2))

    def backward(self, da):
        hs, hr = self.cache
        N, T, H = hs.shape
        dt = self.softmax.backward(da).reshape(N, T, 1).repeat(H, axis=2)
        return dt * hr, np.sum(dt * hs, axis=1)


class TimeAttention:
    def __init__(self):
        self.params, self.grads = [], []
        self.layers = None

    def forward(self, hs_enc, hs_dec):
        N, T, H = hs_dec.shape
        out = np.empty_like(hs_dec)
        self.layers = []
        for t in range(T):
            weight = AttentionWeight()
            a = weight.forward(hs_enc, hs_dec[:, t, :])
            ar = a.reshape(N, -1, 1)
            out[:, t, :] = np.sum(hs_enc * ar, axis=1)
            self.layers.append((weight, ar))
        return out

    def backward(self, dout):
        N, T, H = dout.shape
        dhs_enc, dhs_dec = 0, np.empty_like(dout)
        for t in range(T):
            weight, ar = self.layers[t]
            hs_enc = weight.cache[0]
            dc = dout[:, t, :].reshape(N, 1, H).repeat(hs_enc.shape[1], axis=1)
            dhs_sum, da = dc * ar, np.sum(dc * hs_enc, axis=2)
            dhs_w, dh = weight.backward(da)
            dhs_enc = dhs_enc + dhs_sum + dhs_w
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec


class AttentionSeq2seq(BaseModel):
    def __init__(self, V, D, H):
        rn = np.random.randn
        self.encoder = Encoder(V, D, H)
        self.embed = TimeEmbedding((rn(V, D) / 100).astype('f'))
        self.lstm = TimeLSTM((rn(D, 4 * H) / np.sqrt(D)).astype('f'), (rn(H, 4 * H) / np.sqrt(H)).astype('f'),
                             np.zeros(4 * H).astype('f'), stateful=True)
        self.attention = TimeAttention()
        self.affine = TimeAffine((rn(2 * H, V) / np.sqrt(2 * H)).astype('f'), np.zeros(V).astype('f'))
        self.softmax = TimeSoftmaxWithLoss()
        self.params, self.grads = list(self.encoder.params), list(self.encoder.grads)
        for layer in (self.embed, self.lstm, self.attention, self.affine):
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs, ts):
        self.encoder.forward(xs)
        enc_hs = self.encoder.hs
        self.lstm.set_state(enc_hs[:, -1])
        dec_hs = self.lstm.forward(self.embed.forward(ts[:, :-1]))
        c = self.attention.forward(enc_hs, dec_hs)
        return self.softmax.forward(self.affine.forward(np.concatenate((c, dec_hs), axis=2)), ts[:, 1:])

    def backward(self, dout=1):
        H = self.lstm.params[1].shape[0]
        dout = self.affine.backward(self.softmax.backward(dout))
        dc, ddec_hs0 = dout[:, :, :H], dout[:, :, H:]
        denc_hs, ddec_hs1 = self.attention.backward(dc)
        self.embed.backward(self.lstm.backward(ddec_hs0 + ddec_hs1))
        denc_hs = denc_hs.copy()
        denc_hs[:, -1] += self.lstm.dh
        dhs = denc_hs
        self.encoder.embed.backward(self.encoder.lstm.backward(dhs))


def addition_data(n, seed):
    """Questions "a+b" padded to 7 characters and answers "_" + sum padded to 5, as the book's addition.txt."""
    rng = np.random.RandomState(seed)
    chars = list("0123456789+ _")
    xs, ts = [], []
    for _ in range(n):
        a, b = rng.randint(0, 1000, 2)
        xs.append([chars.index(c) for c in f"{a}+{b}".ljust(7)])
        ts.append([chars.index(c) for c in f"_{a + b}".ljust(5)])
    return np.array(xs), np.array(ts), chars


def train(model_name, iters=40, batch_size=32, seed=0):
    """Seeded training with the book's Adam and clipping (what ``Trainer.fit`` does per batch); the losses."""
    np.random.seed(seed)
    x, t, chars = addition_data(iters * batch_size, seed)
    model = {"seq2seq": Seq2seq, "peeky": PeekySeq2seq, "attention": AttentionSeq2seq}[model_name](
        len(chars), 16, 32)
    optimizer = Adam(lr=0.01)
    losses = []
    for i in range(iters):
        bx, bt = x[i * batch_size:(i + 1) * batch_size], t[i * batch_size:(i + 1) * batch_size]
        loss = model.forward(bx, bt)
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        clip_grads(grads, 5.0)
        optimizer.update(params, grads)
        losses.append(float(loss))
    generated = model.generate(x[:1], t[0, 0], 4) if hasattr(model, "generate") else None
    return losses, generated
'''


def load(module: str) -> dict:
    """The script's namespace with everything taken from ``module``."""
    namespace: dict = {}
    exec(compile(SCRIPT.replace("{module}", module), f"<textbook seq2seq script on {module}>", "exec"), namespace)
    return namespace
