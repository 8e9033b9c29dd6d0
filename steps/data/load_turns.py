from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.data.source import DataSource, fingerprint_turns
from prime_model.data.source import load_turns as load
from steps._metadata import log_step_metadata
from steps.materializers import TurnTableMaterializer


@step(output_materializers={"turns": TurnTableMaterializer})
def load_turns(source: DataSource) -> Annotated[pd.DataFrame, "turns"]:
    """Generate the sample set or read a user file; the fingerprint names the dataset version."""
    turns = load(source)
    log_step_metadata(
        {
            "fingerprint": fingerprint_turns(turns),
            "rows": len(turns),
            "conversations": int(turns["conversation_id"].nunique()),
            "source": source.kind if source.kind == "sample" else str(source.path),
        },
        artifact_name="turns",
        infer_artifact=True,
    )
    return turns
