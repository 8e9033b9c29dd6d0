from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.errors import DataValidationError
from prime_model.retrieve.corpus import build_index, corpus_from_turns, read_corpus
from tests.conftest import CountingEncoder


def test_training_targets_become_unique_items_with_evaluation_ids() -> None:
    turns = generate_sample(SampleConfig(num_conversations=20, seed=0))
    corpus = corpus_from_turns(turns)
    assert list(corpus.columns) == ["id", "text"]
    assert corpus["id"].is_unique and corpus["text"].is_unique
    assert set(corpus["text"]) == set(turns["target"])
    known = dict(zip(turns["target"], turns["target_id"], strict=True))
    assert all(known[t] == i for i, t in zip(corpus["id"], corpus["text"], strict=True))


def test_targets_without_ids_get_stable_hash_ids() -> None:
    turns = pd.DataFrame({"target": ["a", "b", "a"], "target_id": [None, None, None]})
    ids = corpus_from_turns(turns)["id"].tolist()
    assert len(ids) == 2 and all(i.startswith("sha1:") for i in ids)
    assert ids == corpus_from_turns(turns)["id"].tolist()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_corpus_files_are_read_in_every_format(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"id": ["d1", "d2"], "text": ["first", "second"], "extra": [1, 2]})
    path = tmp_path / f"corpus{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")))
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    corpus = read_corpus(path)
    assert corpus.to_dict("list") == {"id": ["d1", "d2"], "text": ["first", "second"]}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a"}'], r"missing field\(s\) \['text'\]"),
        (['{"id": "a", "text": "  "}'], "record 0 has a blank text"),
        (['{"id": "a", "text": 5}'], "field 'text' is 5; expected a string"),
        (['{"id": [1], "text": "x"}'], "expected a string or integer id"),
        (['{"id": "a", "text": "x"}', '{"id": "a", "text": "y"}'], "occur more than once"),
        ([], "no corpus items"),
    ],
)
def test_bad_corpus_files_are_refused(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(DataValidationError, match=message):
        read_corpus(path)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text("x")
    with pytest.raises(DataValidationError, match=r"unknown corpus format '\.txt'"):
        read_corpus(tmp_path / "corpus.txt")
    with pytest.raises(DataValidationError, match="file not found"):
        read_corpus(tmp_path / "absent.jsonl")


def test_build_index_encodes_every_text_once() -> None:
    encoder = CountingEncoder(dim=8)
    corpus = pd.DataFrame({"id": ["a", "b"], "text": ["alpha", "beta"]})
    index = build_index(corpus, encoder)
    assert encoder.calls == [["alpha", "beta"]]
    assert (len(index), index.dim, index.encoder_name) == (2, 8, "counting-stub")
    assert index.search(encoder.encode(["beta"]), 1)[0][0].id == "b"
