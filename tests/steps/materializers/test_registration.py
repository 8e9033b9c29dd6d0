"""Turn-table materializers serve the steps that name them, never every DataFrame."""

from __future__ import annotations

import pandas as pd
import pytest
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.materializers.materializer_registry import materializer_registry

from steps.materializers import TurnTableMaterializer
from steps.materializers.fingerprinted_turns import FingerprintedTurnTableMaterializer


@pytest.mark.parametrize("ours", [TurnTableMaterializer, FingerprintedTurnTableMaterializer])
def test_a_plain_dataframe_does_not_get_a_turn_table_materializer(
    ours: type[BaseMaterializer],
) -> None:
    assert materializer_registry[pd.DataFrame] is not ours
