"""The training helpers of "Deep Learning from Scratch 2" with the book's exact update rules:
optimizers (``common/optimizer.py``), ``clip_grads``, ``eval_perplexity`` and ``eval_seq2seq``
(``common/util.py``), ``remove_duplicate``, ``Trainer`` and ``RnnlmTrainer`` (``common/trainer.py``).

Where the book's rule is rnnfast's, these are ``rnnfast.train``'s optimizers (with the book's epsilon
and argument names); Nesterov and the book's Adam keep its exact arithmetic, so a ported script gives
the book's numbers.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .. import train as _train


# SGD and Momentum are rnnfast's own; AdaGrad and RMSprop too, with the book's epsilon (1e-7) and argument
# names.  Nesterov and Adam are the book's: rnnfast has no Nesterov, and its Adam casts the step to the
# parameters' dtype before subtracting, where the book subtracts a float64 step (other float32 bits).
SGD = _train.SGD
Momentum = _train.Momentum


class Nesterov:
    """Nesterov's accelerated gradient (http://arxiv.org/abs/1212.0901), as the book writes it."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] *= self.momentum
            self.v[i] -= self.lr * grads[i]
            params[i] += self.momentum * self.momentum * self.v[i]
            params[i] -= (1 + self.momentum) * self.lr * grads[i]


class AdaGrad(_train.AdaGrad):
    def __init__(self, lr=0.01):
        super().__init__(lr, eps=1e-7)


class RMSprop(_train.RMSprop):
    def __init__(self, lr=0.01, decay_rate=0.99):
        super().__init__(lr, decay=decay_rate, eps=1e-7)


class Adam:
    """Adam (http://arxiv.org/abs/1412.6980v8), bias corrections folded into the step size."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for i in range(len(params)):
            self.m[i] += (1 - self.beta1) * (grads[i] - self.m[i])
            self.v[i] += (1 - self.beta2) * (grads[i] ** 2 - self.v[i])
            params[i] -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + 1e-7)


def clip_grads(grads, max_norm):
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``."""
    total_norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate


def remove_duplicate(params, grads):
    """Merge parameters shared between layers (the same array, or a transposed copy for weight tying),
    adding their gradients; returns new lists."""
    params, grads = params[:], grads[:]
    while True:
        found = False
        L = len(params)
        for i in range(0, L - 1):
            for j in range(i + 1, L):
                if params[i] is params[j]:
                    grads[i] += grads[j]
                    found = True
                elif params[i].ndim == 2 and params[j].ndim == 2 and \
                        params[i].T.shape == params[j].shape and np.all(params[i].T == params[j]):
                    grads[i] += grads[j].T
                    found = True
                if found:
                    params.pop(j)
                    grads.pop(j)
                    break
            if found:
                break
        if not found:
            break
    return params, grads


def eval_perplexity(model, corpus, batch_size=10, time_size=35):
    """exp(mean loss) of ``model.forward(xs, ts)`` over the corpus read as the book's parallel streams."""
    print("evaluating perplexity ...")
    corpus_size = len(corpus)
    total_loss = 0
    max_iters = (corpus_size - 1) // (batch_size * time_size)
    jump = (corpus_size - 1) // batch_size
    for iters in range(max_iters):
        xs = np.zeros((batch_size, time_size), dtype=np.int32)
        ts = np.zeros((batch_size, time_size), dtype=np.int32)
        time_offset = iters * time_size
        offsets = [time_offset + (i * jump) for i in range(batch_size)]
        for t in range(time_size):
            for i, offset in enumerate(offsets):
                xs[i, t] = corpus[(offset + t) % corpus_size]
                ts[i, t] = corpus[(offset + t + 1) % corpus_size]
        try:
            loss = model.forward(xs, ts, train_flg=False)
        except TypeError:
            loss = model.forward(xs, ts)
        total_loss += loss
        sys.stdout.write("\r%d / %d" % (iters, max_iters))
        sys.stdout.flush()
    print("")
    return np.exp(total_loss / max_iters)


def eval_seq2seq(model, question, correct, id_to_char, verbose=False, is_reverse=False):
    """1 if ``model.generate`` answers ``question (1, T)`` with ``correct`` (whose first id is the start
    mark), else 0; ``verbose`` prints question, answer and guess as the book does."""
    correct = correct.flatten()
    start_id, correct = correct[0], correct[1:]
    guess = model.generate(question, start_id, len(correct))
    question = "".join(id_to_char[int(c)] for c in question.flatten())
    correct = "".join(id_to_char[int(c)] for c in correct)
    guess = "".join(id_to_char[int(c)] for c in guess)
    if verbose:
        if is_reverse:
            question = question[::-1]
        print("Q", question)
        print("T", correct)
        windows = os.name == "nt"
        if correct == guess:
            mark = "O" if windows else "\033[92m" + "\u2611" + "\033[0m"
        else:
            mark = "X" if windows else "\033[91m" + "\u2612" + "\033[0m"
        print(mark + " " + guess)
        print("---")
    return 1 if guess == correct else 0


