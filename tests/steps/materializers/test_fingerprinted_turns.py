"""The loaded table's fingerprint is its content hash and its metadata, hashed once per save."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import steps.materializers.fingerprinted_turns as module
from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.data.source import fingerprint_turns
from steps.materializers.fingerprinted_turns import FingerprintedTurnTableMaterializer


def test_the_fingerprint_is_hashed_once_and_recorded_with_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = generate_sample(SampleConfig(num_conversations=4, seed=0))
    calls: list[int] = []

    def counting(frame: pd.DataFrame) -> str:
        calls.append(len(frame))
        return fingerprint_turns(frame)

    monkeypatch.setattr(module, "fingerprint_turns", counting)
    materializer = FingerprintedTurnTableMaterializer(str(tmp_path))
    content_hash = materializer.compute_content_hash(turns)
    metadata = materializer.extract_metadata(turns)
    assert content_hash == fingerprint_turns(turns)
    assert metadata["fingerprint"] == content_hash
    assert metadata["rows"] == len(turns)
    assert metadata["conversations"] == turns["conversation_id"].nunique()
    assert calls == [len(turns)]  # once for both


def test_another_table_gets_its_own_fingerprint(tmp_path: Path) -> None:
    materializer = FingerprintedTurnTableMaterializer(str(tmp_path))
    first = generate_sample(SampleConfig(num_conversations=4, seed=0))
    second = generate_sample(SampleConfig(num_conversations=4, seed=1))
    assert materializer.compute_content_hash(first) == fingerprint_turns(first)
    assert materializer.extract_metadata(second)["fingerprint"] == fingerprint_turns(second)
    assert fingerprint_turns(first) != fingerprint_turns(second)
