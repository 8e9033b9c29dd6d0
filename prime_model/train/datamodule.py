"""PredictorDataModule: precomputed embeddings in, so the Y-Encoder never runs in the loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import lightning as L  # noqa: N812
import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import DataValidationError


class EncodedBatch(NamedTuple):
    context: Tensor  # (B, N, D)
    context_mask: Tensor  # (B, N)
    query: Tensor  # (B, D)
    target: Tensor  # (B, D)
    target_index: Tensor  # (B,) row of the split's corpus; equal ids = same target
    context_roles: Tensor | None = None  # (B, N) 0 unknown, 1 user, 2 system
    concat: Tensor | None = None  # (B, D) history + query embedded as one text
    extra_target: Tensor | None = None  # (B, D) a second positive where extra_mask is True
    extra_mask: Tensor | None = None  # (B,)


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
            None if e.context_roles is None else e.context_roles[index],
            None if e.concat is None else e.concat[index],
            None if e.extra_target is None else e.extra_target[index],
            None if e.extra_target_mask is None else e.extra_target_mask[index],
        )  # fmt: skip


def conversation_order(conversation_ids: list[str], generator: torch.Generator) -> list[int]:
    """Rows grouped by conversation, conversations (and turns within them) shuffled.

    Consecutive batches of this order hold whole conversations, so a turn competes with the
    targets of its own conversation's other turns: same topic, same history, a harder contrast.
    """
    rows: dict[str, list[int]] = {}
    for row, cid in enumerate(conversation_ids):
        rows.setdefault(cid, []).append(row)
    groups = list(rows.values())
    order: list[int] = []
    for g in torch.randperm(len(groups), generator=generator).tolist():
        turns = groups[g]
        order += [turns[i] for i in torch.randperm(len(turns), generator=generator).tolist()]
    return order


class ConversationSampler(Sampler[int]):
    """A fresh :func:`conversation_order` each epoch."""

    def __init__(self, conversation_ids: list[str], generator: torch.Generator) -> None:
        self.conversation_ids, self.generator = conversation_ids, generator

    def __iter__(self) -> Iterator[int]:
        return iter(conversation_order(self.conversation_ids, self.generator))

    def __len__(self) -> int:
        return len(self.conversation_ids)


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
        conversation_batches: bool = False,
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
        self.conversation_batches = conversation_batches

    @property
    def val_corpus(self) -> Tensor:
        """Unique validation targets (K×D): recall is measured against all of them."""
        return self.val.corpus

    def train_dataloader(self) -> DataLoader[EncodedBatch]:
        generator = torch.Generator().manual_seed(self.seed)
        if self.conversation_batches:
            order = ConversationSampler(self.train.conversation_ids, generator)
            return self._loader(self.train, BatchSampler(order, self.batch_size, drop_last=True))
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
