"""CANARD (TSV pair and JSON), gzipped files and no-answer targets, through ``read_turns``."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from prime_model.data import read_turns
from prime_model.data.schema import REWRITE_COLUMN
from prime_model.errors import DataValidationError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "data"
EXAMPLE_TURNS = Path(__file__).parents[3] / "examples" / "data" / "turns.jsonl"
CANARD_TSV = FIXTURES / "canard_sample.question.tsv"
CANARD_JSON = FIXTURES / "canard_dev_sample.json"
TOPIOCQA = FIXTURES / "topiocqa_sample.json"


def _gzip(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


def test_canard_tsv_pair_builds_histories_from_earlier_questions() -> None:
    frame = read_turns(CANARD_TSV, "canard", target="rewrite")
    assert frame["conversation_id"].tolist() == ["C_aaa_0", "C_aaa_0", "C_bbb_1", "C_bbb_1"]
    assert frame["turn"].tolist() == [0, 1, 0, 1]
    assert frame.loc[0, "history"] == []
    assert frame.loc[1, "history"] == ["what team did the quarterback play for"]
    assert frame.loc[1, "target"] == "how many games did the Colts win?"


def test_canard_tsv_is_found_from_either_half_of_the_pair() -> None:
    rewrite_half = FIXTURES / "canard_sample.rewrite.tsv"
    pd.testing.assert_frame_equal(
        read_turns(rewrite_half, "canard", target="rewrite"),
        read_turns(CANARD_TSV, "canard", target="rewrite"),
    )


def test_canard_json_counts_turns_from_zero_and_keeps_title_and_section() -> None:
    frame = read_turns(CANARD_JSON, "canard", target="rewrite")
    assert frame["turn"].tolist() == [0, 1, 2, 3]
    assert frame.loc[0, "history"] == ["Jane Doe", "Early life"]
    assert frame.loc[3, "target"] == "Where did Jane Doe study marine biology?"


def test_canard_json_answer_target_comes_from_the_next_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="prime_model.data.public"):
        frame = read_turns(CANARD_JSON, "canard", target="answer")
    # turn 1 answered CANNOTANSWER, turn 3 is the last: neither has content to retrieve
    assert frame["turn"].tolist() == [0, 2]
    assert frame["target"].tolist() == ["In a small coastal town.", "Marine biology."]
    assert "dropped 1 of 3 turns" in caplog.text
    assert "1 of 4 turns have no recorded answer" in caplog.text
    records = json.loads(CANARD_JSON.read_text(encoding="utf-8"))
    rewrites = {r["Question_no"]: r["Rewrite"] for r in records}
    # each answer turn keeps its human rewrite: the pipeline's evaluation reports the oracle
    assert frame[REWRITE_COLUMN].tolist() == [rewrites[t + 1] for t in (0, 2)]


def test_topiocqa_unanswerable_targets_are_dropped_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = json.loads(TOPIOCQA.read_text(encoding="utf-8"))
    records[0]["Answer"] = "UNANSWERABLE"
    path = tmp_path / "topiocqa.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="prime_model.data.public"):
        frame = read_turns(path, "topiocqa", target="answer")
    assert len(frame) == len(records) - 1
    assert "UNANSWERABLE" not in frame["target"].tolist()
    assert f"dropped 1 of {len(records)} turns" in caplog.text


@pytest.mark.parametrize("fmt", ["topiocqa", "canard"])
def test_gzipped_public_json_reads_like_the_plain_file(tmp_path: Path, fmt: str) -> None:
    source = TOPIOCQA if fmt == "topiocqa" else CANARD_JSON
    target = "answer"
    packed = _gzip(source, tmp_path / f"{source.name}.gz")
    pd.testing.assert_frame_equal(
        read_turns(packed, fmt, target=target), read_turns(source, fmt, target=target)
    )


def test_gzipped_canard_tsv_pair(tmp_path: Path) -> None:
    for half in ("question", "rewrite"):
        _gzip(FIXTURES / f"canard_sample.{half}.tsv", tmp_path / f"canard_sample.{half}.tsv.gz")
    packed = read_turns(tmp_path / "canard_sample.question.tsv.gz", "canard", target="rewrite")
    pd.testing.assert_frame_equal(packed, read_turns(CANARD_TSV, "canard", target="rewrite"))


@pytest.mark.parametrize("source", [EXAMPLE_TURNS, FIXTURES / "turns.csv"], ids=["jsonl", "csv"])
def test_gzipped_turn_schema_formats_are_inferred_from_the_inner_suffix(
    tmp_path: Path, source: Path
) -> None:
    packed = _gzip(source, tmp_path / f"{source.name}.gz")
    pd.testing.assert_frame_equal(read_turns(packed), read_turns(source))


def test_gzipped_parquet(tmp_path: Path) -> None:
    frame = read_turns(EXAMPLE_TURNS)
    plain = tmp_path / "turns.parquet"
    frame.to_parquet(plain)
    packed = _gzip(plain, tmp_path / "turns.parquet.gz")
    pd.testing.assert_frame_equal(read_turns(packed), frame)


def test_a_broken_gzip_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataValidationError, match=r"turns.jsonl.gz: not a readable gzip file"):
        read_turns(path)


def test_canard_tsv_has_no_answer_target() -> None:
    with pytest.raises(DataValidationError, match=r"TSV pair has no answers.*dev.json"):
        read_turns(CANARD_TSV, "canard", target="answer")


def test_canard_has_no_passage_target() -> None:
    with pytest.raises(DataValidationError, match=r"'canard' cannot provide target 'passage'"):
        read_turns(CANARD_JSON, "canard", target="passage")


def test_canard_tsv_without_its_partner(tmp_path: Path) -> None:
    lonely = tmp_path / "train.question.tsv"
    shutil.copy(CANARD_TSV, lonely)
    with pytest.raises(DataValidationError, match=r"train.rewrite.tsv: file not found"):
        read_turns(lonely, "canard", target="rewrite")


def test_canard_tsv_with_an_unpaired_name(tmp_path: Path) -> None:
    path = tmp_path / "questions.tsv"
    shutil.copy(CANARD_TSV, path)
    with pytest.raises(DataValidationError, match=r"NAME.question.tsv or NAME.rewrite.tsv"):
        read_turns(path, "canard", target="rewrite")


@pytest.mark.parametrize(
    ("question", "rewrite", "expected"),
    [
        ("C_a_q#0\tq\n", "C_a_q#0\tr\nC_a_q#1\tr\n", r"has 1 lines but .* has 2"),
        ("C_a_q#0\tq\n", "C_b_q#0\tr\n", r"line 1: .* has C_a_q#0 but .* has C_b_q#0"),
        ("C_a_q#0 q\n", "C_a_q#0\tr\n", r"line 1 is 'C_a_q#0 q'; expected '<dialog id>_q#<k>"),
        ("no-id\tq\n", "C_a_q#0\tr\n", r"line 1 is 'no-id\\tq'"),
    ],
)
def test_malformed_canard_tsv(tmp_path: Path, question: str, rewrite: str, expected: str) -> None:
    (tmp_path / "x.question.tsv").write_text(question, encoding="utf-8")
    (tmp_path / "x.rewrite.tsv").write_text(rewrite, encoding="utf-8")
    with pytest.raises(DataValidationError, match=expected):
        read_turns(tmp_path / "x.question.tsv", "canard", target="rewrite")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Question_no", 0, r"'Question_no' is 0; expected an int >= 1"),
        ("History", "title", r"field 'History' is 'title'; expected a list of strings"),
        ("Rewrite", None, r"field 'Rewrite' is None; expected a string"),
    ],
)
def test_bad_canard_json_fields(tmp_path: Path, field: str, value: object, expected: str) -> None:
    records = json.loads(CANARD_JSON.read_text(encoding="utf-8"))
    records[1][field] = value
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataValidationError, match=expected):
        read_turns(path, "canard", target="rewrite")


def test_canard_json_missing_field(tmp_path: Path) -> None:
    records = json.loads(CANARD_JSON.read_text(encoding="utf-8"))
    del records[0]["Rewrite"]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"record 0 is missing field\(s\) \['Rewrite'\]"):
        read_turns(path, "canard", target="rewrite")


def test_public_readers_say_who_spoke_each_history_entry() -> None:
    canard_json = read_turns(CANARD_JSON, "canard", target="rewrite")
    assert canard_json.loc[0, "history_roles"] == ["system", "system"]  # title, section
    assert canard_json.loc[1, "history_roles"] == ["system", "system", "user", "system"]
    canard_tsv = read_turns(CANARD_TSV, "canard", target="rewrite")
    assert canard_tsv.loc[1, "history_roles"] == ["user"]  # questions only
    topiocqa = read_turns(TOPIOCQA, "topiocqa", target="answer")
    for history, roles in zip(topiocqa["history"], topiocqa["history_roles"], strict=True):
        assert roles == ["user", "system"] * (len(history) // 2) + ["user"] * (len(history) % 2)
