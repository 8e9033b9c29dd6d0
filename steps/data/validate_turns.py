from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import save_artifact, step
from zenml.types import HTMLString

from prime_model.data.validation import ValidationConfig, check_turns
from prime_model.errors import TurnValidationError
from steps._metadata import log_step_metadata
from steps.materializers import TurnTableMaterializer


@step(output_materializers={"validated_turns": TurnTableMaterializer})
def validate_turns(
    turns: pd.DataFrame, config: ValidationConfig
) -> tuple[Annotated[pd.DataFrame, "validated_turns"], Annotated[HTMLString, "validation_report"]]:
    """Run the Great Expectations suite; bad data stops the run with its report stored."""
    report = check_turns(turns, config)
    page = HTMLString(report.to_html())
    if not report.success:
        save_artifact(page, name="validation_report")  # kept although the step fails
        raise TurnValidationError(report.describe_failures(), report)
    log_step_metadata(
        {"validation": report.summary(), "truncated_histories": report.truncated_histories}
    )
    return turns, page
