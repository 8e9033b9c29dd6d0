from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from prime_model.data.readers import SUPPORTED_FORMATS, read_turns
from prime_model.data.schema import (
    COLUMNS,
    DTYPES,
    EXTRA_TARGET_COLUMN,
    REWRITE_COLUMN,
    ROLE_COLUMN,
    Turn,
    turns_to_frame,
)
from prime_model.errors import DataValidationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"
TURNS_JSONL = Path(__file__).resolve().parents[3] / "examples" / "data" / "turns.jsonl"
TURNS_CSV = FIXTURES / "turns.csv"
QRECC = FIXTURES / "qrecc_sample.json"
TOPIOCQA = FIXTURES / "topiocqa_sample.json"


def _assert_turn_table(frame: pd.DataFrame) -> None:
    """The schema's columns (public readers add who spoke each history entry and the rewrite;
    TopiOCQA's also a passage-like extra target)."""
    roles = ROLE_COLUMN in frame.columns
    extra: tuple[str, ...] = (ROLE_COLUMN, REWRITE_COLUMN) if roles else ()
    extra += (EXTRA_TARGET_COLUMN,) if EXTRA_TARGET_COLUMN in frame.columns else ()
    assert tuple(frame.columns) == (*COLUMNS, *extra)
    dtypes = {**DTYPES, **dict.fromkeys(extra, "object")}
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == dtypes
    assert all(isinstance(h, list) and all(isinstance(s, str) for s in h) for h in frame.history)
    if roles:
        lengths = [len(r) for r in frame[ROLE_COLUMN]]
        assert lengths == [len(h) for h in frame.history]


def _sample_frame() -> pd.DataFrame:
    return turns_to_frame(
        [
            Turn(conversation_id="a", turn=0, query="hi?", target="hello", target_id="p1"),
            Turn(
                conversation_id="a",
                turn=1,
                history=["hi?", 'say "hello", please'],
                query="and then, why?",
                target="because\nof a newline",
            ),
            Turn(conversation_id="b", turn=0, history=[], query="q", target="", target_id="p3"),
        ]
    )


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """The CSV convention: history is a JSON list string, an unknown target_id an empty cell."""
    out = frame.copy()
    out["history"] = [json.dumps(h) for h in out["history"]]
    out.to_csv(path, index=False)
    return path


def _load(path: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _dump(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


# --- turn-schema formats --------------------------------------------------------------------


def test_jsonl_fixture_reads_as_a_turn_table() -> None:
    frame = read_turns(TURNS_JSONL)
    _assert_turn_table(frame)
    assert len(frame) == 5
    assert frame["conversation_id"].tolist() == ["conv-001"] * 3 + ["conv-002"] * 2
    assert frame["turn"].tolist() == [0, 1, 2, 0, 1]
    assert frame["history"].tolist()[2][-1] == "On 31 March 1889."
    assert frame.loc[2, "target_id"] is None
    assert frame.loc[0, "target_id"] == "wiki:9232-0"


def test_csv_fixture_matches_the_jsonl_fixture() -> None:
    frame = read_turns(TURNS_CSV)
    _assert_turn_table(frame)
    pd.testing.assert_frame_equal(frame, read_turns(TURNS_JSONL))


def test_explicit_format_overrides_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "turns.txt"
    path.write_bytes(TURNS_JSONL.read_bytes())
    pd.testing.assert_frame_equal(read_turns(path, "jsonl"), read_turns(TURNS_JSONL))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = _sample_frame()
    path = tmp_path / f"turns{suffix}"
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".csv":
        _write_csv(frame, path)
    else:
        frame.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_turns(path), frame)


def test_parquet_without_target_id_gets_none(tmp_path: Path) -> None:
    path = tmp_path / "turns.parquet"
    _sample_frame().drop(columns="target_id").to_parquet(path, index=False)
    frame = read_turns(path)
    _assert_turn_table(frame)
    assert frame["target_id"].tolist() == [None, None, None]


def test_empty_jsonl_is_an_empty_turn_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    frame = read_turns(path)
    assert tuple(frame.columns) == COLUMNS
    assert frame.empty


def test_reading_logs_the_row_count(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="prime_model.data.readers"):
        read_turns(TURNS_JSONL)
    assert "read 5 turns" in caplog.text


# --- public datasets ------------------------------------------------------------------------


def test_qrecc_answer_target() -> None:
    frame = read_turns(QRECC, "qrecc", target="answer")
    _assert_turn_table(frame)
    records = _load(QRECC)
    assert frame["conversation_id"].tolist() == ["quac_12"] * 3 + ["nq_12"] * 3
    assert frame["turn"].tolist() == [0, 1, 2, 0, 1, 2]
    assert frame["history"].tolist() == [r["Context"] for r in records]
    assert frame["query"].tolist() == [r["Question"] for r in records]
    assert frame["target"].tolist() == [r["Answer"] for r in records]
    assert frame.loc[0, "target_id"] == "https://en.wikipedia.org/wiki/Leon_Bridges"
    assert frame.loc[2, "target_id"] is None  # empty Answer_URL
    assert len(frame["history"].tolist()[2]) == 4
    assert frame[REWRITE_COLUMN].tolist() == [r["Rewrite"] for r in records]  # the oracle's


def test_a_rewrite_target_carries_no_rewrite_column_value() -> None:
    frame = read_turns(QRECC, "qrecc", target="rewrite")
    assert frame[REWRITE_COLUMN].isna().all()  # the target itself: no oracle to report


def test_a_rewrite_that_is_not_text_is_refused(tmp_path: Path) -> None:
    records = _load(QRECC)
    records[1]["Rewrite"] = ["not", "text"]
    bad = tmp_path / "qrecc.json"
    bad.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataValidationError, match="Rewrite"):
        read_turns(bad, "qrecc", target="answer")


