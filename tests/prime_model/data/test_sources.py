"""Several turn files in one run: tagged, split per source, weighted, combined, fingerprinted."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from prime_model.data.schema import EXTRA_TARGET_COLUMN, SOURCE_COLUMN, conform_frame
from prime_model.data.source import DataSource, fingerprint_turns, load_turns
from prime_model.data.sources import (
    FileSource,
    at_most_chars,
    read_sources,
    share_of_conversations,
    split_sources,
)
from prime_model.errors import ConfigError, DataValidationError, EmptySplitError


def _write(path: Path, conversations: int, turns: int = 2, text: str = "q") -> Path:
    """``conversations`` of ``turns`` turns each (ids c0, c1, ...), as JSON lines."""
    rows = [
        {
            "conversation_id": f"c{c}",
            "turn": t,
            "history": [f"{text}{c}-{i}" for i in range(t)],
            "query": f"{text}{c}-{t}",
            "target": f"p{c}-{t}",
        }
        for c in range(conversations)
        for t in range(turns)
    ]
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[FileSource, FileSource]:
    return (
        FileSource(path=str(_write(tmp_path / "a.jsonl", 30)), name="alpha"),
        FileSource(path=str(_write(tmp_path / "b.jsonl", 20)), name="beta", test_fraction=0.0),
    )


def test_sources_are_tagged_and_their_ids_never_collide(two: tuple[FileSource, ...]) -> None:
    turns = read_sources(two)
    assert len(turns) == 100
    assert turns[SOURCE_COLUMN].tolist() == ["alpha"] * 60 + ["beta"] * 40
    assert turns["conversation_id"].iloc[0] == "alpha:c0"
    assert turns["conversation_id"].nunique() == 50  # c0..c19 exist in both files
    kept = conform_frame(turns)  # the materializer's load keeps the tag
    assert kept[SOURCE_COLUMN].tolist() == turns[SOURCE_COLUMN].tolist()


def test_each_source_splits_with_its_own_fractions(two: tuple[FileSource, ...]) -> None:
    splits = split_sources(read_sources(two), two, 0.2, 0.2, seed=0)
    sources = {name: set(getattr(splits, name)[SOURCE_COLUMN]) for name in ("train", "val", "test")}
    assert sources == {"train": {"alpha", "beta"}, "val": {"alpha", "beta"}, "test": {"alpha"}}
    ids = [set(getattr(splits, n)["conversation_id"]) for n in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(i) for i in ids) == 50


def test_weight_keeps_a_share_of_training_conversations_only(
    two: tuple[FileSource, ...],
) -> None:
    turns = read_sources(two)
    held_out = two[1].model_copy(update={"weight": 0.0})
    splits = split_sources(turns, (two[0], held_out), 0.2, 0.2, seed=0)
    assert set(splits.train[SOURCE_COLUMN]) == {"alpha"}
    assert "beta" in set(splits.val[SOURCE_COLUMN])
    whole = turns[turns[SOURCE_COLUMN] == "alpha"]
    half = share_of_conversations(whole, 0.5, seed=1)
    assert half["conversation_id"].nunique() == 15
    assert share_of_conversations(whole, 0.5, seed=1).equals(half)  # by seed


def test_max_chars_drops_long_training_turns_only() -> None:
    frame = pd.DataFrame({"history": [[], ["x" * 50, "y"]], "query": ["short", "q"]})
    assert len(at_most_chars(frame, 10, max_context_length=10)) == 1
    assert len(at_most_chars(frame, None, max_context_length=10)) == 2
    assert len(at_most_chars(frame, 10, max_context_length=1)) == 2  # as the model reads it


def test_the_fingerprint_covers_every_source(tmp_path: Path) -> None:
    a, b = _write(tmp_path / "a.jsonl", 3), _write(tmp_path / "b.jsonl", 3)
    data = DataSource(kind="files", sources=[{"path": str(a)}, {"path": str(b), "name": "b2"}])
    before = fingerprint_turns(load_turns(data))
    _write(b, 3, text="changed")
    assert fingerprint_turns(load_turns(data)) != before
    renamed = data.model_copy(
        update={"sources": (data.sources[0], data.sources[1].model_copy(update={"name": "b3"}))}
    )
    _write(b, 3)
    assert fingerprint_turns(load_turns(renamed)) != before
    assert fingerprint_turns(load_turns(data)) == before


def test_a_files_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="kind: files needs sources"):
        DataSource(kind="files")
    with pytest.raises(ConfigError, match="distinct names"):
        DataSource(kind="files", sources=[{"path": "x/a.jsonl"}, {"path": "y/a.jsonl"}])
    with pytest.raises(ConfigError, match="need kind: files"):
        DataSource(kind="file", path="a.jsonl", sources=[{"path": "a.jsonl"}])
    with pytest.raises(ConfigError, match="without ':'"):
        FileSource(path="a.jsonl", name="a:b")
    with pytest.raises(ConfigError, match="weight"):
        FileSource(path="a.jsonl", weight=1.5)
    assert FileSource(path="d/train.question.tsv").label == "train"
    assert FileSource(path="d/train.question.tsv", format="canard").label == "canard"


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"name": ""}, "name"),
        ({"wieght": 0.5}, "wieght"),
    ],
)
def test_a_hostile_source_is_refused_naming_its_field(
    fields: dict[str, object], wrong: str
) -> None:
    with pytest.raises(ConfigError, match=wrong):
        FileSource(path="a.jsonl", **fields)


def test_a_folder_or_a_missing_file_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="directory"):
        read_sources([FileSource(path=str(tmp_path), format="jsonl")])
    with pytest.raises(DataValidationError, match="not found"):
        read_sources([FileSource(path=str(tmp_path / "gone.jsonl"))])


def test_no_training_turn_left_names_the_weights_not_the_fractions(
    two: tuple[FileSource, ...],
) -> None:
    silent = tuple(s.model_copy(update={"weight": 0.0}) for s in two)
    with pytest.raises(EmptySplitError, match=r"weight .*'alpha': 0\.0.*weight above 0"):
        split_sources(read_sources(silent), silent, 0.2, 0.2, seed=0)
    with pytest.raises(EmptySplitError, match="raise max_train_chars"):
        split_sources(read_sources(two), two, 0.2, 0.2, seed=0, max_train_chars=1)


def test_the_fingerprint_follows_roles_and_rewrites(tmp_path: Path) -> None:
    turns = load_turns(DataSource(kind="file", path=str(_write(tmp_path / "a.jsonl", 3))))
    before = fingerprint_turns(turns)
    with_roles = turns.copy()
    with_roles["history_roles"] = pd.Series([["user"] * len(h) for h in turns["history"]])
    assert fingerprint_turns(with_roles) != before  # the model reads roles: a new dataset
    assert fingerprint_turns(turns.assign(rewrite="a self-contained question")) != before
    assert fingerprint_turns(turns.copy()) == before


def test_rows_of_an_unlisted_source_are_refused_not_dropped(
    two: tuple[FileSource, ...],
) -> None:
    turns = read_sources(two)
    with pytest.raises(DataValidationError, match=r"source\(s\) \['beta'\] are not among"):
        split_sources(turns, two[:1], 0.2, 0.2, seed=0)
    with pytest.raises(DataValidationError, match="no 'source' column"):
        split_sources(turns.drop(columns=[SOURCE_COLUMN]), two, 0.2, 0.2, seed=0)


def _with_extra_target(path: Path, conversations: int) -> Path:
    turns = pd.read_json(_write(path, conversations), lines=True)
    turns[EXTRA_TARGET_COLUMN] = [
        f"passage {t}" if i % 2 else None for i, t in enumerate(turns["target"])
    ]
    turns.to_json(path, orient="records", lines=True)
    return path


def test_extra_targets_stay_on_the_training_turns_of_a_source_that_asks(tmp_path: Path) -> None:
    plain = FileSource(path=str(_with_extra_target(tmp_path / "a.jsonl", 30)), name="a")
    flagged = plain.model_copy(update={"train_on_extra_target": True})
    turns = read_sources((plain,))
    before = split_sources(turns, (plain,), 0.2, 0.2, seed=0)
    after = split_sources(turns, (flagged,), 0.2, 0.2, seed=0)
    for split in (before.train, before.val, before.test, after.val, after.test):
        assert EXTRA_TARGET_COLUMN not in split.columns  # nothing encodes or trains on them
    assert after.val.equals(before.val) and after.test.equals(before.test)
    assert after.train.drop(columns=[EXTRA_TARGET_COLUMN]).equals(before.train)  # no new rows
    expected = turns.set_index(["conversation_id", "turn"])[EXTRA_TARGET_COLUMN]
    kept = after.train.set_index(["conversation_id", "turn"])[EXTRA_TARGET_COLUMN]
    assert kept.notna().sum() > 0
    assert kept.fillna("-").equals(expected.loc[kept.index].fillna("-"))


def test_extra_targets_of_one_source_leave_the_others_without(tmp_path: Path) -> None:
    flagged = FileSource(
        path=str(_with_extra_target(tmp_path / "a.jsonl", 20)), name="a", train_on_extra_target=True
    )
    other = FileSource(path=str(_with_extra_target(tmp_path / "b.jsonl", 20)), name="b")
    turns = read_sources((flagged, other))
    train = split_sources(turns, (flagged, other), 0.2, 0.2, seed=0).train
    cells = train.groupby(SOURCE_COLUMN)[EXTRA_TARGET_COLUMN].apply(lambda c: c.notna().sum())
    assert cells["a"] > 0 and cells["b"] == 0


def test_extra_targets_of_a_source_without_them_are_a_config_error(
    two: tuple[FileSource, ...],
) -> None:
    flagged = (two[0].model_copy(update={"train_on_extra_target": True}), two[1])
    with pytest.raises(ConfigError, match=r"source\(s\) \['alpha'\].*no 'extra_target' column"):
        split_sources(read_sources(two), flagged, 0.2, 0.2, seed=0)


def test_the_fingerprint_follows_extra_targets(tmp_path: Path) -> None:
    turns = read_sources((FileSource(path=str(_with_extra_target(tmp_path / "a.jsonl", 4))),))
    changed = turns.copy()
    changed.loc[1, EXTRA_TARGET_COLUMN] = "another passage"
    assert fingerprint_turns(turns) != fingerprint_turns(changed)
