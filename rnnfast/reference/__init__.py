"""Plain-NumPy twins of every rnnfast kernel: same signatures, written to be read.

These are the specification the Cython kernels are tested against.
"""
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .stepper import GRUStepper, LSTMStepper, RNNStepper

__all__ = [
    "lstm_forward", "lstm_backward", "lstm_step_forward", "lstm_step_backward",
    "gru_forward", "gru_backward", "gru_step_forward", "gru_step_backward",
    "rnn_forward", "rnn_backward", "rnn_step_forward", "rnn_step_backward", "LSTMStepper", "GRUStepper", "RNNStepper",
]
