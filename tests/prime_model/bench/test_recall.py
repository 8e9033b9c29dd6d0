"""The benchmark's recall check on a tiny eager model: the baseline against itself."""

from __future__ import annotations

import torch

from prime_model.bench.recall import EAGER, SYNTHETIC_ROWS, recall_check, synthetic_turns
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.inference import EagerPredictor
from tests.conftest import TINY_CONFIG


def test_eager_retrieves_its_own_predictions() -> None:
    torch.manual_seed(0)
    model = EmbeddingPredictor(TINY_CONFIG).eval()
    check = recall_check(model, {}, None, torch.device("cpu"))
    assert check is not None
    assert check.rows == SYNTHETIC_ROWS and "synthetic self-retrieval" in check.source
    assert check.recall_at_10 == {EAGER: 1.0} and check.drop_vs_eager == {EAGER: 0.0}
    assert check.holds(EAGER)


def test_synthetic_turns_need_one_embedding_width() -> None:
    torch.manual_seed(0)
    assert synthetic_turns(EagerPredictor(EmbeddingPredictor(TINY_CONFIG))) is None  # 16 -> 12
    square = TINY_CONFIG.model_copy(
        update={"output_dim": TINY_CONFIG.input_dim, "max_batch_size": None}
    )
    turns = synthetic_turns(EagerPredictor(EmbeddingPredictor(square)), rows=20)
    assert turns is not None and len(turns) == 20
    assert turns.target_index.tolist() == list(range(20))
