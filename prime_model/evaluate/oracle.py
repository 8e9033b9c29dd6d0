"""The rewrite oracle: retrieval with a human's self-contained rewrite of each question.

Where the data has rewrites (CANARD) the question "how much of the context did the model
recover?" has a ceiling: embed the rewrite itself and retrieve with it. The oracle is reported
next to the baselines, never counted as one (the gate's best baseline ignores it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pandas as pd
import torch

from prime_model.data.schema import REWRITE_COLUMN
from prime_model.encode.encoders import YEncoder
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import DataValidationError
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.evaluate.report import EvaluationTable
from prime_model.text import is_blank

REWRITE_ORACLE: Final = "rewrite oracle"


def rewrite_oracle(
    encoded: EncodedTurns, rewrites: Sequence[str], encoder: YEncoder
) -> dict[str, float]:
    """Metrics of retrieving each encoded turn's target with its rewrite's embedding."""
    if len(rewrites) != len(encoded):
        raise DataValidationError(
            f"{len(rewrites)} rewrites for {len(encoded)} encoded turns; expected one per turn"
        )
    vectors = torch.from_numpy(encoder.encode(list(rewrites))).float()
    return metrics_from_ranks(gold_ranks(vectors, encoded.corpus, encoded.target_index))


def turn_rewrites(turns: pd.DataFrame) -> list[str] | None:
    """The turns' rewrites when every turn has one, else None (no oracle for this data)."""
    if REWRITE_COLUMN not in turns.columns:
        return None
    texts = turns[REWRITE_COLUMN].tolist()
    if not texts or not all(isinstance(t, str) and not is_blank(t) for t in texts):
        return None
    return [str(t) for t in texts]


def with_rewrite_oracle(
    table: EvaluationTable, turns: pd.DataFrame, encoded: EncodedTurns, encoder: YEncoder
) -> EvaluationTable:
    """``table`` plus a rewrite-oracle row where ``turns`` (the encoded rows) have rewrites."""
    rewrites = turn_rewrites(turns)
    if rewrites is None:
        return table
    rows = table.rows | {REWRITE_ORACLE: rewrite_oracle(encoded, rewrites, encoder)}
    return table.model_copy(update={"rows": rows})
