"""PRIME embedding predictor: a small transformer from conversation context to a target embedding.

The package never imports zenml; the pipelines in ``steps/`` and ``pipelines/`` wrap it.
"""

from prime_model.checkpoint import (
    CheckpointMetadata,
    PredictorCheckpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.errors import (
    CheckpointError,
    ConfigError,
    DataValidationError,
    ExportError,
    PredictorError,
    PrimeError,
)
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.inference import InferencePredictor
from prime_model.runtime.loader import create_predictor
from prime_model.runtime.optimized import OptimizedPredictor

__all__ = [
    "CheckpointError",
    "CheckpointMetadata",
    "ConfigError",
    "DataValidationError",
    "EmbeddingPredictor",
    "ExportError",
    "InferencePredictor",
    "OptimizedPredictor",
    "PredictorCheckpoint",
    "PredictorConfig",
    "PredictorError",
    "PrimeError",
    "TrainingConfig",
    "create_predictor",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
]