def test_qrecc_rewrite_target_has_no_target_id() -> None:
    frame = read_turns(QRECC, "qrecc", target="rewrite")
    assert frame["target"].tolist() == [r["Rewrite"] for r in _load(QRECC)]
    assert frame["target_id"].tolist() == [None] * 6


def test_qrecc_without_source_and_as_json_lines(tmp_path: Path) -> None:
    records = _load(QRECC)[:3]
    for record in records:
        del record["Conversation_source"]
    frame = read_turns(_write_jsonl(tmp_path / "q.jsonl", records), "qrecc", target="answer")
    assert frame["conversation_id"].tolist() == ["12"] * 3


def test_topiocqa_passage_target() -> None:
    frame = read_turns(TOPIOCQA, "topiocqa")
    _assert_turn_table(frame)
    records = _load(TOPIOCQA)
    assert frame["conversation_id"].tolist() == ["1"] * 3 + ["2"] * 3
    assert frame["turn"].tolist() == [0, 1, 2, 0, 1, 2]
    assert frame["history"].tolist() == [r["Context"] for r in records]
    assert str(frame.loc[0, "target"]).startswith("Canberra: Canberra is the capital")
    assert frame.loc[2, "target"] == records[2]["Gold_passage"]["text"]  # empty title
    assert frame["target_id"].tolist() == [r["Gold_passage"]["id"] for r in records]


def test_topiocqa_answer_target_and_numeric_passage_id(tmp_path: Path) -> None:
    records = _load(TOPIOCQA)
    records[0]["Gold_passage"]["id"] = 42
    path = _dump(tmp_path / "t.json", records)
    assert read_turns(path, "topiocqa").loc[0, "target_id"] == "42"
    frame = read_turns(path, "topiocqa", target="answer")
    assert frame["target"].tolist() == [r["Answer"] for r in records]
    assert frame["target_id"].tolist() == [None] * 6


# --- errors ---------------------------------------------------------------------------------


def test_unknown_format_lists_the_supported_ones() -> None:
    with pytest.raises(DataValidationError, match=r"unknown format 'xml'.*'jsonl'.*'topiocqa'"):
        read_turns(TURNS_JSONL, "xml")
    assert "qrecc" in SUPPORTED_FORMATS


def test_suffix_that_cannot_be_inferred(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"cannot infer the format from suffix '\.json'"):
        read_turns(tmp_path / "qrecc.json")


def test_unknown_target() -> None:
    with pytest.raises(DataValidationError, match=r"unknown target 'gold'.*'passage'"):
        read_turns(TURNS_JSONL, target="gold")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"nope\.jsonl: file not found"):
        read_turns(tmp_path / "nope.jsonl")
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(
        DataValidationError, match=r"dir\.csv: cannot read data file: it is a directory"
    ):
        read_turns(folder)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"conversation_id": "a"}\n\n{"conversation_id": \n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"bad\.jsonl: invalid JSON on line 3"):
        read_turns(path)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "t.jsonl", [[1, 2]])
    with pytest.raises(DataValidationError, match=r"line 1 is a JSON list; expected a JSON object"):
        read_turns(path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"query": "caf\xe9"}\n')
    with pytest.raises(DataValidationError, match=r"t\.jsonl: not valid UTF-8"):
        read_turns(path)


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "t.jsonl", [{"conversation_id": "a", "turn": 0}])
    with pytest.raises(DataValidationError, match=r"t\.jsonl: missing required column\(s\)"):
        read_turns(path)


