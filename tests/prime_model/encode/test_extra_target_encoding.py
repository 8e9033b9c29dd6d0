"""Extra targets (a second positive for training): encoded where a row holds one, kept through
save/load and batches, left out where a table is only evaluated."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from prime_model import DataValidationError
from prime_model.data import Turn, turns_to_frame
from prime_model.data.schema import EXTRA_TARGET_COLUMN
from prime_model.encode.encoding import EncodedTurns, encode_splits, encode_turns
from prime_model.train.datamodule import PredictorDataModule
from tests.conftest import CountingEncoder


@pytest.fixture
def frame() -> pd.DataFrame:
    turns = [
        Turn(conversation_id=c, turn=t, history=[], query=f"{c} q{t}", target=f"{c} a{t}")
        for c in ("a", "b")
        for t in range(3)
    ]
    table = turns_to_frame(turns)
    table[EXTRA_TARGET_COLUMN] = ["a passage", None, "a passage", float("nan"), "b page", None]
    return table


def test_rows_with_an_extra_target_get_its_vector_and_a_mark(frame: pd.DataFrame) -> None:
    encoder = CountingEncoder()
    encoded = encode_splits({"train": frame}, encoder, 10)["train"]
    assert encoder.calls[0].count("a passage") == 1  # encoded once, like every text
    assert encoded.extra_target is not None and encoded.extra_target_mask is not None
    assert encoded.extra_target_mask.tolist() == [True, False, True, False, True, False]
    page = torch.from_numpy(encoder.encode(["b page"])[0])
    torch.testing.assert_close(encoded.extra_target[4], page)
    assert torch.all(encoded.extra_target[~encoded.extra_target_mask] == 0)
    assert "b page" not in encoded.corpus_ids and encoded.corpus.shape[0] == 6  # not judged


def test_extra_targets_survive_save_load_and_reach_the_batches(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    encoded = encode_splits({"train": frame}, CountingEncoder(), 10)["train"]
    loaded = EncodedTurns.load(encoded.save(tmp_path / "e.safetensors"))
    assert loaded.extra_target is not None and loaded.extra_target_mask is not None
    assert encoded.extra_target is not None and encoded.extra_target_mask is not None
    assert torch.equal(loaded.extra_target, encoded.extra_target)
    assert torch.equal(loaded.extra_target_mask, encoded.extra_target_mask)
    plain = encode_splits(
        {"train": frame.drop(columns=[EXTRA_TARGET_COLUMN])}, CountingEncoder(), 10
    )
    assert plain["train"].extra_target is None
    assert loaded.fingerprint() == encoded.fingerprint() != plain["train"].fingerprint()
    batch = next(iter(PredictorDataModule(loaded, loaded, batch_size=6).train_dataloader()))
    assert batch.extra_target is not None and batch.extra_mask is not None
    assert int(batch.extra_mask.sum()) == 3


def test_an_evaluated_table_leaves_its_extra_targets_out(frame: pd.DataFrame) -> None:
    encoder = CountingEncoder()
    encoded = encode_turns(frame, encoder, 10)
    assert encoded.extra_target is None and "a passage" not in encoder.calls[0]


def test_an_extra_target_needs_its_mask(frame: pd.DataFrame) -> None:
    encoded = encode_splits({"train": frame}, CountingEncoder(), 10)["train"]
    with pytest.raises(DataValidationError, match="come together, got only one"):
        EncodedTurns(**{**encoded.__dict__, "extra_target_mask": None})
    with pytest.raises(DataValidationError, match=r"extra_target_mask \(5,\) != \(6,\)"):
        EncodedTurns(**{**encoded.__dict__, "extra_target_mask": torch.ones(5, dtype=torch.bool)})
