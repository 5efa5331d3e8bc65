"""Models built from rnnfast layers."""
from .lm import RNNLM
from .vocab import Vocab

__all__ = ["RNNLM", "Vocab"]
