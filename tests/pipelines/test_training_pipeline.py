"""training_pipeline end to end on configs/smoke.yaml, in the tests' throwaway ZenML store."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from zenml.client import Client
from zenml.enums import ArtifactType, ExecutionStatus, ModelStages
from zenml.models import PipelineRunResponse

from pipelines import training_pipeline
from prime_model.artifacts import PREDICTOR_CHECKPOINT
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.runtime.onnx_file import VerifiedOnnx
from tests.conftest import REPO_ROOT

SMOKE = REPO_ROOT / "configs" / "smoke.yaml"
OUTPUTS = {
    "load_turns": {"turns"},
    "validate_turns": {"validated_turns", "validation_report"},
    "split_turns": {"train_turns", "val_turns", "test_turns"},
    "encode_turns": {"encoded_train", "encoded_val", "encoded_test"},
    "train_predictor": {"predictor_checkpoint", "training_history", "training_curves"},
    "evaluate_predictor": {"evaluation", "evaluation_report"},
    "export_onnx": {"onnx_model", "onnx_int8_model", "quantization"},
    "benchmark_latency": {"latency_benchmark", "latency_report"},
    "register_model": {"promotion"},
    "model_card": {"model_card"},
}
CACHED_ON_RERUN = ("load_turns", "validate_turns", "split_turns", "encode_turns")


def test_runs_twice_with_caching_and_registers_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    first = training_pipeline.with_options(config_path=str(SMOKE))()
    second = training_pipeline.with_options(config_path=str(SMOKE))()
    assert first is not None
    assert second is not None
    client = Client()
    run, rerun = client.get_pipeline_run(first.id), client.get_pipeline_run(second.id)
    assert run.status == rerun.status == ExecutionStatus.COMPLETED
    for step_name, names in OUTPUTS.items():
        assert set(run.steps[step_name].outputs) == names, step_name
    for step_name in CACHED_ON_RERUN:
        assert rerun.steps[step_name].status == ExecutionStatus.CACHED, step_name
    assert rerun.steps["register_model"].status == ExecutionStatus.COMPLETED  # never cached

    checkpoint = run.steps["train_predictor"].outputs[PREDICTOR_CHECKPOINT][0]
    assert checkpoint.type == ArtifactType.MODEL
    loaded = checkpoint.load()
    assert isinstance(loaded, PredictorCheckpoint)
    _check_serving_artifacts(run, loaded)

    for pipeline_run in (run, rerun):
        assert pipeline_run.model_version is not None
        version = client.get_model_version("prime-predictor", pipeline_run.model_version.id)
        assert "recall@10" in version.run_metadata
        assert "evaluation" in version.run_metadata
        assert "promote" in version.run_metadata["promotion"]  # type: ignore[operator]
    _check_no_churn(client, run)


def _check_no_churn(client: Client, run: PipelineRunResponse) -> None:
    """A rerun whose (cached) checkpoint is production's leaves production where it was."""
    assert run.model_version is not None
    client.get_model_version("prime-predictor", run.model_version.id).set_stage(
        ModelStages.PRODUCTION, force=True
    )
    third = training_pipeline.with_options(config_path=str(SMOKE))()
    assert third is not None
    third = client.get_pipeline_run(third.id)
    assert third.steps["train_predictor"].status == ExecutionStatus.CACHED
    decision = third.steps["register_model"].outputs["promotion"][0].load()
    production = client.get_model_version("prime-predictor", ModelStages.PRODUCTION)
    assert production.id == run.model_version.id and not decision.promote
    assert f"the same weights as production version {production.name}" in decision.reasons[-1]


# zenml's own PipelineRunFilter reads one of its deprecated fields in list_pipeline_runs
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_an_invalid_config_fails_before_any_step_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    config = yaml.safe_load(SMOKE.read_text())
    config["parameters"]["predictor"]["num_heads"] = 3  # hidden_dim 32 is not divisible by 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    runs_before = len(Client().list_pipeline_runs(size=100))
    with pytest.raises(ValueError, match="Invalid or missing pipeline") as info:
        training_pipeline.with_options(config_path=str(bad))()
    cause = str(info.value.__cause__)  # zenml logs it above its own message
    assert "predictor" in cause
    assert "hidden_dim=32 must be divisible by num_heads=3" in cause
    assert len(Client().list_pipeline_runs(size=100)) == runs_before


def _check_serving_artifacts(run: PipelineRunResponse, checkpoint: PredictorCheckpoint) -> None:
    """The ONNX exports are of this checkpoint, int8 exists iff accepted, latency is logged."""
    export = run.steps["export_onnx"].outputs
    assert export["onnx_model"][0].type == ArtifactType.MODEL
    fp32 = export["onnx_model"][0].load()
    assert isinstance(fp32, VerifiedOnnx) and fp32.metadata.kind == "fp32"
    assert fp32.metadata.weights_sha256 == checkpoint.metadata.weights_sha256
    verdict = export["quantization"][0].load()
    int8 = export["onnx_int8_model"][0].load()
    assert verdict.accepted == (int8 is not None)
    if int8 is not None:
        assert int8.metadata.kind == "int8"
    benchmark = run.steps["benchmark_latency"].outputs["latency_benchmark"][0].load()
    assert {row.backend for row in benchmark.trained.rows} == {"eager", "onnx", "onnx-int8"}
    assert benchmark.presets == {}
    assert run.model_version is not None
    version = Client().get_model_version("prime-predictor", run.model_version.id)
    latency = version.run_metadata["latency"]
    assert isinstance(latency, dict) and "onnx@1" in latency["trained"]
    assert latency["trained"]["eager@1"]["speedup_vs_eager"] == 1.0
