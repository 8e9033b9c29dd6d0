"""Where the turns come from: the generated sample set or a user file, as one typed config."""

from __future__ import annotations

import hashlib
import json
from typing import Literal, Self

import pandas as pd
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig
from prime_model.data.readers import read_turns
from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.data.schema import COLUMNS


class DataSource(FrozenConfig):
    """``kind: sample`` (generated, offline) or ``kind: file`` (``path`` + ``format``)."""

    kind: Literal["sample", "file"] = "sample"
    sample: SampleConfig = Field(default_factory=SampleConfig)
    path: str | None = Field(None, description="turn file, for kind: file")
    format: str | None = Field(None, description="jsonl, parquet, csv, qrecc, topiocqa, canard")
    target: str = Field(
        "passage", description="for qrecc/topiocqa/canard: passage, answer, rewrite"
    )
    require_target: bool = Field(True, description="False: inputs for prediction, no target")

    @model_validator(mode="after")
    def _file_needs_a_path(self) -> Self:
        if self.kind == "file" and not self.path:
            raise ValueError("kind: file needs a path to a turn file")
        return self


def load_turns(source: DataSource) -> pd.DataFrame:
    if source.kind == "sample":
        return generate_sample(source.sample)
    assert source.path is not None  # noqa: S101 - guaranteed by the validator
    return read_turns(
        source.path, source.format, target=source.target, require_target=source.require_target
    )


def fingerprint_turns(turns: pd.DataFrame) -> str:
    """sha256 of the table's content (row order included): equal fingerprints, equal data."""
    digest = hashlib.sha256()
    for row in turns[list(COLUMNS)].itertuples(index=False):
        digest.update(json.dumps(list(row), default=str).encode("utf-8"))
    return digest.hexdigest()
