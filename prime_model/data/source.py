"""Where the turns come from: the generated sample set, a user file or several files, one config."""

from __future__ import annotations

import hashlib
import json
from typing import Literal, Self

import pandas as pd
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig
from prime_model.data.readers import read_turns
from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.data.schema import COLUMNS, EXTRA_COLUMNS
from prime_model.data.sources import FileSource, check_unique_labels, read_sources


class DataSource(FrozenConfig):
    """``kind: sample`` (generated, offline), ``kind: file`` (``path`` + ``format``) or
    ``kind: files`` (``sources``: a list of files, each split on its own, see ``sources.py``)."""

    kind: Literal["sample", "file", "files"] = "sample"
    sample: SampleConfig = Field(default_factory=SampleConfig)
    path: str | None = Field(None, description="turn file, for kind: file")
    format: str | None = Field(None, description="jsonl, parquet, csv, qrecc, topiocqa, canard")
    target: str = Field(
        "passage", description="for qrecc/topiocqa/canard: passage, answer, rewrite"
    )
    require_target: bool = Field(True, description="False: inputs for prediction, no target")
    sources: tuple[FileSource, ...] = Field((), description="for kind: files")
    max_train_chars: int | None = Field(
        None, gt=0, description="for kind: files: drop longer training history + query texts"
    )

    @model_validator(mode="after")
    def _file_needs_a_path(self) -> Self:
        if self.kind == "file" and not self.path:
            raise ValueError("kind: file needs a path to a turn file")
        if self.kind == "files":
            if not self.sources:
                raise ValueError("kind: files needs sources: a list of {path, format, target}")
            check_unique_labels(self.sources)
        elif self.sources or self.max_train_chars is not None:
            raise ValueError(f"sources and max_train_chars need kind: files (got {self.kind})")
        return self


def load_turns(source: DataSource) -> pd.DataFrame:
    if source.kind == "sample":
        return generate_sample(source.sample)
    if source.kind == "files":
        return read_sources(source.sources)
    assert source.path is not None  # noqa: S101 - guaranteed by the validator
    return read_turns(
        source.path, source.format, target=source.target, require_target=source.require_target
    )


def fingerprint_turns(turns: pd.DataFrame) -> str:
    """sha256 of the table's content (row order included): equal fingerprints, equal data.

    The optional columns (roles, source, rewrite) count where present: roles change what the
    model reads, so a fingerprint without them would serve a stale cached model; a table of
    inputs for prediction has no target columns."""
    digest = hashlib.sha256()
    columns = [c for c in (*COLUMNS, *EXTRA_COLUMNS) if c in turns.columns]
    for row in turns[columns].itertuples(index=False):
        digest.update(json.dumps(list(row), default=str).encode("utf-8"))
    return digest.hexdigest()
