"""Batch prediction: turns (no target needed) -> one predicted embedding per turn, as Parquet.

Any backend with ``predict(context, query, context_mask) -> numpy`` does the math (eager, compiled
or ONNX Runtime, see :func:`prime_model.runtime.optimized.create_predictor`); this module only
encodes the inputs once per unique text and keeps rows and ids aligned.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from torch import Tensor

from prime_model.atomic import atomic_file, write_error
from prime_model.config import PredictorConfig
from prime_model.data.readers import parquet_frame
from prime_model.data.schema import ROLE_COLUMN, ROLES, role_ids, truncate_histories
from prime_model.encode.encoders import YEncoder
from prime_model.encode.texts import TextTable, fitted_concat_texts
from prime_model.errors import DataValidationError
from prime_model.files import check_regular_file
from prime_model.text import shown

logger = logging.getLogger(__name__)

EMBEDDING_COLUMN = "embedding"


DEFAULT_BATCH_SIZE = 32


class Predicts(Protocol):
    """The inference interface every backend offers. ``context_roles`` and ``concat`` are passed
    as keywords, and only to a model whose config reads them, so a plain model needs neither."""

    @property
    def config(self) -> PredictorConfig: ...

    def predict(
        self,
        context: np.ndarray | Tensor,
        query: np.ndarray | Tensor,
        context_mask: np.ndarray | Tensor,
    ) -> np.ndarray: ...


def predict_turns(
    turns: pd.DataFrame,
    predictor: Predicts,
    encoder: YEncoder,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """``conversation_id``, ``turn`` and ``embedding`` (float32 list) for every turn, in order.

    Histories keep the model's ``max_context_length`` most recent turns, as in training; batches
    are at most ``batch_size`` and never above the model's ``max_batch_size``. A model with
    ``role_embedding`` gets the ``history_roles`` column's roles (unknown without it); one with
    ``concat_input`` gets history + query embedded as one text, fitted to the encoder's token
    limit exactly as in training.
    """
    if turns.empty:
        raise DataValidationError("no turns to predict; expected at least one row")
    if batch_size is not None and batch_size < 1:
        raise DataValidationError(f"batch_size={batch_size}; expected a positive integer")
    config = predictor.config
    limit = config.max_batch_size or DEFAULT_BATCH_SIZE
    batch_size = min(batch_size or limit, limit)
    kept = truncate_histories(turns, config.max_context_length)
    histories: list[list[str]] = kept["history"].tolist()
    queries: list[str] = kept["query"].tolist()
    joined = fitted_concat_texts(kept, encoder) if config.concat_input else []
    table = TextTable([t for h in histories for t in h] + queries + joined, encoder)
    roles = _role_table(kept, config.max_context_length) if config.role_embedding else None
    chunks = []
    for start in range(0, len(kept), batch_size):
        stop = start + batch_size
        context, mask = table.gather_histories(histories[start:stop])
        query = table.gather(queries[start:stop])
        extra: dict[str, np.ndarray] = {}
        if roles is not None:
            extra["context_roles"] = roles[start:stop, : mask.shape[1]]
        if config.concat_input:
            extra["concat"] = table.gather(joined[start:stop]).numpy()
        chunks.append(predictor.predict(context.numpy(), query.numpy(), mask.numpy(), **extra))
    embeddings = np.concatenate(chunks).astype(np.float32, copy=False)
    logger.info("predicted %d embeddings of dimension %d", *embeddings.shape)
    return pd.DataFrame(
        {
            "conversation_id": kept["conversation_id"].to_numpy(),
            "turn": kept["turn"].to_numpy(),
            EMBEDDING_COLUMN: list(embeddings),
        }
    )


def _role_table(kept: pd.DataFrame, width: int) -> np.ndarray | None:
    """M×width role ids (1 user, 2 system, 0 unknown/padding) from ``history_roles``, aligned
    with the histories as ``gather_histories`` lays them out (oldest first, padding at the
    end); None without the column: every role unknown, as the model reads no roles."""
    if ROLE_COLUMN not in kept.columns:
        return None
    ids = np.zeros((len(kept), width), dtype=np.int64)
    for row, (roles, history) in enumerate(zip(kept[ROLE_COLUMN], kept["history"], strict=True)):
        try:
            known = role_ids(None if roles is None else list(roles), len(history))
        except (TypeError, ValueError):  # a frame that did not pass through conform_frame
            known = []
        if len(known) != len(history):
            raise DataValidationError(
                f"row {row}: {ROLE_COLUMN} is {shown(roles)} for {len(history)} history entries; "
                f"expected one of {'/'.join(ROLES)} per entry, or null"
            )
        ids[row, : len(history)] = known
    return ids


def save_embeddings(predictions: pd.DataFrame, path: str | Path) -> Path:
    """Parquet with a float32 list column (readable by pandas, Arrow, DuckDB, Spark); atomic."""
    path = Path(path)
    try:
        with atomic_file(path) as staging:
            predictions.to_parquet(staging, index=False)
    except OSError as exc:  # a parent that is a file, no permission, a full disk
        raise write_error(path, exc) from None
    return path


def load_embeddings(path: str | Path) -> pd.DataFrame:
    """The frame :func:`save_embeddings` wrote; ``embedding`` cells are float32 arrays.

    Every cell must be a list of numbers, all of one length: a string, null or ragged cell is
    a :class:`DataValidationError` naming its row, not a numpy ``ValueError``.
    """
    path = Path(path)
    check_regular_file(path, "embeddings file", DataValidationError)
    frame = parquet_frame(path, path, "embeddings file", "the Parquet save_embeddings writes")
    if EMBEDDING_COLUMN not in frame:
        raise DataValidationError(f"{path}: no {EMBEDDING_COLUMN!r} column; got {list(frame)}")
    vectors = [_vector(v, path, row) for row, v in enumerate(frame[EMBEDDING_COLUMN])]
    dims = sorted({v.shape[0] for v in vectors})
    if len(dims) > 1:
        raise DataValidationError(
            f"{path}: {EMBEDDING_COLUMN!r} cells have lengths {dims[:5]}; expected one dimension"
        )
    frame[EMBEDDING_COLUMN] = pd.Series(vectors, index=frame.index, dtype=object)
    return frame


def _vector(cell: object, path: Path, row: int) -> np.ndarray:
    expected = "a list of numbers (float32)"
    if isinstance(cell, str | bytes) or cell is None:
        raise DataValidationError(
            f"{path}: row {row} column {EMBEDDING_COLUMN!r} is {shown(cell)}; expected {expected}"
        )
    try:
        vector = np.asarray(cell, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"{path}: row {row} column {EMBEDDING_COLUMN!r} is {shown(cell)}; expected {expected}"
        ) from None
    if vector.ndim != 1:
        raise DataValidationError(
            f"{path}: row {row} column {EMBEDDING_COLUMN!r} has shape {vector.shape}; "
            f"expected {expected}"
        )
    return vector
