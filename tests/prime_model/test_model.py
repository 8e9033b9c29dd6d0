from __future__ import annotations

from typing import Any

import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig, PredictorError


def _inputs(
    cfg: PredictorConfig, b: int, n: int, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, cfg.input_dim, generator=gen), torch.randn(
        b, cfg.input_dim, generator=gen
    )


@pytest.mark.parametrize(("b", "n"), [(1, 0), (1, 1), (3, 4), (8, 6)])
def test_forward_shape_and_unit_norm(tiny_model: EmbeddingPredictor, b: int, n: int) -> None:
    context, query = _inputs(tiny_model.config, b, n)
    out = tiny_model(context, query)
    assert out.shape == (b, tiny_model.config.output_dim)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(b))


def test_padding_does_not_change_a_prediction(tiny_model: EmbeddingPredictor) -> None:
    """3 turns alone == the same 3 turns padded to N_max, whatever the padding holds or where."""
    cfg = tiny_model.config
    context, query = _inputs(cfg, 1, 3)
    alone = tiny_model(context, query)
    n_max = cfg.max_context_length
    junk = torch.randn(1, n_max - 3, cfg.input_dim) * 50
    for padded, real in [
        (torch.cat([context, junk], 1), [True] * 3 + [False] * (n_max - 3)),  # right padding
        (torch.cat([junk, context], 1), [False] * (n_max - 3) + [True] * 3),  # left padding
    ]:
        mask = torch.tensor([real])
        torch.testing.assert_close(tiny_model(padded, query, mask), alone, atol=1e-6, rtol=1e-5)


def test_mixed_lengths_in_one_batch_match_each_alone(tiny_model: EmbeddingPredictor) -> None:
    cfg = tiny_model.config
    lengths = [0, 2, 5, 6]
    context, query = _inputs(cfg, len(lengths), cfg.max_context_length)
    mask = torch.arange(cfg.max_context_length)[None] < torch.tensor(lengths)[:, None]
    batched = tiny_model(context, query, mask)
    for i, n in enumerate(lengths):
        alone = tiny_model(context[i : i + 1, :n], query[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-6, rtol=1e-5)


def test_context_changes_the_prediction(tiny_model: EmbeddingPredictor) -> None:
    """Guards against a mask or position bug that would make the model ignore the history."""
    context, query = _inputs(tiny_model.config, 1, 3)
    with_context = tiny_model(context, query)
    assert not torch.allclose(with_context, tiny_model(context[:, :0], query))
    assert not torch.allclose(with_context, tiny_model(context.flip(1), query))


def test_same_seed_same_model_and_eval_is_deterministic(tiny_config: PredictorConfig) -> None:
    torch.manual_seed(7)
    first = EmbeddingPredictor(tiny_config).eval()
    torch.manual_seed(7)
    second = EmbeddingPredictor(tiny_config).eval()
    context, query = _inputs(tiny_config, 4, 3)
    torch.testing.assert_close(first(context, query), second(context, query), atol=0, rtol=0)
    torch.testing.assert_close(first(context, query), first(context, query), atol=0, rtol=0)


def test_dropout_is_active_only_in_training(tiny_config: PredictorConfig) -> None:
    model = EmbeddingPredictor(tiny_config.model_copy(update={"dropout": 0.5}))
    context, query = _inputs(tiny_config, 2, 3)
    torch.manual_seed(0)
    assert not torch.allclose(model.train()(context, query), model(context, query))
    model.eval()
    torch.testing.assert_close(model(context, query), model(context, query), atol=0, rtol=0)


def test_gradient_reaches_every_parameter(tiny_model: EmbeddingPredictor) -> None:
    model = tiny_model.train()
    context, query = _inputs(model.config, 4, 3)
    mask = torch.tensor([[True] * 3, [True, True, False], [False] * 3, [True, False, True]])
    model(context, query, mask).sum(0).pow(2).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_gradient_checkpointing_matches_plain_backward(tiny_config: PredictorConfig) -> None:
    torch.manual_seed(3)
    plain = EmbeddingPredictor(tiny_config).train()
    ckpt = EmbeddingPredictor(tiny_config.model_copy(update={"gradient_checkpointing": True}))
    ckpt.load_state_dict(plain.state_dict())
    ckpt.train()
    context, query = _inputs(tiny_config, 3, 4)
    for model in (plain, ckpt):
        model(context, query).pow(3).sum().backward()
    torch.testing.assert_close(plain(context, query), ckpt(context, query))
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        assert a.grad is not None
        assert b.grad is not None
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_float64_inputs_are_cast(tiny_model: EmbeddingPredictor) -> None:
    context, query = _inputs(tiny_model.config, 2, 3)
    out = tiny_model(context.double(), query.double())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, tiny_model(context, query))


