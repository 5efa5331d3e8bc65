"""rnnfast: fast, tested CPU kernels for RNN, LSTM and GRU."""
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward

__version__ = "0.1.0"
