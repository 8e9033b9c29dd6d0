"""A private copy of a Y-Encoder's tokenizer behind a lock, for threads that share one encoder.

Fast (Rust) tokenizers raise "Already borrowed" when two threads use one at the same time, and
the torch encoder may be tokenising with its own copy meanwhile. The ONNX engine and the serving
token caps each hold one of these instead of the encoder's tokenizer.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from prime_model.encode.buckets import pad_rows
from prime_model.encode.token_caps import keep_heads, keep_tails


class LockedTokenizer:
    """Tokenising, padding and token caps on one deep copy of ``tokenizer``, one call at a time."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer: Any = copy.deepcopy(tokenizer)
        self._lock = threading.Lock()

    def input_names(self) -> list[str]:
        """What the tokenizer produces for one text (input_ids, attention_mask, ...)."""
        with self._lock:
            return list(self.tokenizer(["probe"], verbose=False).keys())

    def special_tokens(self) -> int:
        """[CLS]/[SEP] and the like, added to one text."""
        with self._lock:
            return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    def keep_heads(self, texts: Sequence[str], max_tokens: int) -> list[str]:
        with self._lock:
            return keep_heads(texts, self.tokenizer, max_tokens)

    def keep_tails(self, texts: Sequence[str], max_seq_length: int | None) -> list[str]:
        with self._lock:
            return keep_tails(texts, self.tokenizer, max_seq_length)

    def token_ids(
        self, texts: list[str], names: Sequence[str], max_length: int | None
    ) -> list[dict[str, list[int]]]:
        """Every text's ``names`` ids, cut at ``max_length`` as sentence-transformers does."""
        with self._lock:
            encoded = self.tokenizer(
                texts,
                padding=False,
                truncation="longest_first" if max_length is not None else False,
                max_length=max_length,
                verbose=False,
            )
        columns = [list(encoded[name]) for name in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def pad(
        self, rows: list[dict[str, list[int]]], names: Sequence[str]
    ) -> dict[str, npt.NDArray[np.int64]]:
        """One batch padded to its longest text, on the tokenizer's side, with its pad ids."""
        fill = {
            "input_ids": int(self.tokenizer.pad_token_id or 0),
            "attention_mask": 0,
            "token_type_ids": int(getattr(self.tokenizer, "pad_token_type_id", 0) or 0),
        }
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        return pad_rows(rows, tuple(names), fill, left=left)
