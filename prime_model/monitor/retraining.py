"""When new turns justify retraining, and what the retrained model learns from."""

from __future__ import annotations

from typing import Final

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import FrozenConfig
from prime_model.data.schema import COLUMNS, EXTRA_COLUMNS, SOURCE_COLUMN
from prime_model.data.source import DataSource
from prime_model.data.sources import FileSource
from prime_model.monitor.drift import DriftResult

NEW_SOURCE: Final = "new"  # the source name of new turns that come from one file or the sample


class RetrainingConfig(FrozenConfig):
    on_drift: bool = Field(True, description="retrain when the inputs drifted")
    min_new_rows: int | None = Field(
        5000, gt=0, description="retrain when this many new turns arrived; None: never by size"
    )


class RetrainingDecision(BaseModel):
    """Retrain or stop early, and why: stored with the run either way."""

    model_config = ConfigDict(frozen=True)

    retrain: bool
    reasons: list[str]
    new_rows: int
    drift_score: float


def decide_retraining(
    drift: DriftResult, new_rows: int, config: RetrainingConfig
) -> RetrainingDecision:
    """Retrain on drift (if enabled) or on enough new data; otherwise say what fell short."""
    reasons = []
    if config.on_drift and drift.drifted:
        reasons.append(f"input drift: {drift.describe()}")
    if config.min_new_rows is not None and new_rows >= config.min_new_rows:
        reasons.append(f"{new_rows} new turns >= min_new_rows={config.min_new_rows}")
    retrain = bool(reasons)
    if not retrain:
        size = (
            f"{new_rows} new turns < min_new_rows={config.min_new_rows}"
            if config.min_new_rows is not None
            else "retraining by size is off"
        )
        drift_part = drift.describe() if config.on_drift else "drift does not trigger retraining"
        reasons = [f"{drift_part}; {size}"]
    return RetrainingDecision(
        retrain=retrain, reasons=reasons, new_rows=new_rows, drift_score=drift.score
    )


def combine_turns(reference: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Reference turns plus new turns; a conversation present in both is taken from the new data.

    New data is the fresher copy of a conversation, and keeping both would duplicate
    ``(conversation_id, turn)`` keys, which validation rejects. Roles, sources and rewrites are
    kept (a model that reads roles must not retrain without them); when the reference was read
    from several sources, new turns without a source are tagged :data:`NEW_SOURCE`.
    """
    kept = reference[~reference["conversation_id"].isin(set(new["conversation_id"]))]
    if SOURCE_COLUMN in reference.columns and SOURCE_COLUMN not in new.columns:
        new = new.assign(**{SOURCE_COLUMN: NEW_SOURCE})
    extra = [c for c in EXTRA_COLUMNS if c in kept.columns or c in new.columns]
    columns = [*COLUMNS, *extra]
    return pd.concat(
        [kept.reindex(columns=columns), new.reindex(columns=columns)], ignore_index=True
    )


def retraining_data(reference: DataSource | None, new: DataSource) -> DataSource | None:
    """How to split the combined turns: per source, as production was, when it was read from
    several files (a validation-only source, weight 0, must stay out of training); None: as one
    table. New turns come under their own sources, or :data:`NEW_SOURCE` with the run's
    fractions; a source in both takes the new data's settings."""
    if reference is None or reference.kind != "files":
        return None
    if new.kind == "files":
        fresh = list(new.sources)
    else:
        fresh = [FileSource(path=new.path or new.kind, format=new.format, name=NEW_SOURCE)]
    labels = {source.label for source in fresh}
    sources = [s for s in reference.sources if s.label not in labels] + fresh
    return reference.model_copy(update={"sources": tuple(sources)})
