from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.data.split import split_by_conversation
from steps.materializers import TurnTableMaterializer

SPLIT_NAMES = ("train_turns", "val_turns", "test_turns")
SplitOutputs = tuple[
    Annotated[pd.DataFrame, "train_turns"],
    Annotated[pd.DataFrame, "val_turns"],
    Annotated[pd.DataFrame, "test_turns"],
]


# one entry per output: ZenML hashes outputs in this order, and a bare class gave a random one
@step(output_materializers=dict.fromkeys(SPLIT_NAMES, TurnTableMaterializer))
def split_turns(
    turns: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> SplitOutputs:
    """Split by conversation, so no conversation's history leaks across splits."""
    splits = split_by_conversation(turns, val_fraction, test_fraction, seed)
    return splits.train, splits.val, splits.test
