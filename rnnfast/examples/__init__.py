"""Runnable examples: ``python -m rnnfast.examples.min_char_rnn``."""
