from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.data.schema import without_extra_targets
from prime_model.data.source import DataSource
from prime_model.data.sources import split_sources
from prime_model.data.split import require_every_split, split_by_conversation
from steps.materializers import TurnTableMaterializer

SPLIT_NAMES = ("train_turns", "val_turns", "test_turns")
SplitOutputs = tuple[
    Annotated[pd.DataFrame, "train_turns"],
    Annotated[pd.DataFrame, "val_turns"],
    Annotated[pd.DataFrame, "test_turns"],
]


# one entry per output: ZenML hashes outputs in this order, and a bare class gave a random one
@step(output_materializers=dict.fromkeys(SPLIT_NAMES, TurnTableMaterializer))
def split_turns(  # noqa: PLR0917 - the run's split settings, by position as before
    turns: pd.DataFrame,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    data: DataSource | None = None,
    max_context_length: int = 10,
) -> SplitOutputs:
    """Split by conversation, so no conversation's history leaks across splits; ``data`` of
    ``kind: files`` splits each source on its own (the only way to train on extra targets). An
    empty part stops the run here, naming the fraction to change, rather than in encoding."""
    if data is not None and data.kind == "files":
        splits = split_sources(
            turns,
            data.sources,
            val_fraction,
            test_fraction,
            seed,
            max_train_chars=data.max_train_chars,
            max_context_length=max_context_length,
        )
    else:
        # extra targets train only where a files source asks (train_on_extra_target)
        splits = split_by_conversation(
            without_extra_targets(turns), val_fraction, test_fraction, seed
        )
    require_every_split(splits, val_fraction, test_fraction)
    return splits.train, splits.val, splits.test
