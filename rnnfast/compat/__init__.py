"""Drop-in compatibility with NumPy RNN code people already have.

- ``rnnfast.compat`` itself: everything a script of "Deep Learning from Scratch 2" (chapters 5-8)
  takes from the book's ``common`` package: what ``from common.time_layers import *`` and
  ``from common.np import *`` give (``np``, ``GPU``, the time layers, the plain layers and functions of
  ``common/layers.py`` and ``functions.py``), ``BaseModel``, the optimizers, ``Trainer`` and
  ``RnnlmTrainer``, ``clip_grads``, ``eval_perplexity``, ``eval_seq2seq``, ``to_cpu``/``to_gpu``, and
  ``config`` (``from rnnfast.compat import config``), with that book's gate orders and conventions.
- ``rnnfast.compat.cs231n``: the cs231n RNN layer functions.

Both run on rnnfast's Cython kernels; change the imports, keep the script.
"""
import numpy as np

from . import config
from .config import GPU
from .textbook import (GRU, LSTM, RNN, Embedding, Simple_TimeAffine, Simple_TimeSoftmaxWithLoss, TimeAffine,
                       TimeBiLSTM, TimeDropout, TimeEmbedding, TimeGRU, TimeLSTM, TimeRNN, TimeSigmoidWithLoss,
                       TimeSoftmaxWithLoss)
from .textbook_layers import (Affine, Dropout, MatMul, Sigmoid, SigmoidWithLoss, Softmax, SoftmaxWithLoss,
                              cross_entropy_error, relu, sigmoid, softmax)
from .textbook_model import BaseModel, to_cpu, to_gpu
from .textbook_train import (SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, RnnlmTrainer, Trainer, clip_grads,
                             eval_perplexity, eval_seq2seq, remove_duplicate)

__all__ = [
    # common/np.py, common/config.py
    "np", "GPU",
    # common/time_layers.py
    "RNN", "LSTM", "GRU", "TimeRNN", "TimeLSTM", "TimeGRU", "TimeBiLSTM", "TimeEmbedding", "TimeAffine",
    "TimeSoftmaxWithLoss", "TimeSigmoidWithLoss", "TimeDropout", "Simple_TimeSoftmaxWithLoss",
    "Simple_TimeAffine",
    # common/layers.py, common/functions.py
    "MatMul", "Affine", "Softmax", "SoftmaxWithLoss", "Sigmoid", "SigmoidWithLoss", "Dropout", "Embedding",
    "sigmoid", "relu", "softmax", "cross_entropy_error",
    # common/base_model.py, common/optimizer.py, common/trainer.py, common/util.py
    "BaseModel", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "Trainer", "RnnlmTrainer",
    "remove_duplicate", "clip_grads", "eval_perplexity", "eval_seq2seq", "to_cpu", "to_gpu",
]
