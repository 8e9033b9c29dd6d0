"""Random conversations of unit vectors: inputs for timing and parity checks without data."""

from __future__ import annotations

import numpy as np

from prime_model.config import PredictorConfig
from prime_model.model_inputs import NUM_ROLE_IDS
from prime_model.runtime.inference import Batch


def random_batch(config: PredictorConfig, batch_size: int, turns: int, seed: int) -> Batch:
    """``batch_size`` conversations of ``turns`` unmasked turns, every embedding L2-normalised
    like a sentence encoder's output; random user/system roles and a unit concat vector for a
    model that reads them (drawn after the rest, so other models get the same inputs as ever)."""
    rng = np.random.default_rng(seed)
    context = rng.standard_normal((batch_size, turns, config.input_dim)).astype(np.float32)
    query = rng.standard_normal((batch_size, config.input_dim)).astype(np.float32)
    norm = np.linalg.norm
    roles = rng.integers(1, NUM_ROLE_IDS, (batch_size, turns)) if config.role_embedding else None
    concat = None
    if config.concat_input:
        concat = rng.standard_normal((batch_size, config.input_dim)).astype(np.float32)
        concat /= norm(concat, axis=-1, keepdims=True)
    return Batch(
        context / norm(context, axis=-1, keepdims=True),
        query / norm(query, axis=-1, keepdims=True),
        np.ones((batch_size, turns), dtype=np.bool_),
        roles,
        concat,
    )
