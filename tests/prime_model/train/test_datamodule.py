from __future__ import annotations

import pytest
import torch

from prime_model import DataValidationError
from prime_model.train.datamodule import PredictorDataModule
from tests.conftest import make_encoded


def test_train_batches_are_seeded_full_and_cover_the_split() -> None:
    train, val = make_encoded(m=50), make_encoded(m=10, seed=1)
    batches = list(PredictorDataModule(train, val, batch_size=16, seed=3).train_dataloader())
    assert [b.query.shape[0] for b in batches] == [16, 16, 16]  # the 2-row remainder is dropped
    again = list(PredictorDataModule(train, val, batch_size=16, seed=3).train_dataloader())
    assert all(torch.equal(a.query, b.query) for a, b in zip(batches, again, strict=True))
    other = next(iter(PredictorDataModule(train, val, batch_size=16, seed=4).train_dataloader()))
    assert not torch.equal(other.query, batches[0].query)
    rows = {tuple(q.tolist()) for b in batches for q in b.query}
    assert len(rows) == 48
    first = batches[0]
    assert first.context.shape == (16, 4, 16)
    assert first.context_mask.dtype == torch.bool
    torch.testing.assert_close(train.corpus[first.target_index], first.target)


def test_a_split_smaller_than_a_batch_is_one_batch() -> None:
    dm = PredictorDataModule(make_encoded(m=5), make_encoded(m=5), batch_size=64)
    assert [b.query.shape[0] for b in dm.train_dataloader()] == [5]


def test_val_batches_keep_order_and_size() -> None:
    val = make_encoded(m=10, seed=1)
    dm = PredictorDataModule(make_encoded(), val, batch_size=16, val_batch_size=4)
    batches = list(dm.val_dataloader())
    assert [b.query.shape[0] for b in batches] == [4, 4, 2]
    torch.testing.assert_close(torch.cat([b.query for b in batches]), val.query)
    assert dm.val_corpus is val.corpus


def test_too_small_or_mismatched_splits() -> None:
    with pytest.raises(
        DataValidationError, match="val split has 1 turns; InfoNCE needs at least 2"
    ):
        PredictorDataModule(make_encoded(), make_encoded(m=1), batch_size=8)
    with pytest.raises(DataValidationError, match=r"stub \(16-d\), val by stub \(8-d\)"):
        PredictorDataModule(make_encoded(), make_encoded(d=8), batch_size=8)


def test_conversation_batches_hold_whole_conversations_reshuffled_each_epoch() -> None:
    encoded = make_encoded(m=48)  # conversations c0..c15, three turns each
    data = PredictorDataModule(encoded, encoded, batch_size=6, conversation_batches=True)
    loader = data.train_dataloader()
    epochs = [[batch.target_index for batch in loader] for _ in range(2)]
    assert len(epochs[0]) == 8
    ids = encoded.conversation_ids
    rows_first = list(loader.sampler.sampler)  # type: ignore[attr-defined]
    runs = [ids[r] for r in rows_first]
    # each conversation's three turns are consecutive in the order
    assert all(len(set(runs[i : i + 3])) == 1 for i in range(0, 48, 3))
    assert sorted(rows_first) == list(range(48))
    assert not all(torch.equal(a, b) for a, b in zip(*epochs, strict=True))
