"""Run configs as files: one source per setting.

A run config may build on another with a top-level ``base: training.yaml`` (a path relative to
the file naming it): the base is read first, then this file's mappings are merged over it key by
key, and anything else it sets (a scalar, a list, null) replaces the base's value. The variants
(``training_k8s.yaml``, ``smoke_docker.yaml``, ``retraining_schedule.yaml``, ...) say only what
differs. Architecture and training settings name a preset (``predictor: {preset: minilm}``),
which :class:`~prime_model.config.PresetConfig` resolves wherever the parameters are validated.

ZenML reads ``-c FILE`` itself and ignores keys it does not know, so it would silently drop a
``base:``; the pipelines are therefore built by :func:`overlay_pipeline`, whose config-file
parsing hands ZenML the resolved file. ``zenml pipeline run pipelines.training_pipeline -c
configs/training_k8s.yaml`` and ``python run.py --config ...`` read a variant the same way.
The pipelines' parameter defaults are read from the shipped YAMLs too (:func:`defaults_from`).
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FunctionType
from typing import Any, Final

import yaml
from pydantic import TypeAdapter
from zenml import Model
from zenml.pipelines.dynamic.pipeline_definition import DynamicPipeline
from zenml.pipelines.pipeline_definition import Pipeline

from prime_model.errors import ConfigError, PrimeError
from prime_model.files import read_text_file
from prime_model.parsing import parse_yaml
from prime_model.text import shown

CONFIGS: Final = Path(__file__).resolve().parent.parent / "configs"
BASE_KEY: Final = "base"


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``: mappings merge key by key; any other value replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged


def read_run_config(
    path: Path, what: str = "config file", error: type[PrimeError] = ConfigError
) -> dict[str, Any]:
    """One file as written (its ``base:`` not followed), strictly parsed: a mapping."""
    data = parse_yaml(read_text_file(path, what, error), str(path), error)
    if not isinstance(data, dict):
        raise error(
            f"{path}: expected a mapping (model, parameters, ...), got a {type(data).__name__}"
        )
    return data


def load_run_config(
    path: str | Path, what: str = "config file", error: type[PrimeError] = ConfigError
) -> dict[str, Any]:
    """A run config with its ``base:`` chain resolved: what the run uses."""
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []  # the deepest base first
    path = Path(path)
    while True:
        if path.resolve() in chain:
            loop = " -> ".join(str(p) for p in [*chain, path.resolve()])
            raise error(f"{path}: its base chain loops back: {loop}")
        chain.append(path.resolve())
        data = read_run_config(path, what, error)
        base = data.pop(BASE_KEY, None)
        layers.insert(0, data)
        if base is None:
            break
        if not isinstance(base, str) or not base.strip():
            raise error(f"{path}: base must be the path of a YAML file, got {shown(base)}")
        path = path.parent / base
    resolved: dict[str, Any] = {}
    for layer in layers:
        resolved = merge(resolved, layer)
    return resolved


def defaults_from(
    config: str, **overrides: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a pipeline function's parameters the values of ``configs/<config>`` as defaults.

    A run without ``-c`` then is the shipped run, and the YAML stays the one place its values are
    written. ``overrides`` replace a value for the bare run only (inference writes no file).
    """

    def apply(func: Callable[..., None]) -> Callable[..., None]:
        if not isinstance(func, FunctionType):
            raise TypeError(f"defaults_from decorates a function, not {type(func).__name__}")
        values = {**load_run_config(CONFIGS / config).get("parameters", {}), **overrides}
        names = list(inspect.signature(func).parameters)
        if set(names) != set(values):
            raise ConfigError(
                f"configs/{config}: its parameters {sorted(values)} must be exactly "
                f"{func.__name__}'s {sorted(names)}"
            )
        hints = inspect.get_annotations(func, eval_str=True)
        func.__defaults__ = tuple(TypeAdapter(hints[n]).validate_python(values[n]) for n in names)
        return func

    return apply


class _ResolvesBase(Pipeline):
    """ZenML's own config-file parsing, handed the file with its ``base:`` chain resolved."""

    def _parse_config_file(self, config_path: str | None, matcher: list[str]) -> dict[str, Any]:
        if not config_path:
            return super()._parse_config_file(config_path, matcher)
        resolved = load_run_config(config_path)
        with tempfile.TemporaryDirectory(prefix="prime-config-") as folder:
            flat = Path(folder) / Path(config_path).name
            flat.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
            return super()._parse_config_file(str(flat), matcher)


class OverlayPipeline(_ResolvesBase):
    """A static pipeline that reads overlay configs."""


class OverlayDynamicPipeline(_ResolvesBase, DynamicPipeline):
    """A dynamic pipeline (run at run time) that reads overlay configs."""


def overlay_pipeline(
    *, model: Model, dynamic: bool = False
) -> Callable[[Callable[..., None]], Pipeline]:
    """``@pipeline(model=..., dynamic=...)`` from zenml, building a pipeline that reads overlays."""

    def build(func: Callable[..., None]) -> Pipeline:
        kind = OverlayDynamicPipeline if dynamic else OverlayPipeline
        built = kind(name=func.__name__, entrypoint=func, model=model)
        built.__doc__ = func.__doc__
        return built

    return build
