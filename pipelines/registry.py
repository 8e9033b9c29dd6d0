"""The Model Control Plane's production version, and what it was trained from and serves with.

The one place the pipelines, the quality gate and the load test look production up, so "no
production version yet" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from zenml.client import Client
from zenml.enums import ModelStages
from zenml.models import (
    ArtifactVersionResponse,
    ModelVersionResponse,
    PipelineRunResponse,
    StepRunResponse,
)

from prime_model.artifacts import MODEL_NAME, PREDICTOR_CHECKPOINT
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.data.source import DataSource
from prime_model.encode.encoders import EncoderConfig
from prime_model.errors import NoProductionModelError
from prime_model.evaluate.evaluation_set import EvaluationSet, evaluation_set_of
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.runtime.onnx_file import VerifiedOnnx


def current_production(model_name: str = MODEL_NAME) -> ModelVersionResponse | None:
    """The version now in production, None when no version has passed the gate yet."""
    try:
        return Client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        return None


def production_version(model_name: str = MODEL_NAME) -> ModelVersionResponse:
    """The version now in production, or an error that says how to get one."""
    version = current_production(model_name)
    if version is None:
        raise NoProductionModelError(
            f"model {model_name!r} has no production version; run the training pipeline first "
            "(`make run`, or `zenml pipeline run pipelines.training_pipeline -c "
            "configs/training.yaml`) and let a version pass the quality gate"
        )
    return version


def production_twin(model_name: str, version: str) -> str | None:
    """The production version's name when it holds the same weights as ``version`` (a cached
    rerun links the very checkpoint artifact; a retrain can reproduce the same sha256)."""
    production = current_production(model_name)
    if production is None or production.name == version:
        return None
    mine = Client().get_model_version(model_name, version).get_artifact(PREDICTOR_CHECKPOINT)
    theirs = production.get_artifact(PREDICTOR_CHECKPOINT)
    if mine is None or theirs is None:
        return None
    same_sha = mine.run_metadata.get("weights_sha256")
    if mine.id == theirs.id or (same_sha and same_sha == theirs.run_metadata.get("weights_sha256")):
        return str(production.name)
    return None


def production_score(model_name: str, metric: str) -> float | None:
    """``metric`` as recorded on the version now in production, None when there is none."""
    current = current_production(model_name)
    if current is None:
        return None
    value = current.run_metadata.get(metric)
    return float(value) if isinstance(value, int | float) else None


EVALUATION_SET: Final = "evaluation_set"  # model version metadata: what it was judged on


def production_evaluation_set(model_name: str = MODEL_NAME) -> EvaluationSet | None:
    """The test split production's score comes from, None when unknown or none in production.

    A version registered before sets were recorded gets its set from its training run's
    ``test_turns`` (so an old sample-data production is still told apart from real data).
    """
    current = current_production(model_name)
    if current is None:
        return None
    recorded = current.run_metadata.get(EVALUATION_SET)
    if isinstance(recorded, dict):
        return EvaluationSet.model_validate(recorded)
    try:
        test_turns = _producer_run(current).steps["split_turns"].outputs["test_turns"][0]
    except (NoProductionModelError, KeyError, IndexError):
        return None
    return evaluation_set_of(test_turns.load())


def _producer_run(version: ModelVersionResponse) -> PipelineRunResponse:
    """The run that trained the version's checkpoint.

    Artifacts are read off that run rather than by name on the version: inference runs link
    their own artifacts (e.g. ``validated_turns``) to the production version too.
    """
    checkpoint = version.get_artifact(PREDICTOR_CHECKPOINT)
    if checkpoint is None or checkpoint.producer_pipeline_run_id is None:
        raise NoProductionModelError(
            f"model version {version.name!r} has no {PREDICTOR_CHECKPOINT} produced by a "
            "pipeline run; expected a version made by the training or retraining pipeline"
        )
    return Client().get_pipeline_run(checkpoint.producer_pipeline_run_id)


def training_data(version: ModelVersionResponse) -> TrainingData:
    """The artifacts the version's checkpoint was trained from."""
    run = _producer_run(version)
    split = run.steps["split_turns"]
    return TrainingData(
        turns=split.regular_inputs["turns"][0],
        train_turns=split.outputs["train_turns"][0],
        encoded_train=run.steps["encode_turns"].outputs["encoded_train"][0],
        data=split_data(split),
    )


def split_data(split: StepRunResponse) -> DataSource | None:
    """The sources a ``split_turns`` run split per source (``kind: files``); None: one table."""
    data = split.config.parameters.get("data")
    return None if data is None else DataSource.model_validate(data)


@dataclass(frozen=True)
class TrainingData:
    turns: ArtifactVersionResponse  # every turn the model learned from, before the split
    train_turns: ArtifactVersionResponse
    encoded_train: ArtifactVersionResponse
    data: DataSource | None = None  # kind: files: the sources it was split by, per source


@dataclass(frozen=True)
class ServingArtifacts:
    checkpoint: PredictorCheckpoint
    onnx_fp32: VerifiedOnnx | None
    onnx_int8: VerifiedOnnx | None
    index: RetrievalIndex
    encoder: EncoderConfig  # the one the index (and the training targets) were encoded with
    index_config: IndexConfig  # how that index was built: a user's corpus is indexed alike


def serving_artifacts(version: ModelVersionResponse) -> ServingArtifacts:
    """What a version serves with, read off the run that trained it."""
    run = _producer_run(version)
    indexing = run.steps.get("index_corpus")
    if indexing is None:
        raise NoProductionModelError(
            f"model version {version.name!r} was trained before the index_corpus step existed, "
            "so it has no retrieval_index; retrain it (`make run`) to serve it"
        )
    export = run.steps.get("export_onnx")
    onnx_fp32 = onnx_int8 = None
    if export is not None:
        onnx_fp32 = export.outputs["onnx_model"][0].load()
        onnx_int8 = export.outputs["onnx_int8_model"][0].load()
    return ServingArtifacts(
        checkpoint=version.get_artifact(PREDICTOR_CHECKPOINT).load(),  # type: ignore[union-attr]
        onnx_fp32=onnx_fp32,
        onnx_int8=onnx_int8,
        index=indexing.outputs["retrieval_index"][0].load(),
        encoder=EncoderConfig.model_validate(indexing.config.parameters["encoder"]),
        index_config=IndexConfig.model_validate(indexing.config.parameters["index"]),
    )
