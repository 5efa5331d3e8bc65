"""Plain-NumPy twins of every rnnfast kernel: same signatures, written to be read.

These are the specification the Cython kernels are tested against.
"""
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward

__all__ = ["lstm_forward", "lstm_backward", "lstm_step_forward", "lstm_step_backward"]
