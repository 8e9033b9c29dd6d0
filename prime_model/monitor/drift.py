"""Input drift between the turns a model was trained on and new turns, measured by Evidently.

The predictor sees embeddings, so drift is measured where it matters: Evidently's embedding-drift
methods on the query embeddings and on the mean context embedding (the turns before the query),
plus plain column drift on query length and history length. Only embedding drift decides; the
column drifts are reported to explain it. The HTML summary of a result is :mod:`.drift_html`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from torch import Tensor

from prime_model.config import FrozenConfig

if TYPE_CHECKING:
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import DriftMethod
from prime_model.errors import DataValidationError

logger = logging.getLogger(__name__)

DriftMethodName = Literal["model", "mmd", "distance", "ratio"]
EMBEDDINGS = ("query", "context")
COLUMNS = ("query_chars", "history_turns")
MIN_CONVERSATIONS = 10  # fewer and the drift classifier's ROC AUC is noise


class EncodedInputs(Protocol):
    """What drift reads from encoded turns
    (:class:`~prime_model.encode.encoding.EncodedTurns` fits)."""

    @property
    def query(self) -> Tensor: ...
    @property
    def context(self) -> Tensor: ...
    @property
    def context_mask(self) -> Tensor: ...


class DriftConfig(FrozenConfig):
    """How drift is measured; the defaults keep Evidently's t-SNE plots to seconds."""

    method: DriftMethodName = Field(
        "model",
        description="Evidently embedding drift method: model (a classifier tells reference from "
        "current; score = ROC AUC), mmd, distance (between means) or ratio (drifted components)",
    )
    threshold: float | None = Field(
        None, gt=0.0, description="score above which embeddings drifted; None = the method's own"
    )
    bootstrap: bool = Field(
        True, description="compare the score with its bootstrap quantile instead of threshold"
    )
    pca_components: int | None = Field(
        None, gt=0, description="reduce embeddings to this many PCA components first"
    )
    max_rows: int = Field(
        500,
        ge=20,
        description="conversations sampled per side (one turn each): the report's "
        "t-SNE is quadratic in it",
    )
    column_p_value: float = Field(0.05, gt=0.0, lt=1.0, description="K-S test level for columns")
    seed: int = Field(0, ge=0)


class DriftScore(BaseModel):
    """One Evidently drift measurement."""

    name: str
    score: float
    drifted: bool
    method: str
    test: str = Field("", description="what the score is and how it is judged, in words")
    threshold: float | None = Field(
        None, description="drifted beyond this; None when a bootstrap quantile decides"
    )


class DriftResult(BaseModel):
    """The decision and its evidence (Evidently's HTML report travels beside it)."""

    drifted: bool
    score: float = Field(description="the largest embedding drift score")
    embeddings: list[DriftScore]
    columns: list[DriftScore]
    reference_rows: int
    current_rows: int

    def describe(self) -> str:
        """The decision first (embeddings decide), then what else moved."""
        moved = [s.name for s in self.embeddings if s.drifted]
        verdict = f"embedding drift in {', '.join(moved)}" if moved else "no embedding drift"
        columns = [s.name for s in self.columns if s.drifted]
        also = f"; column drift in {', '.join(columns)}" if columns else ""
        return (
            f"{verdict} (score {self.score:.3f}, {self.current_rows} vs "
            f"{self.reference_rows} conversations){also}"
        )


@dataclass(frozen=True)
class _Features:
    frame: pd.DataFrame
    embedding_columns: dict[str, list[str]]


def drift_features(encoded: EncodedInputs, turns: pd.DataFrame) -> _Features:
    """Query embedding, mean context embedding (zeros without history) and two text lengths."""
    if len(turns) != encoded.query.shape[0]:
        raise DataValidationError(
            f"{len(turns)} turns but {encoded.query.shape[0]} encoded rows; expected the table "
            "the embeddings were encoded from"
        )
    query = encoded.query.float().numpy()
    mask = encoded.context_mask.unsqueeze(-1).float()
    counts = mask.sum(dim=1).clamp(min=1.0)
    context = ((encoded.context.float() * mask).sum(dim=1) / counts).numpy()
    dim = query.shape[1]
    names = {name: [f"{name}_{i}" for i in range(dim)] for name in EMBEDDINGS}
    frame = pd.concat(
        [
            pd.DataFrame(query, columns=names["query"]),
            pd.DataFrame(context, columns=names["context"]),
            pd.DataFrame(
                {
                    "query_chars": turns["query"].str.len().to_numpy(dtype=np.float64),
                    "history_turns": turns["history"].map(len).to_numpy(dtype=np.float64),
                    "conversation_id": turns["conversation_id"].to_numpy(),
                }
            ),
        ],
        axis=1,
    )
    return _Features(frame, names)