@pytest.mark.parametrize("history", ["hi", None, [1, 2], {"a": 1}])
def test_jsonl_history_must_be_a_list_of_strings(tmp_path: Path, history: object) -> None:
    row = {"conversation_id": "a", "turn": 0, "history": history, "query": "q", "target": "t"}
    path = _write_jsonl(tmp_path / "t.jsonl", [row])
    with pytest.raises(
        DataValidationError, match=r"t\.jsonl: row 0 column 'history' .*expected a list of strings"
    ):
        read_turns(path)


def test_invalid_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataValidationError, match=r"t\.parquet: not a readable Parquet file"):
        read_turns(path)


def test_parquet_history_must_be_a_list(tmp_path: Path) -> None:
    frame = _sample_frame()
    frame["history"] = ["[]", "not a list", "[]"]
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"row 0 column 'history' is '\[\]'; expected a list of strings"
    ):
        read_turns(path)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("hello", "is 'hello', not valid JSON"),
        ("", "is '', not valid JSON"),
        ('{"a": 1}', "is {'a': 1}"),
        ("[1, 2]", "is [1, 2]"),
    ],
)
def test_csv_history_must_be_a_json_list_of_strings(
    tmp_path: Path, cell: str, problem: str
) -> None:
    frame = _sample_frame()
    frame["history"] = [[], [], []]
    path = _write_csv(frame, tmp_path / "t.csv")
    bad = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad.loc[1, "history"] = cell
    bad.to_csv(path, index=False)
    with pytest.raises(
        DataValidationError,
        match=rf"t\.csv: row 1 column 'history' {re.escape(problem)}; expected a JSON list",
    ):
        read_turns(path)


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"t\.csv: not a readable CSV file"):
        read_turns(path)


def test_malformed_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n"unterminated,1\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"t\.csv: not a readable CSV file"):
        read_turns(path)


def test_qrecc_has_no_passage_target() -> None:
    with pytest.raises(
        DataValidationError,
        match=r"'qrecc' cannot provide target 'passage'.*supported targets for qrecc: "
        r"\('answer', 'rewrite'\)",
    ):
        read_turns(QRECC, "qrecc")


def test_topiocqa_has_no_rewrite_target() -> None:
    with pytest.raises(
        DataValidationError,
        match=r"'topiocqa' cannot provide target 'rewrite'.*\('passage', 'answer'\)",
    ):
        read_turns(TOPIOCQA, "topiocqa", target="rewrite")


@pytest.mark.parametrize(
    ("fmt", "target", "field"),
    [
        ("qrecc", "answer", "Answer"),
        ("qrecc", "rewrite", "Rewrite"),
        ("qrecc", "answer", "Context"),
        ("topiocqa", "passage", "Gold_passage"),
        ("topiocqa", "answer", "Question"),
    ],
)
def test_missing_source_field_names_field_and_record(
    tmp_path: Path, fmt: str, target: str, field: str
) -> None:
    records = _load(QRECC if fmt == "qrecc" else TOPIOCQA)
    del records[4][field]
    path = _dump(tmp_path / "data.json", records)
    with pytest.raises(
        DataValidationError, match=rf"record 4 is missing field\(s\) \['{field}'\]; {fmt} records"
    ):
        read_turns(path, fmt, target=target)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Turn_no", 0, "field 'Turn_no' is 0; expected an int >= 1"),
        ("Turn_no", "2", "field 'Turn_no' is '2'; expected an int >= 1"),
        ("Turn_no", True, "field 'Turn_no' is True; expected an int >= 1"),
        ("Question", None, "field 'Question' is None; expected a string"),
        ("Context", "prev", "field 'Context' is 'prev'; expected a list of strings"),
        ("Gold_passage", {"id": 1}, "field 'Gold_passage' is .*expected an object with a string"),
        ("Gold_passage", "text", "field 'Gold_passage' is 'text'; expected an object"),
    ],
)
def test_bad_source_field_values(tmp_path: Path, field: str, value: object, expected: str) -> None:
    records = _load(TOPIOCQA)
    records[1][field] = value
    path = _dump(tmp_path / "t.json", records)
    with pytest.raises(DataValidationError, match=rf"t\.json: record 1 {expected}"):
        read_turns(path, "topiocqa")


def test_public_file_with_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text('[\n  {"Turn_no": 1},\n  {"Turn_no": }\n]\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"q\.json: invalid JSON on line 3"):
        read_turns(path, "qrecc", target="answer")


def test_public_array_element_that_is_not_an_object(tmp_path: Path) -> None:
    path = _dump(tmp_path / "q.json", [*_load(QRECC)[:1], "oops"])  # type: ignore[list-item]
    with pytest.raises(DataValidationError, match=r"record 1 is a JSON str; expected a JSON obj"):
        read_turns(path, "qrecc", target="answer")
