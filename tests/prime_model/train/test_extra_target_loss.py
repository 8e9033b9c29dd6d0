"""info_nce_loss with a second positive per marked row (extra targets), against a loop reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from prime_model.errors import LossError
from prime_model.train.losses import info_nce_loss

TAU = 0.07


def _batch(b: int = 5, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, d, generator=gen) for _ in range(3))


def _reference(p: torch.Tensor, t: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> float:
    """Every (row, positive) pair against that row's negatives: all targets but its own, and
    every other marked row's extra target; the mean over pairs."""
    p, t, x = (F.normalize(v, dim=-1) for v in (p, t, x))
    marked = [j for j in range(len(p)) if mask[j]]
    losses = []
    for i in range(len(p)):
        negatives = [float(p[i] @ t[j]) / TAU for j in range(len(p)) if j != i]
        negatives += [float(p[i] @ x[j]) / TAU for j in marked if j != i]
        for positive in [t[i]] + ([x[i]] if mask[i] else []):
            s = float(p[i] @ positive) / TAU
            losses.append(-s + math.log(math.exp(s) + sum(math.exp(n) for n in negatives)))
    return sum(losses) / len(losses)


def test_matches_the_loop_reference() -> None:
    p, t, x = _batch()
    mask = torch.tensor([True, False, True, True, False])
    got = info_nce_loss(p, t, TAU, extra_target=x, extra_mask=mask)
    assert got.item() == pytest.approx(_reference(p, t, x, mask), rel=1e-5)


def test_no_marked_row_is_the_plain_loss() -> None:
    p, t, x = _batch()
    none = torch.zeros(5, dtype=torch.bool)
    torch.testing.assert_close(
        info_nce_loss(p, t, TAU, extra_target=x, extra_mask=none), info_nce_loss(p, t, TAU)
    )


def test_a_row_s_two_positives_are_not_each_other_s_negatives() -> None:
    p, t, _ = _batch(3)
    x = t.clone()  # each extra target equals the row's own target
    mask = torch.ones(3, dtype=torch.bool)
    # as if each row were given twice, its copy's target excluded: others' extras are negatives
    p_n, t_n = F.normalize(p, dim=-1), F.normalize(t, dim=-1)
    logits = p_n @ t_n.T / TAU
    twice = logits.masked_fill(~torch.eye(3, dtype=torch.bool), 0.0)
    negatives = logits.masked_fill(torch.eye(3, dtype=torch.bool), float("-inf"))
    per_row = torch.logaddexp(twice.sum(1), torch.logsumexp(torch.cat([negatives] * 2, 1), 1))
    expected = (per_row - twice.sum(1)).mean()
    got = info_nce_loss(p, t, TAU, extra_target=x, extra_mask=mask)
    torch.testing.assert_close(got, expected)


def test_moving_towards_the_extra_target_lowers_the_loss() -> None:
    p, t, x = _batch()
    mask = torch.tensor([True, True, False, False, False])
    p.requires_grad_(True)
    loss = info_nce_loss(p, t, TAU, extra_target=x, extra_mask=mask)
    (grad,) = torch.autograd.grad(loss, p)
    assert torch.isfinite(grad).all()
    closer = p.detach().clone()
    closer[0] = closer[0] + 0.5 * F.normalize(x[0], dim=-1) * closer[0].norm()
    assert info_nce_loss(closer, t, TAU, extra_target=x, extra_mask=mask) < loss


def test_shared_targets_stay_masked_with_extra_targets() -> None:
    p, t, x = _batch(4)
    t[2] = t[0]
    ids = torch.tensor([10, 11, 10, 12])
    mask = torch.tensor([True, False, False, True])
    masked = info_nce_loss(p, t, TAU, target_ids=ids, extra_target=x, extra_mask=mask)
    assert masked < info_nce_loss(p, t, TAU, extra_target=x, extra_mask=mask)


def test_symmetric_adds_the_main_targets_direction() -> None:
    p, t, x = _batch()
    mask = torch.tensor([True, False, True, False, False])
    one_way = info_nce_loss(p, t, TAU, extra_target=x, extra_mask=mask)
    logits = F.normalize(p, dim=-1) @ F.normalize(t, dim=-1).T / TAU
    back = F.cross_entropy(logits.T, torch.arange(5))
    torch.testing.assert_close(
        info_nce_loss(p, t, TAU, symmetric=True, extra_target=x, extra_mask=mask),
        (one_way + back) / 2,
    )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"extra_target": torch.zeros(5, 8)}, "come together; got only one"),
        ({"extra_mask": torch.ones(5, dtype=torch.bool)}, "come together; got only one"),
        (
            {"extra_target": torch.zeros(5, 4), "extra_mask": torch.ones(5, dtype=torch.bool)},
            r"extra_target \(5, 8\) and extra_mask \(5,\), got \(5, 4\) and \(5,\)",
        ),
        (
            {"extra_target": torch.zeros(5, 8), "extra_mask": torch.ones(4, dtype=torch.bool)},
            r"got \(5, 8\) and \(4,\)",
        ),
    ],
)
def test_bad_extra_targets(kwargs: dict[str, object], needle: str) -> None:
    p, t, _ = _batch()
    with pytest.raises(LossError, match=needle):
        info_nce_loss(p, t, TAU, **kwargs)  # type: ignore[arg-type]
