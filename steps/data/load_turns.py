from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.data.source import DataSource
from prime_model.data.source import load_turns as load
from steps._metadata import log_step_metadata
from steps.materializers.fingerprinted_turns import FingerprintedTurnTableMaterializer


@step(output_materializers={"turns": FingerprintedTurnTableMaterializer})
def load_turns(source: DataSource) -> Annotated[pd.DataFrame, "turns"]:
    """Generate the sample set or read the user's file(s). The materializer records the
    fingerprint (the dataset version, also the artifact's content hash, so unchanged data hits
    the cache downstream), rows and conversations; this step adds where the data came from."""
    turns = load(source)
    log_step_metadata({"source": _described(source)}, artifact_name="turns", infer_artifact=True)
    return turns


def _described(source: DataSource) -> str:
    if source.kind == "sample":
        return source.kind
    if source.kind == "files":
        return ", ".join(f"{s.label}={s.path}" for s in source.sources)
    return str(source.path)
