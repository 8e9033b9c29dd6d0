"""Models for the benchmarks: shipped predictor presets with random weights everywhere."""

from __future__ import annotations

import torch
from torch import nn

from prime_model.config import PredictorConfig
from prime_model.model import INIT_STD, EmbeddingPredictor


def random_model(config: PredictorConfig, seed: int) -> EmbeddingPredictor:
    """An eval-mode model with random weights everywhere, for latency and parity benchmarks.

    A residual model starts with a zero output projection, so its output would be the query
    whatever the blocks compute: parity with an exported or quantised copy would prove nothing.
    """
    torch.manual_seed(seed)
    model = EmbeddingPredictor(config)
    if config.residual:
        nn.init.trunc_normal_(
            model.output_proj.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD
        )
    return model.eval()
