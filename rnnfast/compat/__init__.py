"""Drop-in compatibility with NumPy RNN code people already have.

- ``rnnfast.compat`` itself: the time layers, optimizers and training helpers of
  "Deep Learning from Scratch 2" (``common/time_layers.py``, ``optimizer.py``,
  ``util.py``, ``trainer.py``), with that book's gate orders and conventions.
- ``rnnfast.compat.cs231n``: the cs231n RNN layer functions.

Both run on rnnfast's Cython kernels; change the imports, keep the script.
"""
from .textbook import (GRU, LSTM, RNN, Embedding, TimeAffine, TimeBiLSTM, TimeDropout, TimeEmbedding, TimeGRU,
                       TimeLSTM, TimeRNN, TimeSoftmaxWithLoss, softmax)
from .textbook_train import (SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, RnnlmTrainer, clip_grads,
                             eval_perplexity, remove_duplicate)

__all__ = [
    "RNN", "LSTM", "GRU", "TimeRNN", "TimeLSTM", "TimeGRU", "TimeBiLSTM", "Embedding", "TimeEmbedding",
    "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout", "softmax",
    "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "clip_grads", "eval_perplexity",
    "remove_duplicate", "RnnlmTrainer",
]
