"""Shared by the inference tests: one tiny predictor and its ONNX export, built once per session.

Plain cached functions rather than conftest fixtures, so the test modules stay independent.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.export.export import export_verified
from prime_model.runtime.inference import FloatArray, to_numpy
from prime_model.runtime.onnx_file import VerifiedOnnx

# input_dim == output_dim so its predictions can be scored against an encoded corpus
CONFIG = PredictorConfig(
    input_dim=16,
    output_dim=16,
    hidden_dim=32,
    num_layers=2,
    num_heads=4,
    max_context_length=4,
    dropout=0.0,
    max_batch_size=8,
)


def tiny_model(config: PredictorConfig = CONFIG, seed: int = 0) -> EmbeddingPredictor:
    torch.manual_seed(seed)
    return EmbeddingPredictor(config).eval()


@cache
def exported() -> VerifiedOnnx:
    """The fp32 export of ``tiny_model()`` (a few seconds, so once per session)."""
    return export_verified(tiny_model())


def random_inputs(
    batch: int, turns: int, seed: int = 0, dim: int = 16
) -> tuple[FloatArray, FloatArray, np.ndarray]:
    rng = np.random.default_rng(seed)
    context = rng.standard_normal((batch, turns, dim)).astype(np.float32)
    query = rng.standard_normal((batch, dim)).astype(np.float32)
    mask = rng.random((batch, turns)) < 0.7
    if turns:
        mask[:, -1] = True
    return context, query, mask


def eager(
    model: EmbeddingPredictor, context: FloatArray, query: FloatArray, mask: np.ndarray
) -> FloatArray:
    with torch.inference_mode():
        out = model(torch.from_numpy(context), torch.from_numpy(query), torch.from_numpy(mask))
    return to_numpy(out)
