"""Scheduled retraining: the shipped schedule config, its checks, and the local stack's refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from zenml.client import Client
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.config.schedule import Schedule

import pipelines.schedule
from pipelines.run_config import load_run_config
from pipelines.schedule import check_cron, load_schedule, main, schedule_retraining
from prime_model.errors import (
    ConfigError,
    PrimeError,
    ScheduleConfigError,
    SchedulingUnsupportedError,
)
from tests.conftest import REPO_ROOT

SHIPPED = REPO_ROOT / "configs" / "retraining_schedule.yaml"


def test_shipped_config_is_a_nightly_schedule() -> None:
    schedule = load_schedule(SHIPPED)
    assert isinstance(schedule, Schedule)
    assert schedule.cron_expression == "0 3 * * *"
    assert schedule.name == "prime-retraining-nightly"
    assert schedule.catchup is False


def test_shipped_config_is_the_retraining_config_plus_a_schedule() -> None:
    scheduled = load_run_config(SHIPPED)
    plain = load_run_config(REPO_ROOT / "configs" / "retraining.yaml")
    own = {"schedule", "run_name"}  # the nightly runs get their own name
    assert {k: v for k, v in scheduled.items() if k not in own} == {
        k: v for k, v in plain.items() if k != "run_name"
    }
    assert scheduled["run_name"] == "retraining-nightly-{date}-{time}"
    # ZenML reads the same section into the same Schedule (the CLI path: -c this file)
    run_config = PipelineRunConfiguration.model_validate(scheduled)
    assert run_config.schedule == load_schedule(SHIPPED)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedule.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("parameters: {}\n", "expected a 'schedule:' mapping"),
        ("- a list\n", "expected a 'schedule:' mapping"),
        ("schedule: nightly\n", "got 'nightly'"),
        ("schedule: {cron: '0 3 * * *'}\n", "unknown schedule keys ['cron']"),
        ("schedule: {name: x}\n", "schedule.cron_expression must be a cron string"),
        ("schedule: {cron_expression: 3}\n", "got 3"),
        ("schedule: [1, 2\n", "not valid YAML"),
        ("schedule: {cron_expression: '0 3 * *'}\n", "has 4 fields; expected 5"),
        ("schedule: {cron_expression: '61 3 * * *'}\n", "out of range"),
        ("schedule: {cron_expression: '0 3 * * *', catchup: maybe}\n", "invalid schedule"),
    ],
)
def test_bad_schedule_files_name_the_file_and_problem(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScheduleConfigError) as info:
        load_schedule(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_missing_schedule_file(tmp_path: Path) -> None:
    with pytest.raises(ScheduleConfigError, match="no such schedule config file"):
        load_schedule(tmp_path / "absent.yaml")
    with pytest.raises(ScheduleConfigError, match="cannot read"):
        load_schedule(tmp_path)  # a directory


@pytest.mark.parametrize(
    "cron",
    [
        "0 3 * * *",
        "@daily",
        "*/15 * * * *",
        "0 3 * * mon-fri",
        "0,30 1-5/2 1 jan-jun 1,3",
        "0 3 * * 7",
        "0 0 3 * * *",  # Kubeflow: seconds first
    ],
)
def test_valid_cron(cron: str) -> None:
    check_cron(cron)


@pytest.mark.parametrize(
    ("cron", "needle"),
    [
        ("0 24 * * *", "'0 24 * * *' is not valid ([0 24 * * *] is not acceptable, out of range)"),
        ("0 3 0 * *", "out of range"),
        ("0 3 * 13 *", "out of range"),
        ("0 3 * * 8", "out of range"),
        ("*/0 * * * *", "step '0' in field 0 is not acceptable"),
        ("0 3 * * funday", "is not valid"),
        ("@nightly", "has 1 fields"),
        ("", "has 0 fields"),
        ("0 0 0 3 * * *", "has 7 fields"),
        ("60 0 3 * * *", "out of range"),
    ],
)
def test_bad_cron_is_a_config_error(cron: str, needle: str) -> None:
    with pytest.raises(ScheduleConfigError) as info:
        check_cron(cron)
    assert needle in str(info.value)


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the ZenML source root, as in the other pipeline tests


# zenml's own PipelineRunFilter reads one of its deprecated fields in list_pipeline_runs
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
@pytest.mark.usefixtures("in_repo")
def test_local_stack_refuses_with_a_pointer_to_the_alternatives() -> None:
    """Real ZenML on the throwaway store: the default (local) stack cannot schedule."""
    client = Client()
    assert client.active_stack_model.components  # the default, local stack
    runs_before = client.list_pipeline_runs(size=1).total
    with pytest.raises(SchedulingUnsupportedError) as info:
        schedule_retraining(SHIPPED)
    message = str(info.value)
    assert "cannot schedule" in message
    assert "infra/local/" in message
    assert "Kubernetes or Kubeflow stack" in message
    assert isinstance(info.value, PrimeError)
    # what ZenML 0.98 itself raises, translated above
    assert isinstance(info.value.__cause__, ValueError)
    assert "does not support scheduling" in str(info.value.__cause__)
    # nothing half-done: no schedule registered, no run started
    assert client.list_schedules(size=1).total == 0
    assert client.list_pipeline_runs(size=1).total == runs_before


class _FakePipeline:
    """Stands in for retraining_pipeline: records with_options and raises what it is told."""

    def __init__(self, error: Exception | None = None) -> None:
        self.options: dict[str, Any] = {}
        self.error = error

    def with_options(self, **options: Any) -> _FakePipeline:
        self.options = options
        return self

    def __call__(self) -> None:
        if self.error is not None:
            raise self.error


def test_a_schedulable_stack_gets_the_config_and_the_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakePipeline()
    monkeypatch.setattr(pipelines.schedule, "retraining_pipeline", fake)
    schedule = schedule_retraining(SHIPPED)
    assert fake.options == {"config_path": str(SHIPPED), "schedule": schedule}
    assert schedule.cron_expression == "0 3 * * *"


def test_other_errors_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakePipeline(ValueError("parameter 'drift' is invalid"))
    monkeypatch.setattr(pipelines.schedule, "retraining_pipeline", fake)
    with pytest.raises(ValueError, match="parameter 'drift' is invalid"):
        schedule_retraining(SHIPPED)


def test_bad_schedule_never_reaches_zenml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakePipeline()
    monkeypatch.setattr(pipelines.schedule, "retraining_pipeline", fake)
    with pytest.raises(ScheduleConfigError, match="has 4 fields"):
        schedule_retraining(_write(tmp_path, "schedule: {cron_expression: '0 3 * *'}\n"))
    assert fake.options == {}


def test_main_exits_2_with_the_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="pipelines.schedule"):
        assert main([str(tmp_path / "absent.yaml")]) == 2
    assert "no such schedule config file" in caplog.text


def test_main_exits_0_when_scheduled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipelines.schedule, "retraining_pipeline", _FakePipeline())
    assert main([str(SHIPPED)]) == 0
