"""Layers in the textbook protocol (``params``, ``grads``, ``forward``, ``backward``) on the rnnfast kernels."""
from .basic import Embedding, TiedAffine, TimeAffine, TimeMSELoss, TimeSoftmaxWithLoss
from .dropout import LockedDropout, TimeDropout
from .recurrent import LAYER_CLASSES, TimeGRU, TimeLSTM, TimeRecurrent, TimeRNN
from .stack import RecurrentStack, reverse_padded

__all__ = [
    "TimeLSTM", "TimeGRU", "TimeRNN", "TimeRecurrent", "RecurrentStack", "reverse_padded",
    "Embedding", "TimeAffine", "TiedAffine", "TimeSoftmaxWithLoss", "TimeMSELoss", "TimeDropout", "LockedDropout",
]
