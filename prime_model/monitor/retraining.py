"""When new turns justify retraining, and what the retrained model learns from."""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import FrozenConfig
from prime_model.data.schema import COLUMNS
from prime_model.monitor.drift import DriftResult


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
    ``(conversation_id, turn)`` keys, which validation rejects.
    """
    kept = reference[~reference["conversation_id"].isin(set(new["conversation_id"]))]
    return pd.concat([kept[list(COLUMNS)], new[list(COLUMNS)]], ignore_index=True)
