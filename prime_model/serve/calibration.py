"""Random conversations of unit vectors: inputs for timing and parity checks without data."""

from __future__ import annotations

import numpy as np

from prime_model.config import PredictorConfig
from prime_model.serve.inference import Batch


def random_batch(config: PredictorConfig, batch_size: int, turns: int, seed: int) -> Batch:
    """``batch_size`` conversations of ``turns`` unmasked turns, every embedding L2-normalised
    like a sentence encoder's output."""
    rng = np.random.default_rng(seed)
    context = rng.standard_normal((batch_size, turns, config.input_dim)).astype(np.float32)
    query = rng.standard_normal((batch_size, config.input_dim)).astype(np.float32)
    norm = np.linalg.norm
    return Batch(
        context / norm(context, axis=-1, keepdims=True),
        query / norm(query, axis=-1, keepdims=True),
        np.ones((batch_size, turns), dtype=np.bool_),
    )
