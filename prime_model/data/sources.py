"""Several turn files in one run: each read and tagged, split by conversation on its own, combined.

A real recipe mixes datasets (CANARD train and TopiOCQA train, doc2dial for validation only), and
each needs its own held-out fractions and its own share of training conversations. A source's
name prefixes its conversation ids (``canard:C_12_q#3``), so ids of two datasets never collide,
and names the ``source`` column the split groups by. The pipeline and ``benchmarks/real_data.py``
both call :func:`read_sources` and :func:`split_sources`: one recipe, one orchestration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Self

import pandas as pd
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig
from prime_model.data.readers import read_turns
from prime_model.data.schema import (
    EXTRA_TARGET_COLUMN,
    SOURCE_COLUMN,
    truncate_histories,
    without_extra_targets,
)
from prime_model.data.split import SPLITS, TurnSplits, split_by_conversation
from prime_model.encode.texts import joined_texts
from prime_model.errors import ConfigError, DataValidationError, EmptySplitError

logger = logging.getLogger(__name__)

SEPARATOR: Final = ":"  # between a source's name and a conversation id


class FileSource(FrozenConfig):
    """One turn file of a multi-source run, with how much of it each split takes."""

    path: str = Field(description="turn file")
    format: str | None = Field(
        None, description="jsonl, parquet, csv, qrecc, topiocqa, canard, ..."
    )
    target: str = Field("passage", description="for public formats: passage, answer, rewrite")
    name: str | None = Field(
        None, min_length=1, description="prefix of its conversation ids (default: format)"
    )
    weight: float = Field(
        1.0, ge=0, le=1, description="share of its training conversations kept (0: held out only)"
    )
    val_fraction: float | None = Field(
        None, ge=0, lt=1, description="default: the run's val_fraction"
    )
    test_fraction: float | None = Field(
        None, ge=0, lt=1, description="default: the run's test_fraction"
    )
    train_on_extra_target: bool = Field(
        False,
        description="train on each turn's extra_target (TopiOCQA: the answers on its topic "
        "around it, passage-like) as a second positive; val and test never see it",
    )

    @property
    def label(self) -> str:
        """The name, else the format, else the file name up to its first dot."""
        return self.name or self.format or Path(self.path).name.split(".")[0]

    @model_validator(mode="after")
    def _plain_label(self) -> Self:
        if not self.label or SEPARATOR in self.label:
            raise ValueError(
                f"a source name must be non-empty without {SEPARATOR!r}: {self.label!r}"
            )
        return self


def check_unique_labels(sources: Sequence[FileSource]) -> None:
    """Two sources of one name would share conversation ids: refuse, naming them."""
    labels = [s.label for s in sources]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"sources need distinct names (set name:); repeated: {repeated}")


def read_source(source: FileSource) -> pd.DataFrame:
    """The file's turns, conversation ids prefixed with the source's name, a ``source`` column."""
    turns = read_turns(source.path, source.format, target=source.target)
    turns["conversation_id"] = source.label + SEPARATOR + turns["conversation_id"].astype(str)
    turns[SOURCE_COLUMN] = source.label
    return turns


def read_sources(sources: Sequence[FileSource]) -> pd.DataFrame:
    """Every source's turns, in the listed order, as one table."""
    check_unique_labels(sources)
    return pd.concat([read_source(s) for s in sources], ignore_index=True)


