"""Judge a predictor against baselines that need no predictor, on the same turns and corpus.

A predictor is only worth training if it retrieves better than what is free: the query's own
embedding (``query-only``), history + query embedded as one text by the Y-Encoder
(``concat-text``) and the normalised mean of the turn embeddings (``mean-of-turns``). Every system
is scored against the same corpus (the unique targets of the turns) with the same gold items, and
the results are reported overall and split into first turns (no history: context cannot help)
and later turns (where it should).
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from prime_model.data.schema import truncate_histories
from prime_model.encoders import YEncoder, check_encoder_fits
from prime_model.encoding import EncodedTurns
from prime_model.errors import ConfigError, DataValidationError
from prime_model.metrics import gold_ranks, metrics_from_ranks
from prime_model.model import EmbeddingPredictor

MODEL: Final = "model"
BASELINES: Final = ("query-only", "concat-text", "mean-of-turns")
SYSTEMS: Final = (MODEL, *BASELINES)
HEADLINE_METRIC: Final = "recall@10"  # picks the best baseline and the headline gain
CONCAT_SEPARATOR: Final = " "  # history turns and query, oldest first, as one text
DEFAULT_BATCH_SIZE: Final = 256  # when the model sets no max_batch_size
FIRST_TURN: Final = "first turn"
LATER_TURNS: Final = "later turns"
_TURN_COLUMNS: Final = ("conversation_id", "turn", "history", "query")


class RetrievalResults(BaseModel):
    """Metrics of every system on one set of turns, and how the model compares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_turns: int = Field(ge=0)
    rows: dict[str, dict[str, float]] = Field(description="system -> metric -> value")
    best_baseline: str = Field(description=f"the baseline with the highest {HEADLINE_METRIC}")
    relative_gain: float | None = Field(
        description=f"model {HEADLINE_METRIC} / best baseline's - 1; None if that is 0"
    )
    relative_gains: dict[str, float | None] = Field(
        description="per metric: model / the strongest baseline on that metric - 1"
    )

    @property
    def metrics(self) -> list[str]:
        """Metric names, in the order the metrics module returns them."""
        return list(self.rows[MODEL])

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-friendly data (None for an undefined gain)."""
        return self.model_dump(mode="json")


class EvaluationTable(RetrievalResults):
    """The model and every baseline on all turns, plus a first-turn / later-turn breakdown."""

    corpus_size: int = Field(ge=0, description="unique targets every system retrieves from")
    encoder_name: str
    max_context_length: int = Field(ge=1, description="context turns each system could read")
    breakdown: dict[str, RetrievalResults] = Field(
        default_factory=dict, description=f"'{FIRST_TURN}' (turn 0) and '{LATER_TURNS}'"
    )

    def to_markdown(self) -> str:
        """A systems × metrics table, the gain line and the breakdown, for a terminal or a PR."""
        from prime_model.evaluation_report import render_markdown  # noqa: PLC0415 - cycle

        return render_markdown(self)

    def to_html(self) -> str:
        """A self-contained page (inline CSS and SVG, no scripts) with tables and bar charts."""
        from prime_model.evaluation_report import render_html  # noqa: PLC0415 - cycle

        return render_html(self)


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
                part = slice(start, start + size)
                predicted = model(
                    encoded.context[part].to(device),
                    encoded.query[part].to(device),
                    encoded.context_mask[part].to(device),
                )
                chunks.append(predicted.float().cpu())
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


def query_only(encoded: EncodedTurns) -> Tensor:
    """Baseline: retrieve with the query's own embedding, as if there were no conversation."""
    return encoded.query.float()


def mean_of_turns(encoded: EncodedTurns) -> Tensor:
    """Baseline: the L2-normalised mean of the real context turns' embeddings and the query's."""
    mask = encoded.context_mask.unsqueeze(-1).float()  # (M, N, 1)
    total = (encoded.context.float() * mask).sum(1) + encoded.query.float()  # (M, D)
    return F.normalize(total / (mask.sum(1) + 1), dim=-1)


def concat_texts(turns: pd.DataFrame, max_context_length: int) -> list[str]:
    """History (its ``max_context_length`` most recent turns) and query joined by a space."""
    kept = truncate_histories(turns, max_context_length)
    return [
        CONCAT_SEPARATOR.join([*history, query])
        for history, query in zip(kept["history"], kept["query"], strict=True)
    ]


def concat_text(turns: pd.DataFrame, encoder: YEncoder, max_context_length: int) -> Tensor:
    """Baseline: the Y-Encoder's embedding of history + query as one text (M×D).

    An encoder with ``fit_to_limit`` (:class:`SentenceTransformerEncoder`) first drops the oldest
    tokens of texts over its token limit, so the query is never the part that is cut.
    """
    texts = concat_texts(turns, max_context_length)
    fit = getattr(encoder, "fit_to_limit", None)
    if callable(fit):
        texts = list(fit(texts))
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique)
    if vectors.shape != (len(unique), encoder.dim):
        raise DataValidationError(
            f"Y-Encoder {encoder.name!r} returned shape {vectors.shape} for {len(unique)} "
            f"texts; expected ({len(unique)}, {encoder.dim})"
        )
    row = {text: i for i, text in enumerate(unique)}
    return torch.from_numpy(vectors).float()[[row[t] for t in texts]]


def evaluate(
    model: EmbeddingPredictor,
    encoded: EncodedTurns,
    turns: pd.DataFrame,
    encoder: YEncoder,
    *,
    max_context_length: int | None = None,
) -> EvaluationTable:
    """Score the model and every baseline on ``encoded`` (made from ``turns`` by ``encoder``).

    ``turns`` must be the rows that were encoded, in the same order, and ``max_context_length``
    the value they were encoded with (default: the model's), so concat-text reads the same
    history turns as the model.
    """
    check_dims(model, encoded, encoder)
    n_max = model.config.max_context_length if max_context_length is None else max_context_length
    _check_columns(turns)
    kept = truncate_histories(turns, n_max)  # once: truncating kept again is a silent no-op
    check_same_turns(encoded, kept, n_max)
    predictions = {
        MODEL: predict_encoded(model, encoded),
        "query-only": query_only(encoded),
        "concat-text": concat_text(kept, encoder, n_max),
        "mean-of-turns": mean_of_turns(encoded),
    }
    ranks = {
        name: gold_ranks(vectors, encoded.corpus, encoded.target_index)
        for name, vectors in predictions.items()
    }
    first = encoded.turns == 0
    groups = {FIRST_TURN: first, LATER_TURNS: ~first}
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
