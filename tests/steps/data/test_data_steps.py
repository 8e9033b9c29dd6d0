"""load_turns, validate_turns, split_turns and encode_turns called directly (no orchestrator)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from zenml.client import Client

from prime_model.data import SampleConfig, TurnValidationError, ValidationConfig
from prime_model.data.source import DataSource
from prime_model.encode.encoders import EncoderConfig
from prime_model.errors import EmptySplitError
from steps import encode_turns, load_turns, split_turns, validate_turns
from tests.conftest import REPO_ROOT

USER_EXAMPLE = "examples/data/user_turns.jsonl"  # what configs/user_data.yaml reads
CONFIG = ValidationConfig(min_rows=10, min_conversations=5, history_matches_turn=True)


@pytest.fixture(scope="module")
def turns() -> pd.DataFrame:
    frame: pd.DataFrame = load_turns.entrypoint(
        DataSource(sample=SampleConfig(num_conversations=20))
    )
    return frame


def test_load_turns_generates_the_sample(turns: pd.DataFrame) -> None:
    assert turns["conversation_id"].nunique() == 20


def test_validate_turns_passes_good_data_with_its_report(turns: pd.DataFrame) -> None:
    validated, report = validate_turns.entrypoint(turns, CONFIG)
    assert validated is turns
    assert "passed" in str(report).lower()


def test_validate_turns_stops_bad_data_and_keeps_the_report(turns: pd.DataFrame) -> None:
    bad = turns.copy()
    bad.loc[2, "target"] = " "
    with pytest.raises(TurnValidationError, match="target"):
        validate_turns.entrypoint(bad, CONFIG)
    stored = Client().get_artifact_version("validation_report")
    assert "target" in str(stored.load())


def test_split_turns_keeps_conversations_whole(turns: pd.DataFrame) -> None:
    train, val, test = split_turns.entrypoint(turns, 0.2, 0.2, 0)
    assert len(train) + len(val) + len(test) == len(turns)
    ids = [set(frame["conversation_id"]) for frame in (train, val, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_encode_turns_encodes_each_split(turns: pd.DataFrame) -> None:
    train, val, test = split_turns.entrypoint(turns, 0.2, 0.2, 0)
    encoded = encode_turns.entrypoint(train, val, test, EncoderConfig(device="cpu"), 4)
    assert [len(e) for e in encoded] == [len(train), len(val), len(test)]
    assert all(e.dim == 384 and e.context.shape[1] <= 4 for e in encoded)


def test_split_turns_refuses_an_empty_part_before_encoding() -> None:
    two = load_turns.entrypoint(DataSource(kind="file", path=str(REPO_ROOT / USER_EXAMPLE)))
    few = two[two["conversation_id"].isin(["conv-001", "conv-002"])]
    with pytest.raises(EmptySplitError, match="add conversations, 3 or more"):
        split_turns.entrypoint(few, 0.1, 0.1, 0)
    train, val, test = split_turns.entrypoint(two, 0.1, 0.1, 0)  # the shipped example runs
    assert min(len(train), len(val), len(test)) > 0


def test_split_turns_splits_each_source_on_its_own(tmp_path: Path) -> None:
    path = str(REPO_ROOT / USER_EXAMPLE)
    data = DataSource(
        kind="files",
        sources=[
            {"path": path, "name": "a"},
            {"path": path, "name": "b", "weight": 0.0, "test_fraction": 0.0},
        ],
        max_train_chars=10_000,
    )
    turns = load_turns.entrypoint(data)
    train, val, test = split_turns.entrypoint(turns, 0.1, 0.1, 0, data, 10)
    assert set(train["source"]) == {"a"} and set(test["source"]) == {"a"}
    assert set(val["source"]) == {"a", "b"}


def test_extra_targets_reach_training_only_where_a_files_source_asks(tmp_path: Path) -> None:
    table = pd.DataFrame(
        [
            {"conversation_id": f"c{c}", "turn": t, "history": [], "query": f"q{c}.{t}",
             "target": f"a{c}.{t}", "target_id": None, "extra_target": f"page {c}"}
            for c in range(20)
            for t in range(2)
        ]
    )  # fmt: skip
    path = tmp_path / "turns.jsonl"
    table.to_json(path, orient="records", lines=True)
    single = load_turns.entrypoint(DataSource(kind="file", path=str(path)))
    assert all("extra_target" not in part for part in split_turns.entrypoint(single, 0.2, 0.2, 0))
    data = DataSource(kind="files", sources=[{"path": str(path), "train_on_extra_target": True}])
    train, val, test = split_turns.entrypoint(load_turns.entrypoint(data), 0.2, 0.2, 0, data, 10)
    assert train["extra_target"].notna().all()
    assert "extra_target" not in val and "extra_target" not in test
    encoded, _, _ = encode_turns.entrypoint(train, val, test, EncoderConfig(device="cpu"), 10)
    assert encoded.extra_target_mask is not None and bool(encoded.extra_target_mask.all())
