"""train_predictor without an orchestrator; its checkpoint then goes through evaluate_predictor."""

from __future__ import annotations

import pandas as pd
import pytest

from prime_model import PredictorConfig, TrainingConfig
from prime_model.data import SampleConfig, generate_sample, split_by_conversation
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.encode.encoding import EncodedTurns, encode_splits
from prime_model.evaluate.report import SYSTEMS
from steps import evaluate_predictor, train_predictor

PREDICTOR = PredictorConfig(
    input_dim=384, output_dim=384, hidden_dim=32, num_layers=1, num_heads=2, max_context_length=4
)
TRAINING = TrainingConfig(
    batch_size=16, max_epochs=1, max_steps=6, warmup_steps=1, accelerator="cpu"
)


@pytest.fixture(scope="module")
def data() -> tuple[dict[str, EncodedTurns], pd.DataFrame]:
    splits = split_by_conversation(generate_sample(SampleConfig(num_conversations=30)), 0.2, 0.2)
    frames = {"train": splits.train, "val": splits.val, "test": splits.test}
    encoded = encode_splits(frames, SentenceTransformerEncoder(EncoderConfig(device="cpu")), 4)
    return encoded, splits.test


def test_train_then_evaluate(data: tuple[dict[str, EncodedTurns], pd.DataFrame]) -> None:
    encoded, test_turns = data
    checkpoint, history, curves = train_predictor.entrypoint(
        encoded["train"], encoded["val"], PREDICTOR, TRAINING
    )
    assert checkpoint.metadata.predictor_config == PREDICTOR
    assert any("train/loss" in row for row in history)
    assert "<svg" in str(curves)
    table, report = evaluate_predictor.entrypoint(
        checkpoint, encoded["test"], test_turns, EncoderConfig(device="cpu")
    )
    assert set(table.rows) == set(SYSTEMS)
    assert "<svg" in str(report)
