from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.monitor.drift import DriftResult
from prime_model.monitor.retraining import RetrainingConfig, RetrainingDecision
from prime_model.monitor.retraining import decide_retraining as decide
from steps._metadata import log_step_metadata


@step
def decide_retraining(
    drift: DriftResult, new_turns: pd.DataFrame, config: RetrainingConfig
) -> Annotated[RetrainingDecision, "retraining_decision"]:
    """Retrain on drift or enough new data; either way the reasons go on the model version."""
    decision = decide(drift, len(new_turns), config)
    log_step_metadata({"retraining": decision.model_dump()}, infer_model=True)
    return decision
