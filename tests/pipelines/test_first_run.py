"""What a ZenML user types first: bare pipeline names, no ``-c``, named runs, a clean checkout."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import yaml
from click.testing import CliRunner
from pydantic import TypeAdapter
from zenml.cli.cli import cli
from zenml.client import Client
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.pipelines.pipeline_definition import Pipeline
from zenml.utils import source_utils
from zenml.utils.string_utils import format_name_template

import pipelines
from pipelines import inference_pipeline, retraining_pipeline, training_pipeline
from prime_model.data.sample import SampleConfig
from prime_model.data.source import DataSource
from tests.conftest import CHECKOUT_ZEN, CHECKOUT_ZEN_BEFORE, REPO_ROOT, SANDBOX
from tests.zenml_sandbox import (
    ENV,
    create_sandbox,
    describe_change,
    digest_tree,
    remove_sandbox,
)

CONFIGS = REPO_ROOT / "configs"
ALL_CONFIGS = sorted([*CONFIGS.glob("*.yaml"), *CONFIGS.glob("real/*.yaml")])
NAMES = ("training_pipeline", "retraining_pipeline", "inference_pipeline")

# --- bare names: `zenml pipeline run training_pipeline` ----------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_bare_and_dotted_names_load_the_same_pipeline(name: str) -> None:
    """What `zenml pipeline run SOURCE` loads (source_utils.load), from the repository root."""
    bare, dotted = source_utils.load(name), source_utils.load(f"pipelines.{name}")
    assert isinstance(bare, Pipeline)
    assert bare is dotted is getattr(pipelines, name)


def test_cli_gets_past_the_import_with_a_bare_name(tmp_path: Path) -> None:
    """The real CLI: a bare name imports, and the config's error is what stops the run."""
    config = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    config["parameters"]["predictor"]["num_heads"] = 3  # hidden_dim 32 % 3: invalid, no step runs
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["pipeline", "run", "training_pipeline", "-c", str(bad)])
    assert isinstance(result.exception, ValueError), result.output
    assert "Invalid or missing pipeline" in str(result.exception)


def test_cli_names_an_unknown_pipeline_in_one_line() -> None:
    result = CliRunner().invoke(cli, ["pipeline", "run", "no_such_pipeline"])
    assert result.exit_code == 1
    assert "Unable to import module `no_such_pipeline`" in result.output


# --- no `-c`: the defaults are the shipped configs ---------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "config", "not_defaulted"),
    [
        (training_pipeline, "training.yaml", set()),
        (retraining_pipeline, "retraining.yaml", set()),
        # a bare inference run keeps its embeddings as the artifact only: no file written
        (inference_pipeline, "inference.yaml", {"output_path"}),
    ],
)
def test_defaults_are_the_shipped_config(
    pipeline: Pipeline, config: str, not_defaulted: set[str]
) -> None:
    parameters: dict[str, Any] = yaml.safe_load((CONFIGS / config).read_text())["parameters"]
    signature = inspect.signature(pipeline.entrypoint).parameters
    hints = get_type_hints(pipeline.entrypoint)
    assert set(parameters) == set(signature)  # every parameter is in the config, and defaulted
    for name, value in parameters.items():
        default = signature[name].default
        assert default is not inspect.Parameter.empty, name
        if name in not_defaulted:
            assert default is None, name
        else:
            assert default == TypeAdapter(hints[name]).validate_python(value), name


@pytest.mark.parametrize("pipeline", [training_pipeline, retraining_pipeline, inference_pipeline])
def test_a_run_without_config_misses_no_parameter(pipeline: Pipeline) -> None:
    assert pipeline.copy().missing_parameters == []


def test_a_training_run_without_config_builds_its_steps() -> None:
    """What ZenML does before the first step: validate the arguments, build the DAG (the other
    two pipelines look up the production version while building)."""
    bare = training_pipeline.copy()
    bare.prepare()  # a missing parameter raises "Invalid or missing pipeline ... arguments"
    assert {"load_turns", "train_predictor", "register_model"} <= set(bare.invocations)
    assert bare._parameters["data"] == DataSource(sample=SampleConfig(num_conversations=800))


