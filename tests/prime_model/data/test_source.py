from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prime_model import ConfigError
from prime_model.data import SampleConfig
from prime_model.data.source import DataSource, fingerprint_turns, load_turns
from tests.conftest import REPO_ROOT


def test_sample_source_is_deterministic() -> None:
    source = DataSource(sample=SampleConfig(num_conversations=5, seed=3))
    first, second = load_turns(source), load_turns(source)
    assert first["conversation_id"].nunique() == 5
    assert fingerprint_turns(first) == fingerprint_turns(second)
    other = load_turns(DataSource(sample=SampleConfig(num_conversations=5, seed=4)))
    assert fingerprint_turns(other) != fingerprint_turns(first)


def test_fingerprint_sees_any_change() -> None:
    turns = load_turns(DataSource(sample=SampleConfig(num_conversations=3)))
    changed = turns.copy()
    changed.loc[0, "history"] = ["something else"]
    assert fingerprint_turns(changed) != fingerprint_turns(turns)


def test_file_source_reads_the_file() -> None:
    path = REPO_ROOT / "examples/data/turns.jsonl"
    turns = load_turns(DataSource(kind="file", path=str(path)))
    expected = sum(1 for line in path.read_text().splitlines() if line.strip())
    assert len(turns) == expected


def test_file_source_needs_a_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind: file needs a path"):
        DataSource(kind="file")
    unknown: dict[str, Any] = {"kind": "s3"}
    with pytest.raises(ConfigError, match="kind"):
        DataSource(**unknown)
