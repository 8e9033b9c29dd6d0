"""Shared fixtures: a tiny predictor config that keeps every test fast on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_config() -> PredictorConfig:
    return PredictorConfig(
        input_dim=16,
        output_dim=12,
        hidden_dim=32,
        num_layers=2,
        num_heads=4,
        max_context_length=6,
        dropout=0.0,
        max_batch_size=8,
    )


@pytest.fixture
def tiny_model(tiny_config: PredictorConfig) -> EmbeddingPredictor:
    torch.manual_seed(0)
    return EmbeddingPredictor(tiny_config).eval()
