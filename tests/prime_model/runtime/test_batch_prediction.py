from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor

from prime_model import DataValidationError, EmbeddingPredictor, PredictorConfig
from prime_model.data import read_turns
from prime_model.errors import WriteError
from prime_model.runtime.batch_prediction import load_embeddings, predict_turns, save_embeddings
from tests.conftest import REPO_ROOT, CountingEncoder

TURNS = REPO_ROOT / "examples/data/turns.jsonl"


class Eager:
    """The inference interface over a bare model, recording the batches it saw."""

    def __init__(self, model: EmbeddingPredictor) -> None:
        self.model, self.batches = model.eval(), 0

    @property
    def config(self) -> PredictorConfig:
        return self.model.config

    def predict(
        self,
        context: np.ndarray | Tensor,
        query: np.ndarray | Tensor,
        context_mask: np.ndarray | Tensor,
    ) -> np.ndarray:
        self.batches += 1
        with torch.no_grad():
            out = self.model(
                torch.as_tensor(context), torch.as_tensor(query), torch.as_tensor(context_mask)
            )
        result: np.ndarray = out.numpy()
        return result


def _model(max_context_length: int = 4, max_batch_size: int | None = 32) -> EmbeddingPredictor:
    torch.manual_seed(0)
    config = PredictorConfig(
        input_dim=8,
        output_dim=8,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
        max_context_length=max_context_length,
        dropout=0.0,
        max_batch_size=max_batch_size,
    )
    return EmbeddingPredictor(config)


def _turns_without_target() -> pd.DataFrame:
    return read_turns(TURNS).drop(columns=["target", "target_id"])


def test_rows_and_ids_stay_aligned_across_batches() -> None:
    turns = read_turns(TURNS)
    model = _model()
    predictor = Eager(model)
    encoder = CountingEncoder(dim=8)
    out = predict_turns(turns, predictor, encoder, batch_size=2)
    assert list(out["conversation_id"]) == list(turns["conversation_id"])
    assert list(out["turn"]) == list(turns["turn"])
    assert predictor.batches == -(-len(turns) // 2)
    assert len(encoder.calls) == 1  # every unique text encoded once, in one call
    vectors = np.stack(out["embedding"].tolist())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the same turn predicted alone gives the same vector: batching changes nothing
    last = predict_turns(turns.tail(1), Eager(model), CountingEncoder(dim=8))
    np.testing.assert_allclose(last["embedding"].iloc[0], vectors[-1], atol=1e-5)


@pytest.mark.parametrize(
    ("asked", "limit", "batches"), [(None, 2, 3), (32, 3, 2), (None, None, 1), (1, None, 5)]
)
def test_batches_never_exceed_the_models_max_batch_size(
    asked: int | None, limit: int | None, batches: int
) -> None:
    turns = read_turns(TURNS)  # 5 turns
    predictor = Eager(_model(max_batch_size=limit))  # the model itself refuses larger batches
    out = predict_turns(turns, predictor, CountingEncoder(dim=8), batch_size=asked)
    assert len(out) == 5 and predictor.batches == batches


def test_targets_are_not_needed(tmp_path: Path) -> None:
    path = tmp_path / "inputs.jsonl"
    _turns_without_target().to_json(path, orient="records", lines=True)
    with pytest.raises(DataValidationError, match="missing required column"):
        read_turns(path)
    turns = read_turns(path, require_target=False)
    assert turns["target"].isna().all()
    out = predict_turns(turns, Eager(_model()), CountingEncoder(dim=8))
    assert len(out) == len(turns)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    turns = read_turns(TURNS)
    out = predict_turns(turns, Eager(_model()), CountingEncoder(dim=8))
    path = save_embeddings(out, tmp_path / "sub" / "embeddings.parquet")
    assert [p.name for p in path.parent.iterdir()] == ["embeddings.parquet"]  # no temp left
    back = load_embeddings(path)
    assert list(back["conversation_id"]) == list(out["conversation_id"])
    assert back["embedding"].iloc[0].dtype == np.float32
    np.testing.assert_array_equal(
        np.stack(back["embedding"].tolist()), np.stack(out["embedding"].tolist())
    )


def test_bad_inputs_raise_typed_errors(tmp_path: Path) -> None:
    empty = read_turns(TURNS).head(0)
    with pytest.raises(DataValidationError, match="no turns to predict"):
        predict_turns(empty, Eager(_model()), CountingEncoder(dim=8))
    with pytest.raises(DataValidationError, match="batch_size=0"):
        predict_turns(read_turns(TURNS), Eager(_model()), CountingEncoder(dim=8), batch_size=0)
    garbage = tmp_path / "x.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(DataValidationError, match="not a readable embeddings file"):
        load_embeddings(garbage)
    other = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(other)
    with pytest.raises(DataValidationError, match="no 'embedding' column"):
        load_embeddings(other)


def test_a_full_disk_is_a_write_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    path = tmp_path / "embeddings.parquet"
    with pytest.raises(WriteError, match=r"embeddings.parquet: .*\(the disk is full\)") as info:
        save_embeddings(pd.DataFrame({"embedding": [[1.0]]}), path)
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # no staging file left behind
