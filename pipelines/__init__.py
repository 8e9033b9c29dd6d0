"""Pipelines: ``zenml pipeline run pipelines.training_pipeline -c configs/training.yaml``."""

from pipelines.training import training_pipeline

__all__ = ["training_pipeline"]
