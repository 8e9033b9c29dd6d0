from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from prime_model.errors import LossError
from prime_model.train.losses import info_nce_loss


def _pair(b: int = 6, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=gen), torch.randn(b, d, generator=gen)


def test_equals_cross_entropy_reference() -> None:
    p, t = _pair()
    logits = F.normalize(p, dim=-1) @ F.normalize(t, dim=-1).T / 0.07
    expected = F.cross_entropy(logits, torch.arange(6))
    torch.testing.assert_close(info_nce_loss(p, t), expected)
    torch.testing.assert_close(
        info_nce_loss(p, t, symmetric=True),
        (expected + F.cross_entropy(logits.T, torch.arange(6))) / 2,
    )


def test_hand_computed_two_by_two() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # second target at 45 degrees
    c = 1 / math.sqrt(2)
    row0 = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + math.exp(c / 0.5)))
    row1 = -math.log(math.exp(c / 0.5) / (math.exp(0.0) + math.exp(c / 0.5)))
    assert info_nce_loss(p, t, temperature=0.5).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_loss_falls_as_predictions_approach_targets() -> None:
    p, t = _pair()
    assert info_nce_loss(t + 0.01 * p, t) < info_nce_loss(p, t)
    assert info_nce_loss(t, t, temperature=0.01).item() < 1e-3


def test_gradient_is_finite_and_reaches_predictions() -> None:
    p, t = _pair()
    p.requires_grad_(True)
    (grad,) = torch.autograd.grad(info_nce_loss(p, t), p)
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def test_duplicates_of_the_positive_are_not_negatives() -> None:
    p, t = _pair(4)
    t[2] = t[0]  # rows 0 and 2 ask for the same target
    ids = torch.tensor([10, 11, 10, 12])
    masked = info_nce_loss(p, t, target_ids=ids)
    logits = F.normalize(p, dim=-1) @ F.normalize(t, dim=-1).T / 0.07
    logits[0, 2] = logits[2, 0] = float("-inf")
    torch.testing.assert_close(masked, F.cross_entropy(logits, torch.arange(4)))
    assert masked < info_nce_loss(p, t)  # an unmasked duplicate is a false negative
    torch.testing.assert_close(info_nce_loss(p, t, target_ids=torch.arange(4)), info_nce_loss(p, t))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"temperature": 0.0}, "temperature must be > 0, got 0.0"),
        ({"temperature": -1.0}, "temperature must be > 0"),
        ({"target": torch.zeros(6, 4)}, r"same shape B×D .* \(6, 8\) and \(6, 4\)"),
        ({"predicted": torch.zeros(0, 8), "target": torch.zeros(0, 8)}, "B >= 1"),
        ({"predicted": torch.zeros(8), "target": torch.zeros(8)}, "same shape"),
        ({"target_ids": torch.arange(5)}, r"target_ids of shape \(6,\), got \(5,\)"),
    ],
)
def test_bad_inputs(kwargs: dict[str, object], needle: str) -> None:
    p, t = _pair()
    args: dict[str, object] = {"predicted": p, "target": t, **kwargs}
    with pytest.raises(LossError, match=needle):
        info_nce_loss(**args)  # type: ignore[arg-type]
