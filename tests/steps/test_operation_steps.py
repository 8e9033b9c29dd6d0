"""The batch-inference and retraining steps called directly (no orchestrator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.checkpoint import PredictorCheckpoint, load_checkpoint, save_checkpoint
from prime_model.data import SampleConfig, generate_sample
from prime_model.drift import DriftConfig, DriftResult
from prime_model.encoders import EncoderConfig
from prime_model.encoding import EncodedTurns
from prime_model.retraining import RetrainingConfig
from steps import (
    combine_turns,
    decide_retraining,
    detect_drift,
    encode_new_turns,
    predict_embeddings,
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
    result, html = detect_drift.entrypoint(encoded, turns, encoded, turns, DriftConfig(max_rows=30))
    assert isinstance(result, DriftResult) and not result.drifted  # a table against itself
    assert "Drift in embeddings" in str(html)
    decision = decide_retraining.entrypoint(result, turns, RetrainingConfig(min_new_rows=10**6))
    assert not decision.retrain and decision.new_rows == len(turns)
    due = decide_retraining.entrypoint(result, turns, RetrainingConfig(min_new_rows=len(turns)))
    assert due.retrain


def test_combine_turns(turns: pd.DataFrame) -> None:
    new = generate_sample(SampleConfig(num_conversations=5, seed=7))
    combined = combine_turns.entrypoint(turns, new)
    assert len(combined) == len(turns) + len(new)


def test_predict_embeddings_writes_parquet(turns: pd.DataFrame, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = PredictorConfig(
        input_dim=384,
        output_dim=384,
        hidden_dim=32,
        num_layers=1,
        num_heads=2,
        max_context_length=4,
        dropout=0.0,
    )
    save_checkpoint(EmbeddingPredictor(config), f"{tmp_path}/model")
    checkpoint: PredictorCheckpoint = load_checkpoint(f"{tmp_path}/model")
    out = f"{tmp_path}/embeddings.parquet"
    frame = predict_embeddings.entrypoint(turns.head(7), checkpoint, ENCODER, "eager", out)
    assert len(frame) == 7
    written = pd.read_parquet(out)
    np.testing.assert_allclose(
        np.stack(written["embedding"].tolist()), np.stack(frame["embedding"].tolist())
    )
