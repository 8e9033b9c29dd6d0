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
) -> Tensor:
    """Mean cross-entropy of ``cos(predicted, target) / τ`` with the diagonal as labels.

    ``target_ids`` (B,) marks rows that share a target: those are not negatives of each other
    (two turns asking for the same passage would otherwise be pushed apart). ``symmetric`` adds
    the target-to-prediction direction, averaged with the usual one.
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
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, labels)) / 2
    return loss
