"""Shipped configs: named predictor architectures and training settings, inside the package.

``prime train`` and ``prime benchmark`` take a preset name or a YAML path; names resolve here, in
the installed package, so they work from any working directory, not only from a checkout.
Pipeline YAMLs name them too: ``predictor: {preset: minilm}`` (see ``PresetConfig``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final, TypeVar

from prime_model.config import PredictorConfig, PresetConfig, TrainingConfig
from prime_model.errors import ConfigError

PREDICTOR_PRESETS: Final = ("minilm", "default", "real")
TRAINING_PRESETS: Final = ("default", "smoke", "real")
_KINDS: Final = {"predictor": PREDICTOR_PRESETS, "training": TRAINING_PRESETS}

ConfigT = TypeVar("ConfigT", bound=PresetConfig)


def preset_path(kind: str, name: str) -> Path:
    """The shipped YAML file of preset ``name`` of ``kind`` (predictor or training)."""
    names = _KINDS.get(kind)
    if names is None:
        raise ConfigError(f"unknown preset kind {kind!r}; expected one of {sorted(_KINDS)}")
    if name not in names:
        raise ConfigError(f"unknown {kind} preset {name!r}; expected one of {names} or a YAML path")
    return Path(str(resources.files(__name__).joinpath(kind, f"{name}.yaml")))


def _load(cls: type[ConfigT], kind: str, preset: str | Path) -> ConfigT:
    if isinstance(preset, str) and preset in _KINDS[kind]:
        return cls(**{"preset": preset})  # as ``preset: NAME`` in a pipeline YAML resolves
    path = Path(preset)
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        raise ConfigError(
            f"{kind} config {str(preset)!r} is neither a preset {_KINDS[kind]} nor a YAML file"
        )
    return cls.from_yaml(path)


def predictor_config(preset: str | Path) -> PredictorConfig:
    """A predictor preset name (minilm, default, real) or the path of a YAML file."""
    return _load(PredictorConfig, "predictor", preset)


def training_config(preset: str | Path) -> TrainingConfig:
    """A training preset name (default, smoke, real) or the path of a YAML file."""
    return _load(TrainingConfig, "training", preset)
