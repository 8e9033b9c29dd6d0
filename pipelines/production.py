"""The Model Control Plane's production version, or a clear error saying how to get one."""

from __future__ import annotations

from dataclasses import dataclass

from zenml.client import Client
from zenml.enums import ModelStages
from zenml.models import ArtifactVersionResponse, ModelVersionResponse, PipelineRunResponse

from pipelines.training import MODEL_NAME
from prime_model.errors import PrimeError


class NoProductionModelError(PrimeError):
    """Nothing to predict with or compare against yet."""


def production_version(model_name: str = MODEL_NAME) -> ModelVersionResponse:
    try:
        return Client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        raise NoProductionModelError(
            f"model {model_name!r} has no production version; run the training pipeline first "
            "(`make run`, or `zenml pipeline run pipelines.training_pipeline -c "
            "configs/training.yaml`) and let a version pass the quality gate"
        ) from None


def _producer_run(version: ModelVersionResponse) -> PipelineRunResponse:
    """The run that trained the version's checkpoint.

    Artifacts are read off that run rather than by name on the version: inference runs link
    their own artifacts (e.g. ``validated_turns``) to the production version too.
    """
    checkpoint = version.get_artifact("predictor_checkpoint")
    if checkpoint is None or checkpoint.producer_pipeline_run_id is None:
        raise NoProductionModelError(
            f"model version {version.name!r} has no predictor_checkpoint produced by a "
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
    )


@dataclass(frozen=True)
class TrainingData:
    turns: ArtifactVersionResponse  # every turn the model learned from, before the split
    train_turns: ArtifactVersionResponse
    encoded_train: ArtifactVersionResponse
