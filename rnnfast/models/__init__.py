"""Models built from rnnfast layers."""
from .lm import RNNLM
from .seq2seq import Seq2Seq, addition_task
from .sequence import SequenceClassifier, SequenceRegressor, SequenceTagger
from .vocab import Vocab

__all__ = ["RNNLM", "Seq2Seq", "addition_task", "SequenceClassifier", "SequenceTagger", "SequenceRegressor", "Vocab"]