def detect_drift(
    reference: EncodedInputs,
    reference_turns: pd.DataFrame,
    current: EncodedInputs,
    current_turns: pd.DataFrame,
    config: DriftConfig | None = None,
) -> tuple[DriftResult, str]:
    """The decision and Evidently's HTML report, on a sample of each side.

    Drifted when any embedding drifted.
    """
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415 - heavy import
    from evidently.metrics import EmbeddingsDrift, ValueDrift  # noqa: PLC0415

    config = config or DriftConfig()
    if reference.query.shape[1] != current.query.shape[1]:
        raise DataValidationError(
            f"reference embeddings are {reference.query.shape[1]}-d, current "
            f"{current.query.shape[1]}-d; expected both from the same Y-Encoder"
        )
    ref = _sample(drift_features(reference, reference_turns).frame, config)
    features = drift_features(current, current_turns)
    cur = _sample(features.frame, config)
    definition = DataDefinition(
        embeddings=features.embedding_columns, numerical_columns=list(COLUMNS)
    )
    method = _method(config)
    test, threshold = _embedding_test(config, method)
    embeddings: list[DriftScore] = []
    for name, names in features.embedding_columns.items():
        # the method itself decides (its bootstrap quantile); the report shows the same score
        score, drifted, _ = method(cur[names].copy(), ref[names].copy())
        embeddings.append(
            DriftScore(
                name=name,
                score=float(score),
                drifted=bool(drifted),
                method=config.method,
                test=test,
                threshold=threshold,
            )
        )
    metrics = [
        EmbeddingsDrift(embeddings_name=name, drift_method=method) for name in EMBEDDINGS
    ] + [ValueDrift(column=name, threshold=config.column_p_value) for name in COLUMNS]
    snapshot = Report(metrics).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    p_values = [float(m["value"]) for m in snapshot.dict()["metrics"]][len(EMBEDDINGS) :]
    column_drift = [
        DriftScore(
            name=name,
            score=v,
            drifted=v < config.column_p_value,
            method="K-S p-value",
            test="K-S test p-value; drifted below the threshold",
            threshold=config.column_p_value,
        )
        for name, v in zip(COLUMNS, p_values, strict=True)
    ]
    result = DriftResult(
        drifted=any(s.drifted for s in embeddings),
        score=max(s.score for s in embeddings),
        embeddings=embeddings,
        columns=column_drift,
        reference_rows=len(ref),
        current_rows=len(cur),
    )
    logger.info("drift check: %s", result.describe())
    return result, snapshot.get_html_str(as_iframe=False)


def _sample(frame: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    """One random turn per conversation, then at most ``max_rows``.

    Turns of one conversation share their context, so with several per conversation a classifier
    learns to recognise conversations and reports drift between two halves of the same data.
    """
    one = frame.groupby("conversation_id", sort=False).sample(n=1, random_state=config.seed)
    if len(one) < MIN_CONVERSATIONS:
        raise DataValidationError(
            f"{len(one)} conversations to check for drift; expected at least {MIN_CONVERSATIONS}"
        )
    if len(one) > config.max_rows:
        one = one.sample(config.max_rows, random_state=config.seed)
    return one.drop(columns="conversation_id").reset_index(drop=True)


_SCORES: Final = {
    "model": "ROC AUC of a classifier telling current from reference",
    "mmd": "maximum mean discrepancy",
    "distance": "euclidean distance between the means",
    "ratio": "share of drifted components",
}


def _embedding_test(config: DriftConfig, method: DriftMethod) -> tuple[str, float | None]:
    """The test in words, and its threshold (None when a bootstrap quantile decides)."""
    if config.bootstrap and config.method != "ratio":
        quantile = float(getattr(method, "quantile_probability", 0.95))
        return (
            f"{_SCORES[config.method]}; drifted above its bootstrap {quantile:.0%} quantile",
            None,
        )
    return f"{_SCORES[config.method]}; drifted above the threshold", float(
        getattr(method, "threshold")  # noqa: B009 - every method has one, the base class not
    )


def _method(config: DriftConfig) -> DriftMethod:
    from evidently.metrics.embeddings import (  # noqa: PLC0415
        DistanceDriftMethod,
        MMDDriftMethod,
        ModelDriftMethod,
        RatioDriftMethod,
    )

    options: dict[str, object] = {"pca_components": config.pca_components}
    if config.threshold is not None:
        options["threshold"] = config.threshold
    if config.method in ("model", "mmd", "distance"):
        options["bootstrap"] = config.bootstrap
    kinds = {
        "model": ModelDriftMethod,
        "mmd": MMDDriftMethod,
        "distance": DistanceDriftMethod,
        "ratio": RatioDriftMethod,
    }
    return kinds[config.method](**options)
