from __future__ import annotations

import math

import pytest
import torch

from prime_model.errors import MetricsError
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks, retrieval_metrics


def test_ranks_on_a_hand_made_corpus() -> None:
    corpus = torch.eye(4)  # item k is the k-th axis
    predicted = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],  # gold 0 -> rank 1
            [0.9, 0.5, 0.1, 0.0],  # gold 1 -> rank 2 (item 0 scores higher)
            [0.9, 0.5, 0.1, 0.0],  # gold 3 -> rank 4
        ]
    )
    gold = torch.tensor([0, 1, 3])
    for chunk_size in (1, 2, 1024):
        assert gold_ranks(predicted, corpus, gold, chunk_size).tolist() == [1, 2, 4]


def test_metrics_from_ranks_by_hand() -> None:
    m = metrics_from_ranks(torch.tensor([1, 2, 4, 20]), ks=(1, 5, 10))
    assert m["recall@1"] == 0.25
    assert m["recall@5"] == 0.75
    assert m["recall@10"] == 0.75
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 20) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(5)) / 4)
    assert m["p@5"] == pytest.approx(0.75 / 5)


def test_ties_count_in_favour_of_the_gold_item() -> None:
    corpus = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert gold_ranks(torch.tensor([[1.0, 0.0]]), corpus, torch.tensor([1])).tolist() == [1]


def test_perfect_prediction_scores_one() -> None:
    corpus = torch.nn.functional.normalize(torch.randn(50, 8), dim=-1)
    gold = torch.randint(0, 50, (30,))
    m = retrieval_metrics(corpus[gold], corpus, gold)
    assert m["recall@1"] == m["mrr"] == m["ndcg@10"] == 1.0


@pytest.mark.parametrize(
    ("predicted", "corpus", "gold", "needle"),
    [
        (torch.zeros(3, 4), torch.zeros(5, 6), torch.zeros(3, dtype=torch.long), "same D"),
        (torch.zeros(3), torch.zeros(5, 4), torch.zeros(3, dtype=torch.long), "same D"),
        (
            torch.zeros(3, 4),
            torch.zeros(5, 4),
            torch.zeros(2, dtype=torch.long),
            r"gold of shape \(3,\)",
        ),
        (torch.zeros(2, 4), torch.zeros(5, 4), torch.tensor([0, 5]), r"\[0, 5\), got \[0, 5\]"),
        (torch.zeros(2, 4), torch.zeros(5, 4), torch.tensor([-1, 0]), "must lie in"),
    ],
)
def test_bad_inputs(
    predicted: torch.Tensor, corpus: torch.Tensor, gold: torch.Tensor, needle: str
) -> None:
    with pytest.raises(MetricsError, match=needle):
        retrieval_metrics(predicted, corpus, gold)


def test_no_queries() -> None:
    with pytest.raises(MetricsError, match="no queries"):
        metrics_from_ranks(torch.zeros(0, dtype=torch.long))
