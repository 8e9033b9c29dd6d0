from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from prime_model import ConfigError, PredictorConfig, TrainingConfig, load_checkpoint
from prime_model.train.lightning_module import PredictorLightningModule
from prime_model.train.training import train_predictor
from tests.conftest import make_encoded


def _config(**overrides: object) -> TrainingConfig:
    base: dict[str, object] = {
        "batch_size": 16,
        "max_epochs": 2,
        "warmup_steps": 2,
        "learning_rate": 1e-3,
        "log_every_n_steps": 1,
        "accelerator": "cpu",
    }
    return TrainingConfig(**{**base, **overrides})


def test_trains_saves_the_best_model_and_its_history(
    tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    train, val = make_encoded(m=64, k=16), make_encoded(m=20, k=16, seed=1)
    result = train_predictor(
        train, val, tiny_config.model_copy(update={"output_dim": 16}), _config(), tmp_path
    )
    loaded = load_checkpoint(result.checkpoint_dir)
    meta = loaded.metadata.training
    assert meta["metrics"] == result.best_metrics
    assert set(result.best_metrics) >= {
        "val/loss",
        "val/recall@1",
        "val/recall@5",
        "val/mrr",
        "epoch",
    }
    assert meta["dataset_fingerprint"]["train"] == train.fingerprint()
    assert meta["dataset_fingerprint"]["val"] != meta["dataset_fingerprint"]["train"]
    assert meta["global_step"] == 8  # 2 epochs of 64 // 16 batches
    assert meta["training_config"]["batch_size"] == 16
    losses = [row["train/loss"] for row in result.history if "train/loss" in row]
    assert len(losses) == 8
    lrs = [row["lr-AdamW/pg1"] for row in result.history if "lr-AdamW/pg1" in row]  # decayed group
    assert lrs[0] == 0.0  # warmup starts at zero
    assert max(lrs) == pytest.approx(1e-3)  # peak after 2 warmup steps
    assert lrs[-1] < lrs[2]  # cosine decay
    assert (result.lightning_dir / "last.ckpt").exists()
    assert (result.lightning_dir / "best.ckpt").exists()


def test_resume_continues_from_last_checkpoint(
    tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    train, val = make_encoded(m=64, k=16), make_encoded(m=20, k=16, seed=1)
    first = train_predictor(train, val, config, _config(max_epochs=10, max_steps=6), tmp_path)
    assert load_checkpoint(first.checkpoint_dir).metadata.training["global_step"] == 6
    resumed = train_predictor(
        train, val, config, _config(max_epochs=10, max_steps=10), tmp_path, resume=True
    )
    assert load_checkpoint(resumed.checkpoint_dir).metadata.training["global_step"] == 10
    steps = [row["step"] for row in resumed.history if "train/loss" in row]
    assert steps[-1] == 9  # one log, appended, per step: 0..5 then 6..9


def test_resume_without_a_checkpoint_starts_fresh(
    tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    result = train_predictor(
        make_encoded(), make_encoded(seed=1), config, _config(max_steps=3), tmp_path, resume=True
    )
    assert load_checkpoint(result.checkpoint_dir).metadata.training["global_step"] == 3


def test_dims_must_match_the_encoded_turns(tiny_config: PredictorConfig, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"encoded by stub as 16-d .* input_dim=16, output_dim=12"
    ):
        train_predictor(make_encoded(), make_encoded(seed=1), tiny_config, _config(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_fp16_needs_cuda(tiny_config: PredictorConfig, tmp_path: Path) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    with pytest.raises(ConfigError, match="'16-mixed' needs a CUDA GPU"):
        train_predictor(
            make_encoded(), make_encoded(seed=1), config, _config(precision="16-mixed"), tmp_path
        )


def test_a_fresh_run_does_not_inherit_an_old_history(
    tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    train, val = make_encoded(), make_encoded(seed=1)
    train_predictor(train, val, config, _config(max_steps=5), tmp_path)
    again = train_predictor(train, val, config, _config(max_steps=3), tmp_path)
    assert [row["step"] for row in again.history if "train/loss" in row] == [0, 1, 2]


def test_lightning_checkpoint_restores_the_module(
    tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    result = train_predictor(make_encoded(), make_encoded(seed=1), config, _config(), tmp_path)
    restored = PredictorLightningModule.load_from_checkpoint(
        result.lightning_dir / "best.ckpt", weights_only=True
    )
    assert restored.predictor_config == config
    assert restored.training_config == _config()
    saved = load_checkpoint(result.checkpoint_dir).model
    for name, tensor in saved.state_dict().items():
        assert torch.equal(restored.net.state_dict()[name], tensor), name


def test_bf16_mixed_precision_trains_on_cpu(tiny_config: PredictorConfig, tmp_path: Path) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    result = train_predictor(
        make_encoded(), make_encoded(seed=1), config, _config(precision="bf16-mixed"), tmp_path
    )
    losses = [row["train/loss"] for row in result.history if "train/loss" in row]
    assert losses
    assert all(math.isfinite(loss) for loss in losses)
