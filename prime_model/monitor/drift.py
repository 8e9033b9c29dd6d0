"""Input drift between the turns a model was trained on and new turns, measured by Evidently.

The predictor sees embeddings, so drift is measured where it matters: Evidently's embedding-drift
methods on the query embeddings and on the mean context embedding (the turns before the query),
plus plain column drift on query length and history length. Only embedding drift decides; the
column drifts are reported to explain it.
"""

from __future__ import annotations

import html
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


_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}
h1{font-size:1.4em}.wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.test{min-width:22em}
tr.drifted td{background:#fdecea}.verdict{border-left:6px solid;padding:.5em 1em}
.verdict.yes{border-color:#c62828;background:#fdf2f2}.verdict.no{border-color:#2e7d32;background:#f1f8f1}
svg text{font:12px system-ui,sans-serif;fill:#222}
"""
_BAR: Final = 160  # px of a score bar at the scale's maximum


def render_drift_html(result: DriftResult, full_report: str = "drift_report_full") -> str:
    """Per-column results as a table with inline SVG bars: renders where scripts are blocked.

    Evidently's own report needs JavaScript; it travels as the artifact named ``full_report``.
    """
    kind = "yes" if result.drifted else "no"
    rows = "".join(
        _drift_row(score, decides)
        for decides, scores in ((True, result.embeddings), (False, result.columns))
        for score in scores
    )
    head = "".join(
        f"<th>{c}</th>"
        for c in ("column", "kind", "test", "score", "", "threshold", "drifted", "decides")
    )
    title = "Input drift: current turns vs the production model's training turns"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"
        f'<p class="verdict {kind}"><strong>{"Drifted" if result.drifted else "No drift"}'
        f"</strong>: {_e(result.describe())}</p>"
        f"<p>{result.current_rows} current vs {result.reference_rows} reference conversations, "
        "one turn each. Embedding drift decides; column drift is shown to explain it.</p>"
        f'<div class="wrap"><table><tr>{head}</tr>{rows}</table></div>'
        f"<p>Evidently's full interactive report is the <code>{_e(full_report)}</code> "
        "artifact of this step (download it and open it in a browser: it needs scripts).</p>"
        "</body></html>\n"
    )


def _drift_row(score: DriftScore, decides: bool) -> str:
    kind = "embedding" if score.name in EMBEDDINGS else "column"
    threshold = "bootstrap" if score.threshold is None else f"{score.threshold:.3g}"
    scale = max(1.0, score.score, score.threshold or 0.0)
    width = min(max(score.score, 0.0), scale) / scale * _BAR
    colour = "#c62828" if score.drifted else "#2e7d32"
    mark = ""
    if score.threshold is not None:
        x = score.threshold / scale * _BAR
        mark = f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="16" stroke="#222"/>'
    bar = (
        f'<svg width="{_BAR + 2}" height="16" role="img" aria-label="score {score.score:.3f}">'
        f'<rect x="0" y="3" width="{_BAR}" height="10" fill="#eee"/>'
        f'<rect x="0" y="3" width="{width:.1f}" height="10" fill="{colour}"/>{mark}</svg>'
    )
    return (
        f'<tr class="{"drifted" if score.drifted else "ok"}"><td>{_e(score.name)}</td>'
        f'<td>{kind}</td><td class="test">{_e(score.test or score.method)}</td>'
        f'<td class="num">{score.score:.4f}</td><td>{bar}</td>'
        f'<td class="num">{_e(threshold)}</td><td>{"yes" if score.drifted else "no"}</td>'
        f"<td>{'yes' if decides else 'no'}</td></tr>"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
