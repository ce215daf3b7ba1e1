"""A word-level tokenizer fitted on the datasets' text (instructions and subtasks).

The world's language is templated, so a closed word vocabulary is exact and tiny; real
datasets' instructions get an `unk` for words never seen at fit time. Saved as JSON
(`DIR/tokenizer.json`, and by the trainer into each run directory).
Ids: 0 = pad, 1 = unk, 2 = eos, then words by decreasing frequency (ties alphabetical).
"""
from __future__ import annotations

import collections
import os
import re
from typing import Iterable

import numpy as np

from h2r import files
from h2r.errors import DataError

PAD, UNK, EOS = 0, 1, 2
SPECIAL = ("<pad>", "<unk>", "<eos>")
_WORD = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Tokenizer:
    def __init__(self, vocab: list[str]):
        if tuple(vocab[:3]) != SPECIAL:
            raise DataError(f"tokenizer vocabulary must start with {list(SPECIAL)}, got {vocab[:3]}")
        self.vocab = list(vocab)
        self.ids = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def fit(cls, texts: Iterable[str]) -> "Tokenizer":
        counts = collections.Counter(w for text in texts for w in words(text))
        ordered = sorted(counts, key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL) + ordered)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, max_len: int) -> np.ndarray:
        """int32 [max_len]: word ids, then eos if it fits, then pad. Longer texts are cut."""
        ids = [self.ids.get(w, UNK) for w in words(text)] + [EOS]
        out = np.zeros(max_len, np.int32)
        ids = ids[:max_len]
        out[:len(ids)] = ids
        return out

    def encode_batch(self, texts: Iterable[str], max_len: int) -> np.ndarray:
        return np.stack([self.encode(t, max_len) for t in texts]) if texts else np.zeros((0, max_len), np.int32)

    def decode(self, ids) -> str:
        out = []
        for i in np.asarray(ids).tolist():
            if i in (PAD, EOS):
                break
            out.append(self.vocab[i] if 0 <= i < len(self.vocab) else SPECIAL[UNK])
        return " ".join(out)

    def to_json(self) -> dict:
        return {"type": "word", "vocab": self.vocab}

    def save(self, path: str) -> None:
        files.write_json(path, self.to_json(), indent=0)

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        data = files.read_json(path, "tokenizer", "run `h2r data stats DIR` first")
        if data.get("type") != "word" or "vocab" not in data:
            raise DataError(f"tokenizer {path}: expected {{'type': 'word', 'vocab': [...]}}")
        return cls(data["vocab"])


def path_for(data_dir: str) -> str:
    return os.path.join(data_dir, "tokenizer.json")
