"""rnnfast: fast, tested CPU kernels for RNN, LSTM and GRU.

Kernels (float32/float64, batch-first ``x (N, T, D)``, weights multiply from
the right): ``lstm_forward/backward``, ``gru_forward/backward``,
``rnn_forward/backward`` and their single-step ``*_step_forward/backward``;
``LSTMStepper``, ``GRUStepper``, ``RNNStepper`` for streaming generation.
``rnnfast.reference`` holds the same functions in plain NumPy.
"""
from . import backend
from ._core.show_config import config_info, show_config
from ._core.workspace import release_workspaces
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .stepper import GRUStepper, LSTMStepper, RNNStepper

# The one place the version is written: pyproject.toml reads it from here (``[tool.setuptools.dynamic]``).
__version__ = "0.1.0"

__all__ = [
    "lstm_forward", "lstm_backward", "lstm_step_forward", "lstm_step_backward",
    "gru_forward", "gru_backward", "gru_step_forward", "gru_step_backward",
    "rnn_forward", "rnn_backward", "rnn_step_forward", "rnn_step_backward", "LSTMStepper", "GRUStepper", "RNNStepper",
    "show_config", "config_info", "release_workspaces", "backend", "__version__",
]
