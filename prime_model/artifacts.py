"""Names the pipelines store artifacts and the model under, written once.

The training step names its output with these, and the registry, the model card and the
inference pipeline look them up by the same constants, so a rename cannot silently break a
lookup. Plain strings: ``prime_model`` never imports zenml.
"""

from __future__ import annotations

from typing import Final

MODEL_NAME: Final = "prime-predictor"
"""The Model Control Plane model every training run versions."""
PREDICTOR_CHECKPOINT: Final = "predictor_checkpoint"
"""The trained weights (a :class:`~prime_model.checkpoint.PredictorCheckpoint`)."""
