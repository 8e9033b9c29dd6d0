from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from prime_model.data.schema import Turn, turns_to_frame
from prime_model.data.split import (
    TurnSplits,
    assign_conversations,
    require_every_split,
    split_by_conversation,
)
from prime_model.errors import ConfigError, DataValidationError, EmptySplitError


def _frame(conversations: int, turns: int = 3) -> pd.DataFrame:
    return turns_to_frame(
        Turn(
            conversation_id=f"conv-{c:04d}",
            turn=t,
            history=[f"q{c}-{i}" for i in range(t)],
            query=f"q{c}-{t}",
            target=f"p{c}-{t}",
        )
        for c in range(conversations)
        for t in range(turns)
    )


def _ids(splits: TurnSplits) -> dict[str, set[str]]:
    return {
        name: set(getattr(splits, name)["conversation_id"]) for name in ("train", "val", "test")
    }


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["conversation_id", "turn"]).reset_index(drop=True)


def test_splits_are_disjoint_and_keep_every_row() -> None:
    df = _frame(200)
    splits = split_by_conversation(df, val_fraction=0.1, test_fraction=0.2, seed=3)
    ids = _ids(splits)
    assert not ids["train"] & ids["val"]
    assert not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert ids["train"] | ids["val"] | ids["test"] == set(df["conversation_id"])
    pd.testing.assert_frame_equal(
        _sorted(pd.concat([splits.train, splits.val, splits.test])), _sorted(df)
    )
    for frame in (splits.train, splits.val, splits.test):
        assert list(frame.index) == list(range(len(frame)))
    assert sum(splits.sizes().values()) == len(df)
    counts = splits.conversation_counts()
    assert sum(counts.values()) == 200
    assert 20 <= counts["test"] <= 60  # ~40 expected
    assert 5 <= counts["val"] <= 40  # ~20 expected


def test_split_is_deterministic() -> None:
    df = _frame(50)
    first = split_by_conversation(df, seed=7)
    second = split_by_conversation(df.copy(), seed=7)
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_split_ignores_row_order() -> None:
    df = _frame(60)
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    original = split_by_conversation(df, seed=5)
    reordered = split_by_conversation(shuffled, seed=5)
    assert _ids(original) == _ids(reordered)
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(
            _sorted(getattr(original, name)), _sorted(getattr(reordered, name))
        )


def test_rows_keep_their_relative_order() -> None:
    df = _frame(30)
    train = split_by_conversation(df, seed=0).train
    assert train.equals(_sorted(train))


def test_different_seed_changes_the_assignment() -> None:
    df = _frame(100)
    assert _ids(split_by_conversation(df, seed=0)) != _ids(split_by_conversation(df, seed=1))


def test_assignment_is_stable_when_conversations_are_added() -> None:
    ids = [f"c{i}" for i in range(100)]
    small = assign_conversations(ids, 0.1, 0.1, seed=0)
    large = assign_conversations([*ids, *(f"d{i}" for i in range(100))], 0.1, 0.1, seed=0)
    assert {cid: large[cid] for cid in ids} == small


def test_zero_fractions_put_everything_in_train() -> None:
    df = _frame(10)
    splits = split_by_conversation(df, val_fraction=0.0, test_fraction=0.0)
    assert splits.sizes() == {"train": 30, "val": 0, "test": 0}


@pytest.mark.parametrize("conversations", [3, 4, 5, 8])
@pytest.mark.parametrize("seed", range(10))
def test_few_conversations_still_fill_every_split(conversations: int, seed: int) -> None:
    counts = split_by_conversation(_frame(conversations), seed=seed).conversation_counts()
    assert counts["train"] >= 1
    assert counts["val"] >= 1
    assert counts["test"] >= 1
    assert sum(counts.values()) == conversations


@pytest.mark.parametrize("seed", range(10))
def test_large_held_out_fractions_leave_one_training_conversation(seed: int) -> None:
    counts = split_by_conversation(
        _frame(4), val_fraction=0.45, test_fraction=0.45, seed=seed
    ).conversation_counts()
    assert counts["train"] >= 1
    assert counts["val"] >= 1
    assert counts["test"] >= 1


@pytest.mark.parametrize("fractions", [(0.1, 0.1), (0.4, 0.5)])
@pytest.mark.parametrize("conversations", [1, 2])
@pytest.mark.parametrize("seed", range(10))
def test_one_or_two_conversations_keep_train_non_empty(
    fractions: tuple[float, float], conversations: int, seed: int
) -> None:
    val_fraction, test_fraction = fractions
    splits = split_by_conversation(
        _frame(conversations), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    assert splits.conversation_counts()["train"] >= 1
    assert sum(splits.sizes().values()) == 3 * conversations


def test_zero_test_fraction_is_respected_with_few_conversations() -> None:
    for seed in range(10):
        counts = split_by_conversation(
            _frame(3), val_fraction=0.2, test_fraction=0.0, seed=seed
        ).conversation_counts()
        assert counts["test"] == 0
        assert counts["val"] >= 1
        assert counts["train"] >= 1


def test_empty_frame_gives_empty_splits() -> None:
    splits = split_by_conversation(_frame(0))
    assert splits.sizes() == {"train": 0, "val": 0, "test": 0}


def test_turn_splits_is_frozen() -> None:
    splits = split_by_conversation(_frame(3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        splits.train = pd.DataFrame()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction", "message"),
    [
        (-0.1, 0.1, r"val_fraction must be a number in \[0, 1\); got -0\.1"),
        (0.1, 1.0, r"test_fraction must be a number in \[0, 1\); got 1\.0"),
        (float("nan"), 0.1, r"val_fraction must be a number in \[0, 1\); got nan"),
        (True, 0.1, r"val_fraction must be a number in \[0, 1\); got True"),
        (0.5, 0.5, r"val_fraction \+ test_fraction must be < 1 .*got 0\.5 \+ 0\.5 = 1\.0"),
    ],
)
def test_fraction_errors(val_fraction: float, test_fraction: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        split_by_conversation(_frame(5), val_fraction=val_fraction, test_fraction=test_fraction)


def test_missing_conversation_id_column() -> None:
    with pytest.raises(DataValidationError, match=r"no 'conversation_id' column; got \['turn'\]"):
        split_by_conversation(pd.DataFrame({"turn": [0, 1]}))


def test_a_split_with_an_empty_part_is_refused_naming_the_fraction() -> None:
    two = split_by_conversation(_frame(2), 0.1, 0.1, seed=0)
    with pytest.raises(EmptySplitError, match="add conversations, 3 or more"):
        require_every_split(two, 0.1, 0.1)
    no_val = split_by_conversation(_frame(20), 0.0, 0.1, seed=0)
    with pytest.raises(EmptySplitError, match=r"val: .*val_fraction=0.0: set it above 0"):
        require_every_split(no_val, 0.0, 0.1)
    require_every_split(split_by_conversation(_frame(3), 0.1, 0.1, seed=0), 0.1, 0.1)
