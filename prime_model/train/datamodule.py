"""PredictorDataModule: precomputed embeddings in, so the Y-Encoder never runs in the loop."""

from __future__ import annotations

from typing import NamedTuple

import lightning as L  # noqa: N812
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import DataValidationError


class EncodedBatch(NamedTuple):
    context: Tensor  # (B, N, D)
    context_mask: Tensor  # (B, N)
    query: Tensor  # (B, D)
    target: Tensor  # (B, D)
    target_index: Tensor  # (B,) row of the split's corpus; equal ids = same target


class _BatchIndexed(Dataset[EncodedBatch]):
    """Indexed by a list of rows (from a BatchSampler): one gather per batch, no per-row collate."""

    def __init__(self, encoded: EncodedTurns) -> None:
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, rows: list[int]) -> EncodedBatch:
        e, index = self.encoded, torch.as_tensor(rows)
        return EncodedBatch(
            e.context[index], e.context_mask[index], e.query[index], e.target[index],
            e.target_index[index],
        )  # fmt: skip


class PredictorDataModule(L.LightningDataModule):
    """Shuffled training batches (seeded) and in-order validation batches over EncodedTurns."""

    def __init__(
        self,
        train: EncodedTurns,
        val: EncodedTurns,
        batch_size: int,
        *,
        val_batch_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for name, split in (("train", train), ("val", val)):
            if len(split) < 2:
                raise DataValidationError(
                    f"{name} split has {len(split)} turns; InfoNCE needs at least 2"
                )
        if train.dim != val.dim or train.encoder_name != val.encoder_name:
            raise DataValidationError(
                f"train was encoded by {train.encoder_name} ({train.dim}-d), val by "
                f"{val.encoder_name} ({val.dim}-d); both splits need the same Y-Encoder"
            )
        self.train, self.val = train, val
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.seed, self.num_workers = seed, num_workers

    @property
    def val_corpus(self) -> Tensor:
        """Unique validation targets (K×D): recall is measured against all of them."""
        return self.val.corpus

    def train_dataloader(self) -> DataLoader[EncodedBatch]:
        generator = torch.Generator().manual_seed(self.seed)
        sampler = RandomSampler(range(len(self.train)), generator=generator)
        # a 1-row last batch has no negatives; drop it unless it is the only batch
        drop_last = len(self.train) > self.batch_size
        return self._loader(self.train, BatchSampler(sampler, self.batch_size, drop_last))

    def val_dataloader(self) -> DataLoader[EncodedBatch]:
        sampler = SequentialSampler(range(len(self.val)))
        return self._loader(self.val, BatchSampler(sampler, self.val_batch_size, False))

    def _loader(self, split: EncodedTurns, sampler: BatchSampler) -> DataLoader[EncodedBatch]:
        return DataLoader(
            _BatchIndexed(split),
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
