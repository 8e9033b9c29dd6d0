"""Token-budget batches: texts sorted by token count, each batch bounded in padded tokens.

A transformer's cost grows with batch × longest text, so a fixed batch of 128 texts pads every
short text to the longest one in it (on real data, 1.0x sentence-transformers' speed); sorted
batches bounded by padded tokens make each batch about the same work and waste little on
padding (~2x, measured in docs/library.md). Pure functions, so the plan is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from prime_model.errors import ConfigError, OnnxEncoderError

__all__ = ["pad_rows", "plan_batches", "run_batches"]


def plan_batches(lengths: Sequence[int], *, max_tokens: int, max_texts: int) -> list[list[int]]:
    """Indices of ``lengths`` in batches, longest texts first.

    Each batch holds at most ``max_texts`` texts and at most ``max_tokens`` padded tokens
    (its longest length × its size); a text longer than ``max_tokens`` on its own goes alone.
    Every index appears exactly once.
    """
    if max_tokens < 1 or max_texts < 1:
        raise ConfigError(
            f"max_tokens={max_tokens}, max_texts={max_texts}; expected both at least 1"
        )
    if any(length < 0 for length in lengths):
        raise ConfigError(f"token counts must be >= 0, got {min(lengths)}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep order
    batches: list[list[int]] = []
    current: list[int] = []
    widest = 0  # the first (longest) text's length pads the whole batch
    for index in order:
        if current and (len(current) >= max_texts or widest * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        if not current:
            widest = max(lengths[index], 1)
        current.append(index)
    if current:
        batches.append(current)
    return batches


def run_batches(
    batches: Sequence[Sequence[int]],
    run: Callable[[list[int]], npt.NDArray[np.float32]],
    *,
    count: int,
    dim: int,
) -> npt.NDArray[np.float32]:
    """``run`` on each batch of indices, its rows put back at those indices (input order)."""
    out = np.empty((count, dim), dtype=np.float32)
    seen = 0
    for batch in batches:
        rows = run(list(batch))
        if rows.shape != (len(batch), dim):
            raise OnnxEncoderError(
                f"a batch of {len(batch)} gave shape {rows.shape}; expected ({len(batch)}, {dim})"
            )
        out[list(batch)] = rows
        seen += len(batch)
    if seen != count:
        raise OnnxEncoderError(f"the batches hold {seen} texts, expected {count}")
    return out


def pad_rows(
    rows: Sequence[dict[str, list[int]]],
    names: Sequence[str],
    fill: dict[str, int],
    *,
    left: bool = False,
) -> dict[str, npt.NDArray[np.int64]]:
    """One batch's token rows as ``names`` -> rows×longest int64 arrays, padded with ``fill``
    (on the left where the tokenizer pads there)."""
    width = max((len(row[names[0]]) for row in rows), default=0)
    feeds = {}
    for name in names:
        array = np.full((len(rows), width), fill[name], dtype=np.int64)
        for i, row in enumerate(rows):
            values = row[name]
            if left:
                array[i, width - len(values) :] = values
            else:
                array[i, : len(values)] = values
        feeds[name] = array
    return feeds
