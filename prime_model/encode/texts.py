"""Texts -> rows of one embedding matrix, and the history + query texts a concat input embeds.

Shared by offline encoding (:mod:`prime_model.encode.encoding`), batch prediction and serving, so
every path embeds a text once and joins history and query the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from prime_model.encode.encoders import YEncoder
from prime_model.errors import DataValidationError

CONCAT_SEPARATOR = " "  # history turns and query, oldest first, as one text


class TextTable:
    """Unique texts -> row of one embedding matrix (plus a zero row for padding at the end)."""

    def __init__(self, texts: Iterable[str], encoder: YEncoder) -> None:
        unique = list(dict.fromkeys(texts))
        vectors = encoder.encode(unique)
        if vectors.shape != (len(unique), encoder.dim) or not np.isfinite(vectors).all():
            raise DataValidationError(
                f"Y-Encoder {encoder.name!r} returned an array of shape {vectors.shape} "
                f"(finite: {bool(np.isfinite(vectors).all())}); expected ({len(unique)}, "
                f"{encoder.dim}) finite values"
            )
        self.row = {text: i for i, text in enumerate(unique)}
        padded = np.vstack([vectors, np.zeros((1, encoder.dim), dtype=np.float32)])
        self.vectors = torch.from_numpy(padded)  # (U+1, D); row U is the padding vector
        self.encoder_name, self.dim = encoder.name, encoder.dim

    def gather(self, texts: Iterable[str]) -> Tensor:
        return self.vectors[[self.row[t] for t in texts]]

    def gather_histories(self, histories: Sequence[list[str]]) -> tuple[Tensor, Tensor]:
        """(M×N×D context zero-padded after the turns, M×N mask), N the longest history."""
        n = max((len(h) for h in histories), default=0)
        pad = len(self.row)
        rows = torch.full((len(histories), n), pad, dtype=torch.long)  # rows of self.vectors
        for i, history in enumerate(histories):
            rows[i, : len(history)] = torch.tensor([self.row[t] for t in history], dtype=torch.long)
        return self.vectors[rows], rows != pad


def joined_texts(kept: pd.DataFrame) -> list[str]:
    """Each turn's (already truncated) history and query, oldest first, as one text."""
    return [
        CONCAT_SEPARATOR.join([*history, query])
        for history, query in zip(kept["history"], kept["query"], strict=True)
    ]


def fitted_concat_texts(kept: pd.DataFrame, encoder: YEncoder) -> list[str]:
    """History + query as one text per turn, cut from the start to the encoder's token limit.

    ``kept`` already holds truncated histories. An encoder with ``fit_to_limit``
    (:class:`SentenceTransformerEncoder`) drops the oldest tokens, so the query is never cut.
    """
    texts = joined_texts(kept)
    fit = getattr(encoder, "fit_to_limit", None)
    return list(fit(texts)) if callable(fit) else texts