def test_weight_initialisation(tiny_model: EmbeddingPredictor) -> None:
    for name, param in tiny_model.named_parameters():
        if "norm" in name and name.endswith("weight"):
            assert torch.all(param == 1), name
        elif name.endswith("bias"):
            assert torch.all(param == 0), name
        else:  # linear weights, [PRED] token, positions: truncated normal, σ 0.02, cut at 2σ
            assert param.abs().max() <= 0.04 + 1e-6, name
            assert 0.01 < param.std() < 0.03, name


def test_seed_default_size() -> None:
    """The seed's config: ~208M parameters (≈830 MB fp32), what latency work is sized on."""
    with torch.device("meta"):
        model = EmbeddingPredictor(PredictorConfig())
    d, h, n_max = 1024, 2048, 10

    def linear(fan_in: int, fan_out: int) -> int:
        return fan_in * fan_out + fan_out

    block = 2 * 2 * h + linear(h, 3 * h) + linear(h, h) + linear(h, 4 * h) + linear(4 * h, h)
    edges = 2 * linear(d, h) + h + (n_max + 2) * h + 2 * h + linear(h, d)
    assert sum(p.numel() for p in model.parameters()) == 4 * block + edges == 207_760_384


def test_batch_limit_applies_to_inference_only(tiny_model: EmbeddingPredictor) -> None:
    context, query = _inputs(tiny_model.config, 9, 2)
    with pytest.raises(PredictorError, match="B=9 exceeds max_batch_size=8"):
        tiny_model(context, query)
    assert tiny_model.train()(context, query).shape == (9, 12)
    unlimited = EmbeddingPredictor(tiny_model.config.model_copy(update={"max_batch_size": None}))
    assert unlimited.eval()(context, query).shape == (9, 12)


def _bad_inputs() -> list[tuple[str, dict[str, Any], str]]:
    c, q = torch.randn(2, 3, 16), torch.randn(2, 16)
    nan_c = c.clone()
    nan_c[1, 2, 5] = float("nan")
    inf_q = q.clone()
    inf_q[0, 0] = float("inf")
    ok_mask = torch.ones(2, 3, dtype=torch.bool)
    return [
        ("context list", {"context": c.tolist()}, "context must be a torch.Tensor, got list"),
        ("query array", {"query": q.numpy()}, "query must be a torch.Tensor, got ndarray"),
        (
            "context rank 2",
            {"context": c[:, 0]},
            r"context must have 3 dims \(B×N×D\), got shape \(2, 16\)",
        ),
        (
            "query rank 3",
            {"query": q[:, None]},
            r"query must have 2 dims \(B×D\), got shape \(2, 1, 16\)",
        ),
        ("empty batch", {"context": c[:0], "query": q[:0]}, "empty batch"),
        ("batch mismatch", {"query": q[:1]}, "context has B=2, query has B=1"),
        (
            "context dim",
            {"context": torch.randn(2, 3, 8)},
            "context D=8, query D=16; expected input_dim=16",
        ),
        ("query dim", {"query": torch.randn(2, 20)}, "query D=20; expected input_dim=16"),
        (
            "too many turns",
            {"context": torch.randn(2, 7, 16)},
            "N=7 turns, more than max_context_length=6",
        ),
        (
            "int context",
            {"context": c.long()},
            "context must be a floating-point tensor, got torch.int64",
        ),
        ("int query", {"query": q.int()}, "query must be a floating-point tensor, got torch.int32"),
        ("nan context", {"context": nan_c}, "context contains NaN or infinite values"),
        ("inf query", {"query": inf_q}, "query contains NaN or infinite values"),
        ("mask list", {"context_mask": [[True] * 3] * 2}, "context_mask must be a torch.Tensor"),
        ("mask dtype", {"context_mask": ok_mask.long()}, "context_mask must be bool"),
        (
            "mask shape",
            {"context_mask": ok_mask[:, :2]},
            r"shape \(B, N\) = \(2, 3\), got \(2, 2\)",
        ),
        ("context device", {"context": c.to("meta")}, "context is on meta but the model is on cpu"),
        ("mask device", {"context_mask": ok_mask.to("meta")}, "context_mask is on meta"),
    ]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [case[1:] for case in _bad_inputs()],
    ids=[case[0] for case in _bad_inputs()],
)
def test_bad_inputs_raise_predictor_error(
    tiny_model: EmbeddingPredictor, overrides: dict[str, Any], needle: str
) -> None:
    args: dict[str, Any] = {"context": torch.randn(2, 3, 16), "query": torch.randn(2, 16)}
    args.update(overrides)
    with pytest.raises(PredictorError, match=needle):
        tiny_model(**args)
