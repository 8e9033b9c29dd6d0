from __future__ import annotations

from pathlib import Path

import pytest

from prime_model import ConfigError, PredictorConfig, TrainingConfig, load_checkpoint
from prime_model.cli.train import train_and_evaluate
from prime_model.data import SampleConfig, TurnValidationError, ValidationConfig, generate_sample
from prime_model.evaluate.report import SYSTEMS
from tests.conftest import CountingEncoder

PREDICTOR = PredictorConfig(input_dim=8, output_dim=8, hidden_dim=16, num_layers=1, num_heads=2)
TRAINING = TrainingConfig(batch_size=16, max_epochs=1, warmup_steps=2, accelerator="cpu")


def test_trains_evaluates_and_writes_reports(tmp_path: Path) -> None:
    turns = generate_sample(SampleConfig(num_conversations=40))
    result = train_and_evaluate(turns, CountingEncoder(), PREDICTOR, TRAINING, tmp_path)
    assert result.validation.success
    assert set(result.evaluation.rows) == set(SYSTEMS)
    splits = load_checkpoint(result.training.checkpoint_dir).metadata.training["splits"]
    assert result.evaluation.num_turns == splits["test"] > 0
    assert sorted(p.name for p in result.reports.values()) == [
        "evaluation.html",
        "evaluation.md",
        "validation.html",
    ]
    assert "| **model** |" in (tmp_path / "evaluation.md").read_text()
    assert "<html" in (tmp_path / "validation.html").read_text().lower()


def test_bad_data_stops_after_writing_the_validation_report(tmp_path: Path) -> None:
    turns = generate_sample(SampleConfig(num_conversations=40))
    turns.loc[3, "query"] = "   "
    with pytest.raises(TurnValidationError, match="query"):
        train_and_evaluate(
            turns, CountingEncoder(), PREDICTOR, TRAINING, tmp_path,
            validation_config=ValidationConfig(max_context_length=10),
        )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["validation.html"]


def test_encoder_that_does_not_fit_the_predictor(tmp_path: Path) -> None:
    turns = generate_sample(SampleConfig(num_conversations=10))
    with pytest.raises(ConfigError, match="produces 4-d embeddings"):
        train_and_evaluate(turns, CountingEncoder(dim=4), PREDICTOR, TRAINING, tmp_path)
    assert list(tmp_path.iterdir()) == []