def split_sources(
    turns: pd.DataFrame,
    sources: Sequence[FileSource],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    *,
    max_train_chars: int | None = None,
    max_context_length: int = 10,
) -> TurnSplits:
    """Split each source by conversation with its own fractions, keep its ``weight`` of training
    conversations, then combine in the listed order.

    ``max_train_chars`` drops training turns whose history + query (the ``max_context_length``
    most recent history entries, as the model reads them) is longer: long histories are the
    costliest texts to encode on a CPU. Validation and test stay whole.
    """
    check_every_row_listed(turns, sources)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in SPLITS}
    for source in sources:
        own = turns[turns[SOURCE_COLUMN] == source.label].reset_index(drop=True)
        split = split_by_conversation(
            own,
            val_fraction if source.val_fraction is None else source.val_fraction,
            test_fraction if source.test_fraction is None else source.test_fraction,
            seed,
        )
        train = share_of_conversations(split.train, source.weight, seed)
        parts["train"].append(with_extra_targets(train, on=source.train_on_extra_target))
        parts["val"].append(without_extra_targets(split.val))
        parts["test"].append(without_extra_targets(split.test))
    train, val, test = (pd.concat(parts[name], ignore_index=True) for name in SPLITS)
    train = at_most_chars(train, max_train_chars, max_context_length)
    if train.empty:  # require_every_split would blame the fractions
        raise EmptySplitError(
            "train: no turn is left after each source's weight "
            f"({ {s.label: s.weight for s in sources} }) and max_train_chars ({max_train_chars}): "
            "give a source a weight above 0, or raise max_train_chars"
        )
    return TurnSplits(train=train, val=val, test=test)


def check_every_row_listed(turns: pd.DataFrame, sources: Sequence[FileSource]) -> None:
    """A row whose source is not listed would silently fall out of every split: refuse it."""
    if SOURCE_COLUMN not in turns.columns:
        raise DataValidationError(
            f"cannot split by source: the turns have no {SOURCE_COLUMN!r} column; expected the "
            "table read from the listed sources"
        )
    listed = {source.label for source in sources}
    unlisted = sorted({str(v) for v in turns[SOURCE_COLUMN].unique()} - listed)
    if unlisted:
        raise DataValidationError(
            f"turns from source(s) {unlisted} are not among the listed sources {sorted(listed)}; "
            "expected every row's source to be listed (with its fractions and weight)"
        )


def with_extra_targets(turns: pd.DataFrame, *, on: bool) -> pd.DataFrame:
    """A training part that keeps its ``extra_target`` cells only if its source asked (``on``).

    Training reads a kept cell as the turn's second positive (:mod:`prime_model.train.losses`).
    Applied after the split, so an extra target never reaches a validation or judged turn.
    """
    if not on:
        return without_extra_targets(turns)
    if EXTRA_TARGET_COLUMN not in turns.columns:
        sources = sorted({str(s) for s in turns.get(SOURCE_COLUMN, pd.Series(dtype=object))})
        raise ConfigError(
            f"train_on_extra_target is set for source(s) {sources}, whose turns have no "
            f"{EXTRA_TARGET_COLUMN!r} column; expected a reader that fills it (format topiocqa) "
            "or train_on_extra_target: false"
        )
    logger.info(
        "train: %d turns also trained on their extra target",
        int(turns[EXTRA_TARGET_COLUMN].notna().sum()),
    )
    return turns


def share_of_conversations(turns: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Whole conversations, a ``share`` of them chosen by seed (1.0: all, 0: none)."""
    if share >= 1.0:
        return turns
    if share <= 0:
        return turns.iloc[0:0].reset_index(drop=True)
    ids = turns["conversation_id"].drop_duplicates()
    kept = set(ids.sample(frac=share, random_state=seed))
    return turns[turns["conversation_id"].isin(kept)].reset_index(drop=True)


def at_most_chars(
    turns: pd.DataFrame, max_chars: int | None, max_context_length: int
) -> pd.DataFrame:
    """Turns whose joined history + query (``max_context_length`` entries) has <= ``max_chars``."""
    if max_chars is None:
        return turns
    lengths = [len(t) for t in joined_texts(truncate_histories(turns, max_context_length))]
    kept = turns[[n <= max_chars for n in lengths]].reset_index(drop=True)
    logger.info("train: %d of %d turns within %d characters", len(kept), len(turns), max_chars)
    return kept
