from __future__ import annotations

import pandas as pd
import pytest

from prime_model import ConfigError
from prime_model.data import read_turns
from prime_model.monitor.drift import DriftResult, DriftScore
from prime_model.monitor.retraining import RetrainingConfig, combine_turns, decide_retraining
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