def _train_step(model, optimizer, batch_x, batch_t, max_grad):
    """One update, as both of the book's trainers make it: forward, backward, shared weights merged,
    gradients clipped, optimizer step.  Returns the loss."""
    loss = model.forward(batch_x, batch_t)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    if max_grad is not None:
        clip_grads(grads, max_grad)
    optimizer.update(params, grads)
    return loss


def _plot(values, eval_interval, ylabel, ylim):
    import matplotlib.pyplot as plt  # the [plot] extra

    x = np.arange(len(values))
    if ylim is not None:
        plt.ylim(*ylim)
    plt.plot(x, values, label="train")
    plt.xlabel("iterations (x" + str(eval_interval) + ")")
    plt.ylabel(ylabel)
    plt.show()


class Trainer:
    """The book's minibatch trainer: ``fit(x, t, max_epoch, batch_size, max_grad, eval_interval)`` shuffles
    the examples each epoch (``numpy.random.permutation``, so a seeded run repeats the book's batches)."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.loss_list = []
        self.eval_interval = None
        self.current_epoch = 0

    def fit(self, x, t, max_epoch=10, batch_size=32, max_grad=None, eval_interval=20):
        data_size = len(x)
        max_iters = data_size // batch_size
        self.eval_interval = eval_interval
        model, optimizer = self.model, self.optimizer
        total_loss, loss_count = 0, 0
        start_time = time.time()
        for _ in range(max_epoch):
            idx = np.random.permutation(np.arange(data_size))
            x, t = x[idx], t[idx]
            for iters in range(max_iters):
                batch_x = x[iters * batch_size:(iters + 1) * batch_size]
                batch_t = t[iters * batch_size:(iters + 1) * batch_size]
                total_loss += _train_step(model, optimizer, batch_x, batch_t, max_grad)
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    avg_loss = total_loss / loss_count
                    elapsed = time.time() - start_time
                    print("| epoch %d |  iter %d / %d | time %d[s] | loss %.2f"
                          % (self.current_epoch + 1, iters + 1, max_iters, elapsed, avg_loss))
                    self.loss_list.append(float(avg_loss))
                    total_loss, loss_count = 0, 0
            self.current_epoch += 1

    def plot(self, ylim=None):
        _plot(self.loss_list, self.eval_interval, "loss", ylim)


class RnnlmTrainer:
    """The book's truncated-BPTT trainer: ``fit(xs, ts, max_epoch, batch_size, time_size, max_grad,
    eval_interval)`` reads ``batch_size`` parallel streams ``time_size`` steps at a time."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.time_idx = None
        self.ppl_list = None
        self.eval_interval = None
        self.current_epoch = 0

    def get_batch(self, x, t, batch_size, time_size):
        batch_x = np.empty((batch_size, time_size), dtype="i")
        batch_t = np.empty((batch_size, time_size), dtype="i")
        data_size = len(x)
        jump = data_size // batch_size
        offsets = [i * jump for i in range(batch_size)]
        for step in range(time_size):
            for i, offset in enumerate(offsets):
                batch_x[i, step] = x[(offset + self.time_idx) % data_size]
                batch_t[i, step] = t[(offset + self.time_idx) % data_size]
            self.time_idx += 1
        return batch_x, batch_t

    def fit(self, xs, ts, max_epoch=10, batch_size=20, time_size=35, max_grad=None, eval_interval=20):
        max_iters = len(xs) // (batch_size * time_size)
        self.time_idx = 0
        self.ppl_list = []
        self.eval_interval = eval_interval
        model, optimizer = self.model, self.optimizer
        total_loss, loss_count = 0, 0
        start_time = time.time()
        for _ in range(max_epoch):
            for iters in range(max_iters):
                batch_x, batch_t = self.get_batch(xs, ts, batch_size, time_size)
                total_loss += _train_step(model, optimizer, batch_x, batch_t, max_grad)
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    ppl = np.exp(total_loss / loss_count)
                    elapsed = time.time() - start_time
                    print("| epoch %d |  iter %d / %d | time %d[s] | perplexity %.2f"
                          % (self.current_epoch + 1, iters + 1, max_iters, elapsed, ppl))
                    self.ppl_list.append(float(ppl))
                    total_loss, loss_count = 0, 0
            self.current_epoch += 1

    def plot(self, ylim=None):
        _plot(self.ppl_list, self.eval_interval, "perplexity", ylim)
