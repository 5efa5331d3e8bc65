"""Optimizers that update ``params`` in place from ``grads`` (the textbook interface ``update(params, grads)``),
with ``state_dict``/``load_state_dict`` for checkpoints."""
from __future__ import annotations

import numpy as np

from .._core import training_passes


class Optimizer:
    def __init__(self, lr: float):
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a positive number; got {lr!r}")
        self.lr = float(lr)
        self.slots = {}  # name -> list of arrays, one per parameter
        self.t = 0

    def _slot(self, name, params):
        if name not in self.slots:
            self.slots[name] = [np.zeros_like(p) for p in params]
        return self.slots[name]

    def update(self, params, grads):
        self.t += 1
        self._update(params, grads)

    def state_dict(self) -> dict:
        out = {"lr": np.array(self.lr), "t": np.array(self.t)}
        for name, arrays in self.slots.items():
            for i, a in enumerate(arrays):
                out[f"{name}.{i}"] = a
        return out

    def load_state_dict(self, state: dict):
        self.lr = float(state["lr"])
        self.t = int(state["t"])
        slots = {}
        for key, value in state.items():
            if "." in key:
                name, i = key.rsplit(".", 1)
                slots.setdefault(name, {})[int(i)] = np.array(value)
        self.slots = {name: [d[i] for i in range(len(d))] for name, d in slots.items()}


class SGD(Optimizer):
    def _update(self, params, grads):
        for p, g in zip(params, grads):
            p -= self.lr * g


class Momentum(Optimizer):
    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr)
        self.momentum = momentum

    def _update(self, params, grads):
        for p, g, v in zip(params, grads, self._slot("v", params)):
            v *= self.momentum
            v -= self.lr * g
            p += v


class AdaGrad(Optimizer):
    def __init__(self, lr=0.01, eps=1e-8):
        super().__init__(lr)
        self.eps = eps

    def _update(self, params, grads):
        for p, g, h in zip(params, grads, self._slot("h", params)):
            h += g * g
            p -= self.lr * g / (np.sqrt(h) + self.eps)


class RMSprop(Optimizer):
    def __init__(self, lr=0.01, decay=0.99, eps=1e-8):
        super().__init__(lr)
        self.decay, self.eps = decay, eps

    def _update(self, params, grads):
        for p, g, h in zip(params, grads, self._slot("h", params)):
            h *= self.decay
            h += (1 - self.decay) * g * g
            p -= self.lr * g / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, params, grads):
        b1, b2 = self.beta1, self.beta2
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        # In place through one scratch array per parameter (not state: it is not saved): the expression form
        # made a float64 temporary per operation, four times the time.
        scratch = self.__dict__.setdefault("_scratch", {})
        ms, vs = self._slot("m", params), self._slot("v", params)
        # One pass over all parameters in one parallel region (src/training.pyx); the NumPy below is its twin.
        compiled = [training_passes.compiled(p, g, m, v) for p, g, m, v in zip(params, grads, ms, vs)]
        if compiled and all(compiled) and len({p.dtype for p in params}) == 1:
            training_passes.adam_update(params, grads, ms, vs, b1, b2, step, self.eps)
            return
        for i, (p, g, m, v) in enumerate(zip(params, grads, ms, vs)):
            if compiled[i]:
                training_passes.adam_update([p], [g], [m], [v], b1, b2, step, self.eps)
                continue
            tmp = scratch.get(i)
            if tmp is None or tmp.shape != p.shape or tmp.dtype != p.dtype:
                tmp = scratch[i] = np.empty_like(p)
            np.subtract(g, m, out=tmp)
            tmp *= 1 - b1
            m += tmp  # m += (1 - b1) * (g - m)
            np.multiply(g, g, out=tmp)
            tmp -= v
            tmp *= 1 - b2
            v += tmp  # v += (1 - b2) * (g * g - v)
            np.sqrt(v, out=tmp)
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp  # p -= step * m / (sqrt(v) + eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSprop, "adam": Adam}
