from __future__ import annotations

import pandas as pd
import pytest

from prime_model import ConfigError
from prime_model.data import read_turns
from prime_model.data.source import DataSource
from prime_model.monitor.drift import DriftResult, DriftScore
from prime_model.monitor.retraining import (
    NEW_SOURCE,
    RetrainingConfig,
    combine_turns,
    decide_retraining,
    retraining_data,
)
from tests.conftest import REPO_ROOT


def _drift(drifted: bool) -> DriftResult:
    score = DriftScore(name="query", score=0.8 if drifted else 0.5, drifted=drifted, method="model")
    return DriftResult(
        drifted=drifted,
        score=score.score,
        embeddings=[score],
        columns=[],
        reference_rows=100,
        current_rows=100,
    )


def test_drift_or_size_triggers_retraining() -> None:
    config = RetrainingConfig(min_new_rows=1000)
    on_drift = decide_retraining(_drift(True), 10, config)
    assert on_drift.retrain and on_drift.reasons[0].startswith("input drift: embedding drift")
    on_size = decide_retraining(_drift(False), 1000, config)
    assert on_size.retrain and on_size.reasons == ["1000 new turns >= min_new_rows=1000"]
    both = decide_retraining(_drift(True), 5000, config)
    assert len(both.reasons) == 2


def test_no_trigger_says_why() -> None:
    skip = decide_retraining(_drift(False), 10, RetrainingConfig(min_new_rows=1000))
    assert not skip.retrain
    assert "no embedding drift" in skip.reasons[0]
    assert "10 new turns < min_new_rows=1000" in skip.reasons[0]
    ignored = decide_retraining(
        _drift(True), 10, RetrainingConfig(on_drift=False, min_new_rows=None)
    )
    assert not ignored.retrain
    assert ignored.reasons == ["drift does not trigger retraining; retraining by size is off"]
    with pytest.raises(ConfigError, match="min_new_rows"):
        RetrainingConfig(min_new_rows=0)


def test_combine_prefers_the_new_copy_of_a_conversation() -> None:
    reference = read_turns(REPO_ROOT / "examples/data/turns.jsonl")
    first = reference["conversation_id"].iloc[0]
    new = reference[reference["conversation_id"] == first].assign(query="updated?")
    extra = new.assign(conversation_id="brand-new")
    combined = combine_turns(reference, pd.concat([new, extra]))
    assert len(combined) == len(reference) + len(extra)
    assert not combined.duplicated(["conversation_id", "turn"]).any()
    assert (combined.loc[combined["conversation_id"] == first, "query"] == "updated?").all()


def _sourced(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    return frame.assign(
        source=label,
        conversation_id=label + ":" + frame["conversation_id"].astype(str),
        history_roles=pd.Series([["user"] * len(h) for h in frame["history"]], index=frame.index),
    )


def test_combining_keeps_roles_and_tags_new_turns_with_a_source() -> None:
    turns = read_turns(REPO_ROOT / "examples" / "data" / "turns.jsonl")
    reference = _sourced(turns, "canard")
    combined = combine_turns(reference, turns)  # new turns from one file: no source, no roles
    assert combined["source"].tolist() == ["canard"] * len(turns) + [NEW_SOURCE] * len(turns)
    assert combined["history_roles"].iloc[0] == reference["history_roles"].iloc[0]
    assert combined["history_roles"].iloc[len(turns) :].isna().all()  # unknown, not invented
    plain = combine_turns(turns, turns.assign(conversation_id="x"))
    assert "source" not in plain.columns  # one-table data stays one table


def test_retraining_splits_per_source_as_production_did() -> None:
    production = DataSource(
        kind="files",
        sources=[
            {"path": "a/train.jsonl", "name": "canard"},
            {"path": "b/val.jsonl", "name": "doc2dial", "weight": 0.0, "val_fraction": 0.3},
        ],
        max_train_chars=600,
    )
    new_file = DataSource(kind="file", path="new/turns.jsonl")
    data = retraining_data(production, new_file)
    assert data is not None and data.max_train_chars == 600
    assert [(s.label, s.weight) for s in data.sources] == [
        ("canard", 1.0),
        ("doc2dial", 0.0),  # validation-only stays out of training
        (NEW_SOURCE, 1.0),
    ]
    updated = DataSource(kind="files", sources=[{"path": "a/v2.jsonl", "name": "canard"}])
    again = retraining_data(production, updated)
    assert again is not None
    assert [(s.label, s.path) for s in again.sources] == [
        ("doc2dial", "b/val.jsonl"),
        ("canard", "a/v2.jsonl"),
    ]
    assert retraining_data(DataSource(), new_file) is None  # the sample: one table
    assert retraining_data(None, new_file) is None
