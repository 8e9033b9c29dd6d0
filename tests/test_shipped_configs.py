"""Every shipped config resolves to valid typed parameters, and no value is written twice.

A variant says only what differs from its base (``base: training.yaml``), and a section that
names a preset (``predictor: {preset: minilm}``) sets only the fields it changes: a key that
repeats its base's or its preset's value fails here, so a change to the base reaches the variant.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from pydantic import BaseModel, TypeAdapter
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.pipelines.pipeline_definition import Pipeline

from pipelines import inference_pipeline, retraining_pipeline, training_pipeline
from pipelines.run_config import BASE_KEY, CONFIGS, load_run_config, merge, read_run_config
from prime_model.config import PRESETS_DIR, PresetConfig, read_fields
from prime_model.errors import ConfigError
from prime_model.presets import predictor_config, training_config
from tests.conftest import REPO_ROOT

SHIPPED = sorted([*CONFIGS.glob("*.yaml"), *CONFIGS.glob("real/*.yaml")])
PIPELINES = (training_pipeline, retraining_pipeline, inference_pipeline)
# what a variant must repeat to stay a valid ZenML run config when read alone
ZENML_REQUIRED = frozenset({"model.name"})


def _name(path: Path) -> str:
    return path.relative_to(CONFIGS).as_posix()


def pipeline_for(parameters: Mapping[str, Any]) -> Pipeline:
    """The pipeline with the fewest parameters that takes all of ``parameters``."""
    fits = [
        p for p in PIPELINES if set(parameters) <= set(inspect.signature(p.entrypoint).parameters)
    ]
    assert fits, f"no pipeline takes {sorted(parameters)}"
    return min(fits, key=lambda p: len(inspect.signature(p.entrypoint).parameters))


def leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every non-mapping value; an empty mapping is a value too."""
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(data: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def restated(path: Path) -> list[str]:
    """Keys that write a value already given: by the file's base, or by the preset it names."""
    found = []
    own = read_run_config(path)
    base = own.pop(BASE_KEY, None)
    if base is not None:
        below = load_run_config(path.parent / base)
        for key, value in leaves(own):
            present, old = lookup(below, key)
            if present and old == value and key not in ZENML_REQUIRED:
                found.append(f"{key} (= its base {base})")
    parameters = load_run_config(path).get("parameters", {})
    hints = get_type_hints(pipeline_for(parameters).entrypoint)
    for name, section in parameters.items():
        if not isinstance(section, Mapping) or "preset" not in section:
            continue
        cls = hints[name]
        assert isinstance(cls, type) and issubclass(cls, PresetConfig), name
        preset = read_fields(cls, PRESETS_DIR / cls.preset_kind / f"{section['preset']}.yaml")
        found += [
            f"parameters.{name}.{field} (= preset {section['preset']})"
            for field, value in section.items()
            if field != "preset" and field in preset and preset[field] == value
        ]
    return found


@pytest.mark.parametrize("path", SHIPPED, ids=_name)
def test_a_shipped_config_resolves_to_valid_parameters(path: Path) -> None:
    resolved = load_run_config(path)
    PipelineRunConfiguration.model_validate(resolved)  # the run settings ZenML reads
    parameters = resolved["parameters"]
    hints = get_type_hints(pipeline_for(parameters).entrypoint)
    for name, value in parameters.items():
        typed = TypeAdapter(hints[name]).validate_python(value)
        if isinstance(typed, BaseModel):  # a preset is resolved: the values are written out
            assert "preset" not in typed.model_dump()


@pytest.mark.parametrize("path", SHIPPED, ids=_name)
def test_a_shipped_file_alone_is_a_valid_zenml_run_config(path: Path) -> None:
    """ZenML ignores ``base:`` (an unknown key), so a variant read alone still validates."""
    PipelineRunConfiguration.model_validate(read_run_config(path))


@pytest.mark.parametrize("path", SHIPPED, ids=_name)
def test_no_value_is_written_twice(path: Path) -> None:
    assert restated(path) == []


@pytest.mark.parametrize("path", SHIPPED, ids=_name)
def test_a_shipped_config_reads_no_test_file(path: Path) -> None:
    for key, value in leaves(load_run_config(path)):
        if isinstance(value, str) and key.endswith(".path"):
            assert not value.startswith("tests/"), key
            if not value.startswith("../"):  # ../shared: real data, not shipped
                assert (REPO_ROOT / value).is_file(), key


def test_the_variants_are_overlays() -> None:
    bases = {p.stem: read_run_config(p).get(BASE_KEY) for p in SHIPPED}
    assert {name: base for name, base in bases.items() if base} == {
        "training_k8s": "training.yaml",
        "smoke_docker": "smoke.yaml",
        "retraining_schedule": "retraining.yaml",
        "topiocqa": "canard.yaml",
        "real": "training.yaml",
    }


def test_configs_name_presets_instead_of_copying_them() -> None:
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        assert "hidden_dim: 512" not in text, _name(path)
    for path in sorted((CONFIGS / "real").glob("*.yaml")):  # benchmarks/real_data.py's model
        parameters = load_run_config(path)["parameters"]
        assert parameters["predictor"] == parameters["training"] == {"preset": "real"}
        assert (parameters["data"]["kind"], parameters["data"]["format"]) == ("file", path.stem)


def test_zenml_reads_a_variant_with_its_base(tmp_path: Path) -> None:
    """What ``zenml pipeline run ... -c configs/training_k8s.yaml`` validates before it runs."""
    configured = training_pipeline.with_options(config_path=str(CONFIGS / "training_k8s.yaml"))
    configured.prepare()
    training = configured._parameters["training"]
    assert training == training_config("default").model_copy(
        update={"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"}
    )
    assert configured._parameters["predictor"] == predictor_config("minilm")
    assert configured.configuration.model is not None
    assert configured.configuration.model.license == "Apache-2.0"  # from training.yaml
    assert "orchestrator.kubernetes" in configured.configuration.settings


def test_the_pipeline_defaults_are_the_shipped_configs() -> None:
    for pipeline, config in zip(
        PIPELINES, ("training.yaml", "retraining.yaml", "inference.yaml"), strict=True
    ):
        parameters = load_run_config(CONFIGS / config)["parameters"]
        hints = get_type_hints(pipeline.entrypoint)
        for name, param in inspect.signature(pipeline.entrypoint).parameters.items():
            expected = None if name == "output_path" else parameters[name]  # no file when bare
            assert param.default == TypeAdapter(hints[name]).validate_python(expected), name


# --- the overlay mechanism ------------------------------------------------------------------


def test_merge_merges_mappings_and_replaces_everything_else() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": {"z": 3}}
    over = {"a": {"y": [3]}, "b": None, "c": 4}
    assert merge(base, over) == {"a": {"x": 1, "y": [3]}, "b": None, "c": 4}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": {"z": 3}}  # untouched


def test_a_base_chain_resolves_relative_to_each_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("run_name: r\nparameters: {gate: {floor: 0.5}}\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nparameters: {seed: 1}\n")
    (tmp_path / "top.yaml").write_text("base: sub/mid.yaml\nrun_name: t\n")
    assert load_run_config(tmp_path / "top.yaml") == {
        "run_name": "t",
        "parameters": {"gate": {"floor": 0.5}, "seed": 1},
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("base: loop.yaml\n", "base chain loops back"),
        ("base: [a.yaml]\n", "base must be the path of a YAML file"),
        ("base: missing.yaml\n", "missing.yaml"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_a_bad_base_is_a_config_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_run_config(path)


def test_a_restated_value_is_found(tmp_path: Path) -> None:
    """The check above would catch a variant that copies its base or its preset."""
    (tmp_path / "base.yaml").write_text("run_name: a\nparameters: {predictor: {preset: minilm}}\n")
    (tmp_path / "variant.yaml").write_text(
        "base: base.yaml\nrun_name: a\nparameters: {predictor: {hidden_dim: 512, num_layers: 1}}\n"
    )
    assert restated(tmp_path / "variant.yaml") == [
        "run_name (= its base base.yaml)",
        "parameters.predictor.hidden_dim (= preset minilm)",
    ]
