from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.monitor.retraining import combine_turns as combine
from steps.materializers import TurnTableMaterializer


@step(output_materializers={"combined_turns": TurnTableMaterializer})
def combine_turns(
    reference_turns: pd.DataFrame, new_turns: pd.DataFrame
) -> Annotated[pd.DataFrame, "combined_turns"]:
    """What the production model learned from plus the new turns: the retraining set."""
    return combine(reference_turns, new_turns)
