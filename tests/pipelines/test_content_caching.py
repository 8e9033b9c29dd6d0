"""Caching that follows content: a file source is read on every run, and the steps after it come
from the cache exactly when the file's content (its fingerprint) is unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

from zenml import pipeline
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse

from pipelines.registry import split_data
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from steps import load_turns, split_turns, validate_turns
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "data" / "user_turns.jsonl"
STEPS = ("load_turns", "validate_turns", "split_turns")


@pipeline
def data_steps(data: DataSource) -> None:
    """The training pipeline's data steps, called as it calls them."""
    turns = load_turns.with_options(enable_cache=data.kind == "sample")(data)
    validated, _ = validate_turns(turns, ValidationConfig(min_rows=2, min_conversations=2))
    split_turns(validated, 0.1, 0.1, 0)


def _statuses(run: PipelineRunResponse | None) -> dict[str, ExecutionStatus]:
    assert run is not None
    steps = run.steps
    return {name: steps[name].status for name in STEPS}


def test_unchanged_content_is_cached_and_a_change_reruns(tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl"
    shutil.copyfile(EXAMPLE, path)
    data = DataSource(kind="file", path=str(path), format="jsonl")
    data_steps(data)
    path.touch()  # a new modification time, the same content
    again = _statuses(data_steps(data))
    assert again == {
        "load_turns": ExecutionStatus.COMPLETED,  # read every run: the file may have changed
        "validate_turns": ExecutionStatus.CACHED,
        "split_turns": ExecutionStatus.CACHED,
    }
    path.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("Tanzania.", "Tanzania, East Africa."),
        encoding="utf-8",
    )
    changed = _statuses(data_steps(data))
    assert set(changed.values()) == {ExecutionStatus.COMPLETED}


@pipeline
def split_by_source(data: DataSource) -> None:
    turns = load_turns.with_options(enable_cache=False)(data)
    split_turns(turns, 0.2, 0.2, 0, data)


def test_retraining_reads_the_sources_production_was_split_by(tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copyfile(EXAMPLE, tmp_path / f"{name}.jsonl")
    data = DataSource(
        kind="files",
        sources=[
            {"path": str(tmp_path / "a.jsonl"), "name": "a"},
            {"path": str(tmp_path / "b.jsonl"), "name": "b", "weight": 0.0},
        ],
    )
    run = split_by_source(data)
    assert run is not None
    recorded = split_data(run.steps["split_turns"])
    assert recorded == data  # what retraining_data(recorded, new) extends with the new turns
    train = run.steps["split_turns"].outputs["train_turns"][0].load()
    assert set(train["source"]) == {"a"}  # weight 0: never trained on
