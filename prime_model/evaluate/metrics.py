"""Retrieval metrics of predicted embeddings against a corpus, with exact cosine search.

Each query has one relevant item (its gold target) in a corpus of unique targets, so every metric
follows from the gold item's rank. Scores are computed a chunk of queries at a time so that
100k-passage corpora fit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from prime_model.errors import MetricsError

DEFAULT_KS = (1, 5, 10)


def gold_ranks(predicted: Tensor, corpus: Tensor, gold: Tensor, chunk_size: int = 1024) -> Tensor:
    """1-based rank of each query's gold item among the K corpus items (ties count in its favour).

    predicted (M×D) and corpus (K×D) are expected L2-normalised, so the dot product is cosine.
    """
    _check(predicted, corpus, gold)
    ranks = torch.empty(predicted.shape[0], dtype=torch.long)
    corpus = corpus.float()
    for start in range(0, predicted.shape[0], chunk_size):
        queries = predicted[start : start + chunk_size].float()  # (C, D)
        scores = queries @ corpus.T  # (C, K)
        gold_score = scores.gather(1, gold[start : start + chunk_size, None].to(scores.device))
        ranks[start : start + chunk_size] = (scores > gold_score).sum(1).cpu() + 1
    return ranks


def metrics_from_ranks(ranks: Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Recall@k for each k, MRR, nDCG@10 and P@5 (one relevant item per query)."""
    if ranks.numel() == 0:
        raise MetricsError("no queries to score; expected at least one rank")
    r = ranks.double()
    out = {f"recall@{k}": float((r <= k).double().mean()) for k in ks}
    out["mrr"] = float((1.0 / r).mean())
    out["ndcg@10"] = float(torch.where(r <= 10, 1.0 / torch.log2(r + 1), 0.0).mean())
    out["p@5"] = float((r <= 5).double().mean() / 5)
    return out


def retrieval_metrics(
    predicted: Tensor,
    corpus: Tensor,
    gold: Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """All metrics of ``predicted`` against ``corpus`` with gold indices ``gold``."""
    return metrics_from_ranks(gold_ranks(predicted, corpus, gold, chunk_size), ks)


def _check(predicted: Tensor, corpus: Tensor, gold: Tensor) -> None:
    if predicted.ndim != 2 or corpus.ndim != 2 or predicted.shape[1] != corpus.shape[1]:
        raise MetricsError(
            f"expected predicted M×D and corpus K×D with the same D, got "
            f"{tuple(predicted.shape)} and {tuple(corpus.shape)}"
        )
    if gold.shape != (predicted.shape[0],):
        raise MetricsError(
            f"expected gold of shape ({predicted.shape[0]},), got {tuple(gold.shape)}"
        )
    if gold.numel() and (int(gold.min()) < 0 or int(gold.max()) >= corpus.shape[0]):
        raise MetricsError(
            f"gold indices must lie in [0, {corpus.shape[0]}), got [{int(gold.min())}, "
            f"{int(gold.max())}]"
        )
