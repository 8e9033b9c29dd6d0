"""inference_pipeline and retraining_pipeline end to end, after a smoke training run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from zenml.client import Client
from zenml.enums import ExecutionStatus, ModelStages

from pipelines import inference_pipeline, retraining_pipeline
from pipelines.registry import production_version
from prime_model.artifacts import MODEL_NAME
from prime_model.errors import NoProductionModelError
from prime_model.runtime.batch_prediction import load_embeddings
from run import summary
from tests.conftest import REPO_ROOT

SMOKE = yaml.safe_load((REPO_ROOT / "configs" / "smoke.yaml").read_text())
INPUTS = REPO_ROOT / "examples" / "data" / "inputs.jsonl"


def _config(tmp_path: Path, name: str, parameters: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"parameters": parameters}))
    return str(path)


def test_no_production_version_is_a_clear_error() -> None:
    with pytest.raises(NoProductionModelError, match="run the training pipeline first"):
        production_version("never-trained")


def test_inference_predicts_with_production(
    production: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    out = tmp_path / "embeddings.parquet"
    parameters = {
        "data": {"kind": "file", "path": str(INPUTS), "format": "jsonl", "require_target": False},
        "validation": {"min_rows": 1, "min_conversations": 1, "require_target": False},
        "encoder": {"device": "cpu"},
        "backend": "eager",
        "output_path": str(out),
    }
    run = inference_pipeline.with_options(config_path=_config(tmp_path, "infer", parameters))()
    assert run is not None
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    assert run.model_version is not None and str(run.model_version.id) == production
    embeddings = run.steps["predict_embeddings"].outputs["embeddings"][0].load()
    assert len(embeddings) == 5
    written = load_embeddings(out)
    assert list(written["conversation_id"]) == list(embeddings["conversation_id"])
    assert written["embedding"].iloc[0].shape == (384,)
    assert f"embeddings: 5 rows, {out}" in summary(run.id)


def test_inference_auto_serves_the_stored_onnx_export(
    production: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    parameters = {
        "data": {"kind": "file", "path": str(INPUTS), "format": "jsonl", "require_target": False},
        "validation": {"min_rows": 1, "min_conversations": 1, "require_target": False},
        "encoder": {"device": "cpu"},
    }
    runs = {}
    for backend in ("eager", "auto"):
        config = _config(tmp_path, backend, {**parameters, "backend": backend})
        run = inference_pipeline.with_options(config_path=config)()
        assert run is not None
        runs[backend] = Client().get_pipeline_run(run.id)
    trained = Client().get_model_version(MODEL_NAME, production)
    int8 = trained.get_artifact("onnx_int8_model")
    assert int8 is not None and trained.get_artifact("onnx_model") is not None
    int8_accepted = int8.load() is not None
    embeddings = runs["auto"].steps["predict_embeddings"].outputs["embeddings"][0]
    assert embeddings.run_metadata["backend"] == ("onnx-int8" if int8_accepted else "onnx")
    eager = np.stack(
        runs["eager"].steps["predict_embeddings"].outputs["embeddings"][0].load()["embedding"]
    )
    auto = np.stack(embeddings.load()["embedding"])
    assert np.min(np.sum(eager * auto, axis=1)) > 0.99  # unit vectors: cosine


def _retraining(tmp_path: Path, name: str, retraining: dict[str, Any]) -> Any:
    parameters = {
        **SMOKE["parameters"],
        "drift": {"max_rows": 50},
        "retraining": retraining,
    }
    return retraining_pipeline.with_options(config_path=_config(tmp_path, name, parameters))()


def test_retraining_stops_early_when_not_due(
    production: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    run = _retraining(tmp_path, "skip", {"on_drift": False, "min_new_rows": None})
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    assert "detect_drift" in run.steps and "train_predictor" not in run.steps
    decision = run.steps["decide_retraining"].outputs["retraining_decision"][0].load()
    assert not decision.retrain
    assert decision.reasons == ["drift does not trigger retraining; retraining by size is off"]
    assert "drift_report" in run.steps["detect_drift"].outputs
    assert "retraining: no retraining: drift does not trigger" in summary(run.id)
    # no model was trained: the version the run started with is gone, production is unchanged
    assert run.model_version is None
    assert str(Client().get_model_version(MODEL_NAME, ModelStages.PRODUCTION).id) == production
    assert run.steps["discard_empty_version"].status == ExecutionStatus.COMPLETED


def test_retraining_trains_and_gates_when_due(
    production: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    run = _retraining(tmp_path, "retrain", {"on_drift": True, "min_new_rows": 1})
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    assert run.steps["train_predictor"].status == ExecutionStatus.COMPLETED
    assert run.steps["register_model"].status == ExecutionStatus.COMPLETED
    combined = run.steps["combine_turns"].outputs["combined_turns"][0].load()
    assert run.model_version is not None
    version = Client().get_model_version(MODEL_NAME, run.model_version.id)
    assert "promotion" in version.run_metadata and "retraining" in version.run_metadata
    assert len(combined) > 0
    text = summary(run.id)
    assert "retraining: retrain: " in text and "new turns >= min_new_rows=1" in text
    assert "gate: " in text and "| **model** |" in text
