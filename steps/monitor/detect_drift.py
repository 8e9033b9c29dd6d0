from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.types import HTMLString

from prime_model.encode.encoding import EncodedTurns
from prime_model.monitor.drift import DriftConfig, DriftResult
from prime_model.monitor.drift import detect_drift as detect
from prime_model.monitor.drift_html import render_drift_html
from steps._metadata import log_step_metadata


@step
def detect_drift(
    reference_encoded: EncodedTurns,
    reference_turns: pd.DataFrame,
    current_encoded: EncodedTurns,
    current_turns: pd.DataFrame,
    config: DriftConfig,
) -> tuple[
    Annotated[DriftResult, "drift"],
    Annotated[HTMLString, "drift_report"],
    Annotated[HTMLString, "drift_report_full"],
]:
    """Evidently's embedding drift between the production model's training inputs and new ones.

    ``drift_report`` is a script-free summary (the dashboard's frame runs no scripts, so
    Evidently's page is blank there); ``drift_report_full`` is Evidently's page, to download.
    """
    result, html = detect(
        reference_encoded, reference_turns, current_encoded, current_turns, config
    )
    log_step_metadata(
        {"drift_score": result.score, "drifted": result.drifted, "drift": result.model_dump()},
        artifact_name="drift",
        infer_artifact=True,
    )
    return result, HTMLString(render_drift_html(result)), HTMLString(html)
