"""The batch-inference step called directly (no orchestrator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.checkpoint import PredictorCheckpoint, load_checkpoint, save_checkpoint
from prime_model.data import SampleConfig, generate_sample
from prime_model.encode.encoders import EncoderConfig
from steps import predict_embeddings

ENCODER = EncoderConfig(device="cpu")


@pytest.fixture(scope="module")
def turns() -> pd.DataFrame:
    return generate_sample(SampleConfig(num_conversations=30, seed=0))


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
