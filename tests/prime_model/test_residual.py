"""The residual predictor: query embedding + a learned correction that starts at zero."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias

from prime_model import ConfigError, EmbeddingPredictor, PredictorConfig
from prime_model.bench.presets import random_model
from prime_model.export.build import build_predictor
from prime_model.presets import PREDICTOR_PRESETS, predictor_config
from prime_model.runtime.serving import ServingForward


def _config(**overrides: object) -> PredictorConfig:
    fields: dict[str, object] = {
        "input_dim": 16,
        "output_dim": 16,
        "hidden_dim": 32,
        "num_layers": 2,
        "num_heads": 4,
        "max_context_length": 6,
        "dropout": 0.0,
        "residual": True,
    }
    fields.update(overrides)
    return PredictorConfig(**fields)


def _batch(b: int = 5, n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    context = F.normalize(torch.randn(b, n, 16, generator=gen), dim=-1)
    query = F.normalize(torch.randn(b, 16, generator=gen), dim=-1)
    mask = torch.rand(b, n, generator=gen) > 0.3
    return context, query, mask


def test_an_untrained_residual_model_predicts_the_query_embedding() -> None:
    torch.manual_seed(0)
    model = EmbeddingPredictor(_config()).eval()
    context, query, mask = _batch()
    out = model(context, query, mask)
    assert torch.equal(out, F.normalize(query, dim=-1))


def test_the_seed_read_out_is_not_the_query() -> None:
    torch.manual_seed(0)
    model = EmbeddingPredictor(_config(residual=False)).eval()
    context, query, mask = _batch()
    assert not torch.allclose(model(context, query, mask), query, atol=1e-2)


def test_one_step_moves_the_residual_model_away_from_the_query() -> None:
    """The zero projection still gets a gradient, so training can learn a correction."""
    torch.manual_seed(0)
    model = EmbeddingPredictor(_config()).train()
    context, query, mask = _batch()
    target = F.normalize(torch.randn(5, 16, generator=torch.Generator().manual_seed(9)), dim=-1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = -(model(context, query, mask) * target).sum()
    loss.backward()
    assert model.output_proj.weight.grad is not None
    assert model.output_proj.weight.grad.abs().sum() > 0
    optimizer.step()
    model.eval()
    moved = model(context, query, mask)
    assert not torch.allclose(moved, query)
    assert (moved * target).sum() > (query * target).sum()


def test_residual_needs_the_output_in_the_query_space() -> None:
    with pytest.raises(
        ConfigError, match=r"residual=True .* input_dim=16 must equal output_dim=12"
    ):
        _config(output_dim=12)


def test_shipped_presets_are_residual() -> None:
    for name in PREDICTOR_PRESETS:
        assert predictor_config(name).residual, name


@pytest.mark.parametrize("untrained", [True, False])
def test_serving_forward_and_onnx_export_keep_the_residual(untrained: bool) -> None:
    """Every backend reads out through the model: none may drop the query term."""
    config = _config()
    model = (
        EmbeddingPredictor(config).eval() if untrained else random_model(config, seed=0)
    )  # random_model also randomises the zero correction
    context, query, mask = _batch()
    expected = model(context, query, mask)
    with torch.inference_mode():
        served = ServingForward(model)(context, query, mask)
    torch.testing.assert_close(served, expected, atol=1e-5, rtol=1e-5)
    onnx = build_predictor(model, "onnx", "cpu")
    torch.testing.assert_close(
        torch.from_numpy(onnx.predict(context.numpy(), query.numpy(), mask.numpy())),
        expected,
        atol=1e-4,
        rtol=1e-4,
    )
