from __future__ import annotations

import tempfile
from typing import Annotated

from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType
from zenml.types import HTMLString

from prime_model.artifacts import PREDICTOR_CHECKPOINT
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.train.report import training_curves_html
from prime_model.train.training import train_predictor as fit
from steps.materializers import PredictorCheckpointMaterializer

TrainOutputs = tuple[
    Annotated[
        PredictorCheckpoint,
        ArtifactConfig(name=PREDICTOR_CHECKPOINT, artifact_type=ArtifactType.MODEL),
    ],
    Annotated[list[dict[str, float]], "training_history"],
    Annotated[HTMLString, "training_curves"],
]


@step(output_materializers={PREDICTOR_CHECKPOINT: PredictorCheckpointMaterializer})
def train_predictor(
    encoded_train: EncodedTurns,
    encoded_val: EncodedTurns,
    predictor_config: PredictorConfig,
    training_config: TrainingConfig,
) -> TrainOutputs:
    """Train with Lightning; the best epoch by val/recall@10 becomes the versioned model."""
    with tempfile.TemporaryDirectory(prefix="prime-train-") as workdir:  # Lightning's own files
        result = fit(
            encoded_train,
            encoded_val,
            predictor_config,
            training_config,
            workdir,
            inside_pipeline=True,  # ranks are spawned, never started by re-running the step
            write=False,  # the materializer writes the checkpoint, once
        )
    return result.checkpoint, result.history, HTMLString(training_curves_html(result.history))
