"""Pipelines: ``zenml pipeline run pipelines.training_pipeline -c configs/training.yaml``."""

from pipelines.inference import inference_pipeline
from pipelines.retraining import retraining_pipeline
from pipelines.serving import serving_pipeline
from pipelines.training import training_pipeline

__all__ = [
    "inference_pipeline",
    "retraining_pipeline",
    "serving_pipeline",
    "training_pipeline",
]
