"""Shipped presets resolve from the installed package, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from prime_model import ConfigError, PredictorConfig, TrainingConfig
from prime_model.bench.latency import BenchmarkConfig
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encode.encoders import EncoderConfig
from prime_model.evaluate.promotion import GateConfig
from prime_model.export.serving_models import ExportConfig
from prime_model.presets import (
    PREDICTOR_PRESETS,
    TRAINING_PRESETS,
    predictor_config,
    preset_path,
    training_config,
)
from tests.conftest import REPO_ROOT

SECTIONS: dict[str, type[BaseModel]] = {
    "validation": ValidationConfig,
    "encoder": EncoderConfig,
    "gate": GateConfig,
    "benchmark": BenchmarkConfig,
    "export": ExportConfig,
}


def test_every_preset_is_shipped_and_loads_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in PREDICTOR_PRESETS:
        assert preset_path("predictor", name).is_file()
        assert isinstance(predictor_config(name), PredictorConfig)
    for name in TRAINING_PRESETS:
        assert isinstance(training_config(name), TrainingConfig)


def test_a_yaml_path_is_read_as_a_config(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("hidden_dim: 64\nnum_heads: 4\n", encoding="utf-8")
    assert predictor_config(path).hidden_dim == 64
    assert predictor_config(str(path)).hidden_dim == 64


def test_unknown_names_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'tiny' is neither a preset .* nor a YAML file"):
        predictor_config("tiny")
    with pytest.raises(ConfigError, match=r"no such config file"):
        training_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"unknown training preset 'huge'"):
        preset_path("training", "huge")
    with pytest.raises(ConfigError, match=r"unknown preset kind 'model'"):
        preset_path("model", "minilm")


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "configs" / "real").glob("*.yaml")))
def test_real_data_pipeline_configs_match_the_real_presets(path: Path) -> None:
    """The pipeline configs and benchmarks/real_data.py train the same model the same way."""
    parameters = yaml.safe_load(path.read_text(encoding="utf-8"))["parameters"]
    assert PredictorConfig(**parameters["predictor"]) == predictor_config("real")
    assert TrainingConfig(**parameters["training"]) == training_config("real")
    source = DataSource(**parameters["data"])
    assert (source.kind, source.format) == ("file", path.stem)
    # every other section parses as the pipeline's typed parameter would
    for name, cls in SECTIONS.items():
        cls(**parameters[name])


def test_there_are_real_data_pipeline_configs() -> None:
    assert sorted(p.stem for p in (REPO_ROOT / "configs" / "real").glob("*.yaml")) == [
        "canard",
        "topiocqa",
    ]
