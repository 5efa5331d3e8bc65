"""Character and word vocabularies: text <-> integer ids."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np


class Vocab:
    """``level="char"`` (every character a token) or ``"word"`` (whitespace-separated words)."""

    def __init__(self, tokens: Sequence[str], level: str = "char"):
        if level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word'; got {level!r}")
        self.level = level
        self.itos: List[str] = list(tokens)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def from_text(cls, text: str, level: str = "char") -> "Vocab":
        units = list(text) if level == "char" else text.split()
        if not units:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(sorted(set(units)), level)

    def __len__(self) -> int:
        return len(self.itos)

    def split(self, text: str):
        return list(text) if self.level == "char" else text.split()

    def encode(self, text: str) -> np.ndarray:
        units = self.split(text)
        unknown = sorted({u for u in units if u not in self.stoi})
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            raise ValueError(f"text has {len(unknown)} token(s) not in the vocabulary: {shown}")
        return np.fromiter((self.stoi[u] for u in units), dtype=np.int64, count=len(units))

    def decode(self, ids) -> str:
        sep = "" if self.level == "char" else " "
        return sep.join(self.itos[int(i)] for i in ids)

    def to_config(self) -> dict:
        return {"level": self.level, "tokens": self.itos}

    @classmethod
    def from_config(cls, cfg: dict) -> "Vocab":
        return cls(cfg["tokens"], cfg["level"])
