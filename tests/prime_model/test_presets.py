"""Shipped presets resolve from the installed package, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter

from prime_model import ConfigError, PredictorConfig, TrainingConfig
from prime_model.config import preset_names
from prime_model.presets import (
    PREDICTOR_PRESETS,
    TRAINING_PRESETS,
    predictor_config,
    preset_path,
    training_config,
)


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


def test_the_preset_tuples_are_the_shipped_files() -> None:
    assert sorted(PREDICTOR_PRESETS) == list(preset_names("predictor"))
    assert sorted(TRAINING_PRESETS) == list(preset_names("training"))


def test_a_config_names_a_preset_and_overrides_fields() -> None:
    """What a pipeline YAML writes: ``predictor: {preset: minilm, hidden_dim: 256}``."""
    wider = PredictorConfig(**{"preset": "minilm", "hidden_dim": 256})
    assert wider == predictor_config("minilm").model_copy(update={"hidden_dim": 256})
    assert TypeAdapter(TrainingConfig).validate_python({"preset": "real"}) == training_config(
        "real"
    )


def test_a_yaml_file_may_start_from_a_preset(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("preset: real\nnum_layers: 3\n", encoding="utf-8")
    assert predictor_config(path) == predictor_config("real").model_copy(update={"num_layers": 3})


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"preset": "tiny"}, r"unknown predictor preset 'tiny'; expected one of \('default'"),
        ({"preset": ["minilm"]}, "unknown predictor preset"),
        ({"preset": "minilm", "hidden_dim": "wide"}, "hidden_dim"),
    ],
)
def test_a_bad_preset_is_a_config_error(fields: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        PredictorConfig(**fields)
