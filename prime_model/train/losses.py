"""InfoNCE with in-batch negatives: each prediction must pick its own target out of the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from prime_model.errors import LossError


def info_nce_loss(
    predicted: Tensor,
    target: Tensor,
    temperature: float = 0.07,
    *,
    symmetric: bool = False,
    target_ids: Tensor | None = None,
    extra_target: Tensor | None = None,
    extra_mask: Tensor | None = None,
) -> Tensor:
    """Mean cross-entropy of ``cos(predicted, target) / τ`` with the diagonal as labels.

    ``target_ids`` (B,) marks rows that share a target: those are not negatives of each other
    (two turns asking for the same passage would otherwise be pushed apart). ``symmetric`` adds
    the target-to-prediction direction (main targets only), averaged with the usual one.
    ``extra_target`` (B×D) with ``extra_mask`` (B,): a second positive for the rows marked
    (see :func:`_with_extra_targets`).
    """
    if temperature <= 0:
        raise LossError(f"temperature must be > 0, got {temperature}")
    if predicted.ndim != 2 or predicted.shape != target.shape or predicted.shape[0] == 0:
        raise LossError(
            f"expected predicted and target of the same shape B×D with B >= 1, got "
            f"{tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    B = predicted.shape[0]
    # float32 logits: under bf16 autocast a 1/τ ≈ 14 scale loses the small differences that matter
    p, t = F.normalize(predicted.float(), dim=-1), F.normalize(target.float(), dim=-1)
    logits = p @ t.T / temperature  # (B, B)
    if target_ids is not None:
        if target_ids.shape != (B,):
            raise LossError(f"expected target_ids of shape ({B},), got {tuple(target_ids.shape)}")
        same = target_ids[:, None] == target_ids[None, :]  # (B, B)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(B, device=logits.device)
    if extra_target is not None or extra_mask is not None:
        loss = _with_extra_targets(logits, p, extra_target, extra_mask, temperature)
    else:
        loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, labels)) / 2
    return loss


def _with_extra_targets(
    logits: Tensor,
    predicted: Tensor,
    extra_target: Tensor | None,
    extra_mask: Tensor | None,
    temperature: float,
) -> Tensor:
    """Each (row, positive) pair's cross-entropy against the negatives, averaged over pairs.

    The marked rows' extra targets join the candidates, so they are negatives of every other
    row; a row's own two positives are not each other's negatives. This is the loss of the same
    turn given twice (once per target) without the second forward pass, and without the chance
    that both copies share a batch and push each other's target away.
    """
    B = logits.shape[0]
    if extra_target is None or extra_mask is None:
        raise LossError("extra_target and extra_mask come together; got only one of them")
    if extra_target.shape != predicted.shape or extra_mask.shape != (B,):
        raise LossError(
            f"expected extra_target {tuple(predicted.shape)} and extra_mask ({B},), got "
            f"{tuple(extra_target.shape)} and {tuple(extra_mask.shape)}"
        )
    rows = torch.nonzero(extra_mask, as_tuple=True)[0]  # (E,) rows with a second positive
    extra = F.normalize(extra_target[rows].float(), dim=-1)
    extra_logits = predicted @ extra.T / temperature  # (B, E)
    every = torch.cat([logits, extra_logits], dim=1)  # (B, B + E)
    own_extra = torch.zeros_like(extra_logits, dtype=torch.bool)
    own_extra[rows, torch.arange(rows.numel(), device=rows.device)] = True
    positive = torch.cat([torch.eye(B, dtype=torch.bool, device=every.device), own_extra], 1)
    negatives = every.masked_fill(positive, float("-inf"))  # (B, B + E)
    # pair (i, p): log(exp(s_ip) + sum of i's negatives) - s_ip
    pairs = positive.nonzero(as_tuple=True)
    scores = every[pairs]
    others = torch.logsumexp(negatives, dim=1)[pairs[0]]
    return (torch.logaddexp(scores, others) - scores).mean()
