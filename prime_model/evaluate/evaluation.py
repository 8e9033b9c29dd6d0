"""Judge a predictor against baselines that need no predictor, on the same turns and corpus.

A predictor is only worth training if it retrieves better than what is free: the query's own
embedding (``query-only``), history + query embedded as one text by the Y-Encoder
(``concat-text``), normalize(query + 0.5 · concat-text) (``query+concat``) and the normalised mean
of the turn embeddings (``mean-of-turns``). Every system
is scored against the same corpus (the unique targets of the turns) with the same gold items, and
the results are reported overall and split into first turns (no history: context cannot help)
and later turns (where it should).
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import torch
from torch import Tensor

from prime_model.data.schema import ROLES, truncate_histories
from prime_model.encode.encoders import YEncoder, check_encoder_fits
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import ConfigError, DataValidationError
from prime_model.evaluate.baselines import (
    concat_text,
    mean_of_turns,
    query_concat_mix,
    query_only,
)
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.evaluate.report import (
    FIRST_TURN,
    HEADLINE_METRIC,
    LATER_TURNS,
    MODEL,
    EvaluationTable,
    RetrievalResults,
)
from prime_model.model import EmbeddingPredictor

DEFAULT_BATCH_SIZE: Final = 256  # when the model sets no max_batch_size
_TURN_COLUMNS: Final = ("conversation_id", "turn", "history", "query")


def predict_encoded(
    model: EmbeddingPredictor, encoded: EncodedTurns, batch_size: int | None = None
) -> Tensor:
    """The model's predictions (M×D_out, float32, on the CPU) for every encoded turn.

    Runs in chunks (``batch_size``, else the model's max_batch_size, else 256) on the model's
    device in eval mode, and puts the model back in the mode it was in.
    """
    size = _batch_size(model, batch_size)
    device = model.pred_token.device
    chunks: list[Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), size):
                rows = encoded.rows(torch.arange(start, min(start + size, len(encoded))))
                inputs = {k: None if v is None else v.to(device) for k, v in rows.items()}
                if not model.config.concat_input:
                    inputs["concat"] = None
                chunks.append(model(**inputs).float().cpu())
    finally:
        model.train(was_training)
    if not chunks:
        return torch.empty(0, model.config.output_dim)
    return torch.cat(chunks)


def _batch_size(model: EmbeddingPredictor, batch_size: int | None) -> int:
    limit = model.config.max_batch_size
    if batch_size is None:
        return limit or DEFAULT_BATCH_SIZE
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and batch_size > limit:
        raise ConfigError(f"batch_size={batch_size} exceeds the model's max_batch_size={limit}")
    return batch_size


def evaluate(
    model: EmbeddingPredictor,
    encoded: EncodedTurns,
    turns: pd.DataFrame,
    encoder: YEncoder,
    *,
    max_context_length: int | None = None,
    by_history: bool = False,
) -> EvaluationTable:
    """Score the model and every baseline on ``encoded`` (made from ``turns`` by ``encoder``).

    ``turns`` must be the rows that were encoded, in the same order, and ``max_context_length``
    the value they were encoded with (default: the model's), so concat-text reads the same
    history turns as the model. ``by_history`` adds breakdowns by history length and by whether
    the history holds system turns.
    """
    check_dims(model, encoded, encoder)
    n_max = model.config.max_context_length if max_context_length is None else max_context_length
    _check_columns(turns)
    kept = truncate_histories(turns, n_max)  # once: truncating kept again is a silent no-op
    check_same_turns(encoded, kept, n_max)
    concat = encoded.concat if encoded.concat is not None else concat_text(kept, encoder, n_max)
    predictions = {
        MODEL: predict_encoded(model, encoded),
        "query-only": query_only(encoded),
        "concat-text": concat.float(),
        "query+concat": query_concat_mix(encoded.query, concat),
        "mean-of-turns": mean_of_turns(encoded),
    }
    ranks = {
        name: gold_ranks(vectors, encoded.corpus, encoded.target_index)
        for name, vectors in predictions.items()
    }
    # by what the model could read, not by the turn number: datasets number turns differently,
    # and a first question may come with a title or section as context (CANARD)
    first = ~encoded.context_mask.any(dim=1)
    groups = {FIRST_TURN: first, LATER_TURNS: ~first}
    if by_history:
        groups |= history_groups(encoded)
    overall = summarise(ranks)
    return EvaluationTable(
        **overall.model_dump(),
        corpus_size=int(encoded.corpus.shape[0]),
        encoder_name=encoder.name,
        max_context_length=n_max,
        breakdown={
            name: summarise({system: r[keep] for system, r in ranks.items()})
            for name, keep in groups.items()
            if bool(keep.any())
        },
    )


def history_groups(encoded: EncodedTurns) -> dict[str, Tensor]:
    """Turns by history length (1-4, 5+ entries) and by whether a system turn is in it."""
    length = encoded.context_mask.sum(1)
    groups = {"history 1-4": (length >= 1) & (length <= 4), "history 5+": length >= 5}
    if encoded.context_roles is not None:
        system = (encoded.context_roles == ROLES.index("system") + 1).any(1)
        groups |= {"with system turns": system, "user turns only": (length > 0) & ~system}
    return groups


def summarise(ranks: dict[str, Tensor]) -> RetrievalResults:
    """Metrics per system from its gold ranks, the best baseline and the model's gains."""
    rows = {name: metrics_from_ranks(r) for name, r in ranks.items()}
    baselines = [name for name in rows if name != MODEL]
    best = max(baselines, key=lambda name: rows[name][HEADLINE_METRIC])
    gains = {
        metric: _gain(rows[MODEL][metric], max(rows[name][metric] for name in baselines))
        for metric in rows[MODEL]
    }
    return RetrievalResults(
        num_turns=int(next(iter(ranks.values())).numel()),
        rows=rows,
        best_baseline=best,
        relative_gain=_gain(rows[MODEL][HEADLINE_METRIC], rows[best][HEADLINE_METRIC]),
        relative_gains=gains,
    )


def _gain(model: float, baseline: float) -> float | None:
    return None if baseline == 0 else model / baseline - 1


def check_dims(model: EmbeddingPredictor, encoded: EncodedTurns, encoder: YEncoder) -> None:
    """Turns, corpus, model and concat-text must all live in the encoder's embedding space."""
    if encoder.dim != encoded.dim:
        raise ConfigError(
            f"Y-Encoder {encoder.name!r} produces {encoder.dim}-d embeddings but the encoded "
            f"turns are {encoded.dim}-d (encoded with {encoded.encoder_name!r}); evaluate with "
            "the encoder that encoded them"
        )
    check_encoder_fits(encoder, model.config)


def check_same_turns(encoded: EncodedTurns, turns: pd.DataFrame, max_context_length: int) -> None:
    """``turns`` must be the encoded rows, in order, with histories cut the same way."""
    _check_columns(turns)
    if len(turns) != len(encoded):
        raise DataValidationError(
            f"turn table has {len(turns)} rows but the encoded turns have {len(encoded)}; "
            "expected the same rows in the same order"
        )
    given = zip(turns["conversation_id"].astype(str), turns["turn"], strict=True)
    encoded_keys = zip(encoded.conversation_ids, encoded.turns.tolist(), strict=True)
    for row, (got, want) in enumerate(zip(given, encoded_keys, strict=True)):
        if (got[0], int(got[1])) != want:
            raise DataValidationError(
                f"row {row}: turn table has (conversation {got[0]!r}, turn {int(got[1])}) but "
                f"the encoded turns have (conversation {want[0]!r}, turn {want[1]}); expected "
                "the same rows in the same order"
            )
    _check_history_lengths(encoded, turns, max_context_length)


def _check_columns(turns: pd.DataFrame) -> None:
    missing = [c for c in _TURN_COLUMNS if c not in turns.columns]
    if missing:
        raise DataValidationError(
            f"turn table lacks column(s) {missing}; expected {list(_TURN_COLUMNS)}, "
            f"got {list(turns.columns)}"
        )


def _check_history_lengths(
    encoded: EncodedTurns, turns: pd.DataFrame, max_context_length: int
) -> None:
    """Catch a max_context_length that differs from the one used to encode."""
    kept = truncate_histories(turns, max_context_length)["history"]
    real = encoded.context_mask.sum(1).tolist()
    for row, (history, count) in enumerate(zip(kept, real, strict=True)):
        if len(history) != count:
            raise DataValidationError(
                f"row {row}: the history keeps {len(history)} turns with max_context_length="
                f"{max_context_length} but the encoded context has {count}; pass the "
                "max_context_length the turns were encoded with"
            )
