from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from prime_model import ConfigError, PredictorConfig, PrimeError, TrainingConfig
from prime_model.presets import predictor_config


def test_defaults_follow_the_seed() -> None:
    cfg = PredictorConfig()
    assert (cfg.input_dim, cfg.output_dim, cfg.hidden_dim) == (1024, 1024, 2048)
    assert (cfg.num_layers, cfg.num_heads, cfg.max_context_length) == (4, 8, 10)
    assert cfg.dropout == 0.1
    assert cfg.max_batch_size == 32
    assert TrainingConfig().temperature == 0.07


def test_minilm_preset_matches_the_default_y_encoder() -> None:
    assert predictor_config("minilm").input_dim == predictor_config("minilm").output_dim == 384
    assert predictor_config("real").input_dim == 384


def test_the_defaults_are_the_default_preset_residual_like_every_preset() -> None:
    assert predictor_config("default") == PredictorConfig()
    assert PredictorConfig().residual


def test_a_predictor_whose_output_space_differs_says_residual_false() -> None:
    with pytest.raises(ConfigError, match="input_dim=16 must equal output_dim=12"):
        PredictorConfig(input_dim=16, output_dim=12)
    assert not PredictorConfig(input_dim=16, output_dim=12, residual=False).residual


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"hidden_dim": 100, "num_heads": 8}, "divisible by num_heads=8"),
        ({"input_dim": -1}, "input_dim"),
        ({"output_dim": 0}, "output_dim"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_heads": 0}, "num_heads"),
        ({"mlp_ratio": 0}, "mlp_ratio"),
        ({"max_context_length": 0}, "max_context_length"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"hidden_dim": "wide"}, "hidden_dim"),
        ({"hidden_size": 512}, "hidden_size"),
    ],
)
def test_bad_predictor_config_names_the_field(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match="invalid PredictorConfig") as info:
        PredictorConfig(**overrides)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": -0.07}, "temperature"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"batch_size": 1}, "batch_size"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"warmup_steps": 100, "max_steps": 100}, "warmup_steps=100 must be < max_steps=100"),
        ({"gradient_clip_val": 0}, "gradient_clip_val"),
        ({"precision": "fp8"}, "precision"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"lr": 0.1}, "lr"),
    ],
)
def test_bad_training_config_names_the_field(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match="invalid TrainingConfig") as info:
        TrainingConfig(**overrides)
    assert needle in str(info.value)


def test_config_error_is_a_prime_error_and_a_value_error() -> None:
    with pytest.raises(PrimeError):
        PredictorConfig(num_layers=-3)
    assert issubclass(ConfigError, ValueError)


def test_nested_validation_reports_the_rule() -> None:
    """Inside another pydantic model (a ZenML step's parameters) the rule still reaches the user."""

    class Holder(BaseModel):
        predictor_config: PredictorConfig

    with pytest.raises(ValidationError, match="hidden_dim=30 must be divisible by num_heads=4"):
        Holder.model_validate({"predictor_config": {"hidden_dim": 30, "num_heads": 4}})


def test_configs_are_frozen_and_round_trip() -> None:
    cfg = PredictorConfig(hidden_dim=64, num_heads=4)
    with pytest.raises(ValueError, match="frozen"):
        cfg.hidden_dim = 128  # type: ignore[misc]
    assert PredictorConfig(**cfg.model_dump()) == cfg
    assert (
        TrainingConfig.model_validate_json(TrainingConfig().model_dump_json()) == TrainingConfig()
    )


def test_from_yaml_reads_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("learning_rate: 1.0e-3\nmax_steps: 500\nwarmup_steps: 50\n")
    cfg = TrainingConfig.from_yaml(path)
    assert (cfg.learning_rate, cfg.max_steps, cfg.warmup_steps) == (1e-3, 500, 50)


def test_from_yaml_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert PredictorConfig.from_yaml(path) == PredictorConfig()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("hidden_dim: 100\nnum_heads: 8\n", "hidden_dim=100 must be divisible by num_heads=8"),
        ("hiden_dim: 512\n", "hiden_dim: Extra inputs are not permitted"),
        ("- 1\n- 2\n", "expected a mapping of PredictorConfig fields, got a list"),
        ("just a string\n", "got a str"),
        ("hidden_dim: [1, 2\n", "not valid YAML"),
    ],
)
def test_from_yaml_errors_name_file_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        PredictorConfig.from_yaml(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_from_yaml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        PredictorConfig.from_yaml(tmp_path / "absent.yaml")


def test_from_yaml_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        PredictorConfig.from_yaml(tmp_path)  # a directory


def test_strategy_defaults_keep_single_process_training() -> None:
    cfg = TrainingConfig()
    assert (cfg.strategy, cfg.num_nodes) == ("auto", 1)
    assert not cfg.gradient_checkpointing  # scale-out fields leave the others alone


@pytest.mark.parametrize(
    "overrides",
    [
        {"strategy": "ddp", "devices": 2},
        {"strategy": "ddp_spawn", "devices": 2, "accelerator": "cpu"},
        {"strategy": "ddp", "num_nodes": 2, "devices": 4},
        {"strategy": "fsdp", "accelerator": "gpu", "devices": 8, "num_nodes": 2},
        {"strategy": "fsdp", "accelerator": "cuda", "gradient_checkpointing": True},
    ],
)
def test_strategy_combinations_accepted(overrides: dict[str, Any]) -> None:
    cfg = TrainingConfig(**overrides)
    assert cfg.model_dump()["strategy"] == overrides["strategy"]
    assert TrainingConfig.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"num_nodes": 2}, "num_nodes=2 needs strategy ddp, ddp_spawn or fsdp, not 'auto'"),
        ({"strategy": "fsdp"}, "strategy 'fsdp' needs accelerator 'gpu' or 'cuda', got 'auto'"),
        ({"strategy": "fsdp", "accelerator": "cpu"}, "got 'cpu'; use ddp_spawn"),
        ({"num_nodes": 0, "strategy": "ddp"}, "num_nodes"),
        ({"strategy": "deepspeed"}, "strategy"),
        ({"strategy": "ddp_fork"}, "strategy"),
    ],
)
def test_bad_strategy_config_names_the_rule(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match="invalid TrainingConfig") as info:
        TrainingConfig(**overrides)
    assert needle in str(info.value)


def test_strategy_rule_names_the_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "training.yaml"
    path.write_text("strategy: fsdp\naccelerator: cpu\ndevices: 2\n")
    with pytest.raises(ConfigError, match="needs accelerator 'gpu' or 'cuda'") as info:
        TrainingConfig.from_yaml(path)
    assert str(path) in str(info.value)


def test_architectures_too_big_to_allocate_are_refused_before_torch_tries() -> None:
    seed = PredictorConfig()
    assert 200e6 < seed.approximate_parameters < 210e6  # PRED-001: ~207M
    for overrides in ({"hidden_dim": 10**9}, {"num_layers": 10**6}, {"input_dim": 10**9}):
        with pytest.raises(ConfigError, match="parameters, more than the 4e\\+09"):
            PredictorConfig(**{**overrides, "residual": False})
