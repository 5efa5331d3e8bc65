"""Character and word vocabularies: text <-> integer ids."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np


# What ``Vocab.encode`` does with a token outside the vocabulary.
UNKNOWN_POLICIES = ("error", "skip", "replace")


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

    def encode(self, text: str, unknown: str = "error", replacement: Optional[str] = None) -> np.ndarray:
        """Token ids of ``text``.  Tokens outside the vocabulary: ``unknown="error"`` raises a
        ``ValueError`` naming them, ``"skip"`` drops them, ``"replace"`` maps each to ``replacement``
        (a token of the vocabulary), as language-model tools map them to ``<unk>``."""
        return self.encode_counting(text, unknown, replacement)[0]

    def encode_counting(self, text: str, unknown: str = "error",
                        replacement: Optional[str] = None) -> Tuple[np.ndarray, int]:
        """``encode``, and how many tokens were outside the vocabulary (skipped or replaced)."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}; got {unknown!r}")
        if unknown == "replace" and replacement not in self.stoi:
            raise ValueError(f"replacement must be a token of the vocabulary; got {replacement!r}")
        units = self.split(text)
        missing = [u for u in units if u not in self.stoi]
        if missing and unknown == "error":
            kinds = sorted(set(missing))
            shown = ", ".join(repr(u) for u in kinds[:5])
            raise ValueError(f"text has {len(kinds)} token(s) not in the vocabulary: {shown}")
        if unknown == "skip":
            units = [u for u in units if u in self.stoi]
        elif missing:
            units = [u if u in self.stoi else replacement for u in units]
        return np.fromiter((self.stoi[u] for u in units), dtype=np.int64, count=len(units)), len(missing)

    def decode(self, ids) -> str:
        sep = "" if self.level == "char" else " "
        return sep.join(self.itos[int(i)] for i in ids)

    def to_config(self) -> dict:
        return {"level": self.level, "tokens": self.itos}

    @classmethod
    def from_config(cls, cfg: dict) -> "Vocab":
        return cls(cfg["tokens"], cfg["level"])