def test_a_config_still_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("parameters: {gate: {metric: recall@10, floor: 0.9}}\n")
    configured = training_pipeline.with_options(config_path=str(path))
    configured.prepare()
    assert configured._parameters["gate"].floor == 0.9  # what the run would get
    assert configured._parameters["predictor"].hidden_dim == 512  # the rest: the defaults


# --- run names: after the config that ran ------------------------------------------------------


def test_every_config_names_its_runs() -> None:
    """ZenML reads the top-level run_name; {date}-{time} keeps every run's name unique, and no
    two configs share a name, so a run's name says which config it ran."""
    named = {}
    for path in ALL_CONFIGS:
        config = PipelineRunConfiguration.model_validate(yaml.safe_load(path.read_text()))
        assert config.run_name is not None, path
        assert config.run_name.endswith("-{date}-{time}"), path
        named[path.relative_to(CONFIGS).as_posix()] = config.run_name
    assert len(set(named.values())) == len(named), named


def test_a_run_name_is_the_config_and_the_start_time() -> None:
    name = format_name_template("training-smoke-{date}-{time}")
    assert re.fullmatch(r"training-smoke-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}_\d{6}", name)


# --- the checkout and /tmp stay as they were ---------------------------------------------------


def test_zenml_writes_to_the_sandbox_not_the_checkout() -> None:
    client = Client()
    assert client.root == SANDBOX.repository  # not the checkout, whatever the working directory
    assert source_utils.get_source_root() == str(REPO_ROOT)  # sources still resolve here
    _ = client.active_stack_model  # what rewrites a repository's .zen/config.yaml
    assert (SANDBOX.repository / ".zen" / "config.yaml").is_file()
    assert describe_change(CHECKOUT_ZEN, CHECKOUT_ZEN_BEFORE, digest_tree(CHECKOUT_ZEN)) is None


def test_a_sandbox_is_removed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZENML_CONFIG_PATH", "ZENML_REPOSITORY_PATH", "ZENML_CUSTOM_SOURCE_ROOT"):
        monkeypatch.setenv(name, "")  # create_sandbox sets them; monkeypatch puts them back
    monkeypatch.setenv("PRIME_CACHE_DIR", "")
    monkeypatch.setenv(ENV, "")  # not a subprocess of this session: a sandbox of its own
    sandbox = create_sandbox(REPO_ROOT)
    (sandbox.config / "store.db").write_bytes(b"x" * 1024)
    assert sandbox.root.name.startswith("prime-tests-zenml-")
    remove_sandbox(sandbox)
    assert not sandbox.root.exists()


def test_a_subprocess_shares_the_session_sandbox_and_leaves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Subprocesses (some SIGKILLed) import this conftest too: they must not make their own."""
    assert os.environ[ENV] == str(SANDBOX.root)
    monkeypatch.setenv("ZENML_CONFIG_PATH", "")
    child = create_sandbox(REPO_ROOT)
    assert child.root == SANDBOX.root and not child.owned
    remove_sandbox(child)
    assert SANDBOX.root.is_dir()


def test_a_changed_zen_directory_is_reported(tmp_path: Path) -> None:
    zen = tmp_path / ".zen"
    absent = digest_tree(zen)
    assert absent is None
    zen.mkdir()
    (zen / "config.yaml").write_text("active_stack_id: a\n")
    first = digest_tree(zen)
    assert describe_change(zen, absent, first) == f"the tests created {zen}"
    assert describe_change(zen, first, digest_tree(zen)) is None
    (zen / "config.yaml").write_text("active_stack_id: b\n")
    assert describe_change(zen, first, digest_tree(zen)) == f"the tests changed {zen}"
    (zen / "config.yaml").unlink()
    zen.rmdir()
    assert describe_change(zen, first, digest_tree(zen)) == f"the tests removed {zen}"
