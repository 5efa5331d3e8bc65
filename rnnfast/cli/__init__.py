"""The ``rnnfast`` command (``main``), and what only it uses: the built-in corpus (``corpus``), the
vanishing-gradient picture (``gradflow``) and Karpathy's min-char-rnn on the kernels (``min_char_rnn``,
``python -m rnnfast.cli.min_char_rnn``)."""
from .main import CLIError, main

__all__ = ["main", "CLIError"]
