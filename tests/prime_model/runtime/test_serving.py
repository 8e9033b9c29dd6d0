"""The serving forward: the model's math for the [PRED] row only, and its FLOP count."""

from __future__ import annotations

import pytest
import torch

from prime_model.bench.machine import model_flops
from prime_model.config import PredictorConfig
from prime_model.model_inputs import ModelInputs
from prime_model.runtime.serving import ServingForward, serving_flops
from tests.prime_model.runtime.inference_support import CONFIG, tiny_model

FLAGGED = CONFIG.model_copy(update={"role_embedding": True, "concat_input": True})


@pytest.mark.parametrize("config", [CONFIG, FLAGGED], ids=["plain", "roles+concat"])
def test_matches_the_full_forward(config: PredictorConfig) -> None:
    model = tiny_model(config)
    torch.manual_seed(1)
    B, N, D = 3, 4, CONFIG.input_dim
    mask = torch.rand(B, N) < 0.7
    mask[:, -1] = True
    roles = torch.randint(0, 3, (B, N)) if model.config.role_embedding else None
    concat = torch.randn(B, D) if model.config.concat_input else None
    inputs = ModelInputs(torch.randn(B, N, D), torch.randn(B, D), mask, roles, concat)
    with torch.inference_mode():
        want = model.forward_unchecked(inputs)
        got = ServingForward(model)(*inputs.args())
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_serving_costs_fewer_flops_than_the_model() -> None:
    for turns in (1, CONFIG.max_context_length):
        assert 0 < serving_flops(CONFIG, turns) < model_flops(CONFIG, turns)
