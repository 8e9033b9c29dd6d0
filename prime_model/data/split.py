"""Split a turn table into train / validation / test by conversation.

Turns of one conversation share their history, so putting them in different splits would leak
evaluation content into training. Each conversation is placed by a SHA-256 hash of
``(seed, conversation_id)``: the assignment is deterministic across processes (unlike ``hash()``),
independent of row order, and a conversation keeps its split when others are added or removed.

Small tables get two guarantees, applied only when the hash thresholds miss them: train is never
empty, and with at least 3 conversations every held-out split whose fraction is > 0 (val, test)
gets at least one conversation. When a guarantee is missed, conversations are ranked by their hash
and cut by count instead (test first, then val, the rest train), which still depends only on the
seed and the set of conversation ids.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Final

import pandas as pd

from prime_model.errors import ConfigError, DataValidationError, EmptySplitError

SPLITS: Final = ("train", "val", "test")
_MIN_CONVERSATIONS_FOR_HELD_OUT: Final = 3
_HASH_BYTES: Final = 8


@dataclass(frozen=True, eq=False)
class TurnSplits:
    """The three turn tables of a split, each with a fresh 0-based index."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        """Rows per split, for logging."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def conversation_counts(self) -> dict[str, int]:
        """Distinct conversations per split, for logging."""
        return {
            name: int(frame["conversation_id"].nunique())
            for name, frame in (("train", self.train), ("val", self.val), ("test", self.test))
        }


def split_by_conversation(
    df: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> TurnSplits:
    """Split ``df`` so that no conversation appears in two splits; rows keep their order."""
    _check_fractions(val_fraction, test_fraction)
    if "conversation_id" not in df.columns:
        raise DataValidationError(
            f"cannot split by conversation: no 'conversation_id' column; got {list(df.columns)}"
        )
    keys = df["conversation_id"].astype(str)
    assignment = assign_conversations(keys.unique().tolist(), val_fraction, test_fraction, seed)
    labels = keys.map(assignment)
    train, val, test = (df[labels == name].reset_index(drop=True) for name in SPLITS)
    return TurnSplits(train=train, val=val, test=test)


def require_every_split(splits: TurnSplits, val_fraction: float, test_fraction: float) -> None:
    """Refuse a split with an empty part, naming the fraction to change.

    A training run fits on train, stops early on val and judges on test, so an empty part would
    only fail later, in encoding, far from its cause (fractions of several sources: the run's
    fractions are the defaults each source may override).
    """
    counts = splits.conversation_counts()
    total = sum(counts.values())
    if total < len(SPLITS):
        raise EmptySplitError(
            f"{total} conversation(s) cannot fill train, val and test (one conversation each at "
            f"least): add conversations, {len(SPLITS)} or more"
        )
    for name, fraction_name, fraction in (
        ("val", "val_fraction", val_fraction),
        ("test", "test_fraction", test_fraction),
    ):
        if counts[name] == 0:
            change = "set it above 0" if fraction == 0 else "raise it"
            raise EmptySplitError(
                f"{name}: no conversation of {total} with {fraction_name}={fraction}: {change}, "
                "or add conversations"
            )
    if counts["train"] == 0:
        raise EmptySplitError(
            f"train: no conversation of {total}: lower val_fraction + test_fraction "
            f"({val_fraction} + {test_fraction})"
        )


def assign_conversations(
    conversation_ids: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Map each conversation id to "train", "val" or "test" (see the module docstring)."""
    _check_fractions(val_fraction, test_fraction)
    scores = {cid: _unit_hash(seed, cid) for cid in set(conversation_ids)}
    assignment = {
        cid: _by_threshold(score, val_fraction, test_fraction) for cid, score in scores.items()
    }
    if scores and not _meets_minimums(assignment, val_fraction, test_fraction):
        ranked = sorted(scores, key=lambda cid: (scores[cid], cid))
        assignment = _by_rank(ranked, val_fraction, test_fraction)
    return assignment


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ConfigError(f"{name} must be a number in [0, 1); got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be < 1 to leave turns for training; got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )


def _unit_hash(seed: int, conversation_id: str) -> float:
    """A stable pseudo-random number in [0, 1) for one conversation under one seed."""
    digest = hashlib.sha256(f"{seed}\x1f{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") / float(1 << (8 * _HASH_BYTES))


def _by_threshold(score: float, val_fraction: float, test_fraction: float) -> str:
    if score < test_fraction:
        return "test"
    if score < test_fraction + val_fraction:
        return "val"
    return "train"


def _meets_minimums(assignment: dict[str, str], val_fraction: float, test_fraction: float) -> bool:
    counts = dict.fromkeys(SPLITS, 0)
    for name in assignment.values():
        counts[name] += 1
    if counts["train"] == 0:
        return False
    if len(assignment) < _MIN_CONVERSATIONS_FOR_HELD_OUT:
        return True
    return not (val_fraction > 0 and counts["val"] == 0) and not (
        test_fraction > 0 and counts["test"] == 0
    )


def _held_out_count(total: int, fraction: float) -> int:
    if fraction == 0:
        return 0
    minimum = 1 if total >= _MIN_CONVERSATIONS_FOR_HELD_OUT else 0
    return max(minimum, math.floor(total * fraction + 0.5))


def _by_rank(ranked: list[str], val_fraction: float, test_fraction: float) -> dict[str, str]:
    """Cut the hash-ranked ids by count, shrinking the larger held-out split until train has one.

    With >= 3 conversations both held-out minimums (1 each) fit beside one training conversation,
    so the shrinking never goes below a minimum.
    """
    total = len(ranked)
    n_test = _held_out_count(total, test_fraction)
    n_val = _held_out_count(total, val_fraction)
    while n_test + n_val > total - 1:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    names = ["test"] * n_test + ["val"] * n_val + ["train"] * (total - n_test - n_val)
    return dict(zip(ranked, names, strict=True))
