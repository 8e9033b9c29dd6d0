"""The retraining steps called directly (no orchestrator)."""

from __future__ import annotations

import pandas as pd
import pytest

from prime_model.data import SampleConfig, generate_sample
from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.monitor.drift import DriftConfig, DriftResult
from prime_model.monitor.retraining import RetrainingConfig
from steps import (
    combine_turns,
    decide_retraining,
    detect_drift,
    encode_new_turns,
)

ENCODER = EncoderConfig(device="cpu")


@pytest.fixture(scope="module")
def turns() -> pd.DataFrame:
    return generate_sample(SampleConfig(num_conversations=30, seed=0))


@pytest.fixture(scope="module")
def encoded(turns: pd.DataFrame) -> EncodedTurns:
    result: EncodedTurns = encode_new_turns.entrypoint(turns, ENCODER, 4)
    return result


def test_encode_new_turns_keeps_rows(turns: pd.DataFrame, encoded: EncodedTurns) -> None:
    assert len(encoded) == len(turns) and encoded.dim == 384
    assert encoded.context.shape[1] == 4  # histories cut to max_context_length


def test_drift_then_decision(turns: pd.DataFrame, encoded: EncodedTurns) -> None:
    result, summary, full = detect_drift.entrypoint(
        encoded, turns, encoded, turns, DriftConfig(max_rows=30)
    )
    assert isinstance(result, DriftResult) and not result.drifted  # a table against itself
    assert "Drift in embeddings" in str(full)
    assert "<script" not in str(summary).lower() and "query_chars" in str(summary)
    decision = decide_retraining.entrypoint(result, turns, RetrainingConfig(min_new_rows=10**6))
    assert not decision.retrain and decision.new_rows == len(turns)
    due = decide_retraining.entrypoint(result, turns, RetrainingConfig(min_new_rows=len(turns)))
    assert due.retrain


def test_combine_turns(turns: pd.DataFrame) -> None:
    new = generate_sample(SampleConfig(num_conversations=5, seed=7))
    combined = combine_turns.entrypoint(turns, new)
    assert len(combined) == len(turns) + len(new)
