"""The GX suite on turn tables: a valid table passes, and every kind of bad row is named."""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from great_expectations.core.expectation_validation_result import ExpectationValidationResult

from prime_model.data.schema import REQUIRED_COLUMNS, Turn, truncate_histories, turns_to_frame
from prime_model.data.validation import (
    ExpectationOutcome,
    ValidationConfig,
    ValidationReport,
    check_turns,
    validate_turns,
)
from prime_model.data.validation_report import outcome_from_result
from prime_model.errors import ConfigError, DataValidationError, TurnValidationError

Mutation = Callable[[pd.DataFrame], pd.DataFrame]


def make_turns(conversations: int = 3, turns: int = 4) -> pd.DataFrame:
    """Questions and answers interleaved in the history, as in the generated sample set."""
    rows = []
    for c in range(conversations):
        history: list[str] = []
        for t in range(turns):
            query = f"what about item {t} of topic {c}?"
            rows.append(
                Turn(
                    conversation_id=f"c{c}",
                    turn=t,
                    history=list(history),
                    query=query,
                    target=f"passage {t} about topic {c}",
                    target_id=f"p{c}-{t}",
                )
            )
            history += [query, f"answer {t}"]
    return turns_to_frame(rows)


def set_cell(row: int, column: str, value: Any) -> Mutation:
    """Replace one cell (by position) in a copy; pandas infers the column's dtype again."""

    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        cells = [value if i == row else v for i, v in enumerate(frame[column])]
        return frame.assign(**{column: pd.Series(cells, index=frame.index)})

    return mutate


def report_of(exc: TurnValidationError) -> ValidationReport:
    assert isinstance(exc.report, ValidationReport)
    return exc.report


def failed(report: ValidationReport, name: str) -> ExpectationOutcome:
    matches = [r for r in report.failures if name in r.name]
    assert len(matches) == 1, f"no single failed check named {name!r} in {report.failures}"
    return matches[0]


def message_line(exc: BaseException, name: str) -> str:
    lines = [line for line in str(exc).splitlines() if name in line]
    assert lines, f"{name!r} not in message:\n{exc}"
    return lines[0]


def test_a_valid_table_passes_every_check() -> None:
    turns = make_turns()
    report = validate_turns(turns, ValidationConfig(history_matches_turn=True))
    assert report.success
    assert report.failures == ()
    assert (report.rows, report.conversations, report.truncated_histories) == (12, 3, 0)
    kinds = {r.expectation for r in report.results}
    assert {
        "expect_column_to_exist",
        "expect_table_row_count_to_be_between",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_match_regex",
        "expect_column_value_lengths_to_be_between",
        "expect_compound_columns_to_be_unique",
        "expect_column_pair_values_to_be_equal",
    } <= kinds
    assert "passed all" in report.summary()


def test_the_callers_frame_is_left_untouched() -> None:
    turns = make_turns().set_axis([10 * i for i in range(12)])
    before = turns.copy()
    histories = list(turns["history"])
    report = check_turns(set_cell(2, "query", " ")(turns))
    check_turns(turns)
    pd.testing.assert_frame_equal(turns, before)
    assert all(a is b for a, b in zip(turns["history"], histories, strict=True))
    # examples give positions in the frame, whatever its index
    assert failed(report, "'query' is not blank").examples[0].row == 2


@pytest.mark.parametrize(
    ("mutate", "check", "expectation", "count"),
    [
        pytest.param(set_cell(1, "history", None), "'history' has no nulls",
                     "expect_column_values_to_not_be_null", 1, id="null-history"),
        pytest.param(set_cell(2, "query", None), "'query' has no nulls",
                     "expect_column_values_to_not_be_null", 1, id="null-query"),
        pytest.param(set_cell(2, "query", " \t\n"), "'query' is not blank",
                     "expect_column_values_to_not_match_regex", 1, id="blank-query"),
        pytest.param(set_cell(5, "target", ""), "'target' is not blank",
                     "expect_column_values_to_not_match_regex", 1, id="empty-target"),
        pytest.param(set_cell(6, "target", "   "), "'target' is not blank",
                     "expect_column_values_to_not_match_regex", 1, id="blank-target"),
        pytest.param(set_cell(3, "query", 42), "'query' values are strings",
                     "expect_column_values_to_be_of_type", 1, id="query-not-str"),
        pytest.param(set_cell(0, "turn", -1), "'turn' is >= 0",
                     "expect_column_values_to_be_between", 1, id="negative-turn"),
        pytest.param(set_cell(1, "turn", 0), "(conversation_id, turn) is unique",
                     "expect_compound_columns_to_be_unique", 2, id="duplicate-turn"),
        pytest.param(set_cell(1, "history", "q0; a0"), "'history' is a list",
                     "expect_column_values_to_be_in_set", 1, id="history-not-list"),
        pytest.param(set_cell(2, "history", ["q0", 7]), "'history' holds only strings",
                     "expect_column_values_to_be_in_set", 1, id="history-not-str"),
        pytest.param(set_cell(4, "query", "x" * 2_001), "'query' has 1 to 2000 characters",
                     "expect_column_value_lengths_to_be_between", 1, id="query-too-long"),
        pytest.param(set_cell(4, "target", "y" * 20_001), "'target' has 1 to 20000 characters",
                     "expect_column_value_lengths_to_be_between", 1, id="target-too-long"),
        pytest.param(set_cell(3, "history", ["q", "z" * 20_001]),
                     "history texts have at most 20000 characters",
                     "expect_column_values_to_be_between", 1, id="history-text-too-long"),
    ],
)  # fmt: skip
def test_each_bad_row_is_named_with_its_count(
    mutate: Mutation, check: str, expectation: str, count: int
) -> None:
    with pytest.raises(TurnValidationError) as info:
        validate_turns(mutate(make_turns()))
    exc = info.value
    assert isinstance(exc, DataValidationError)
    outcome = failed(report_of(exc), check)
    assert (outcome.expectation, outcome.unexpected_count) == (expectation, count)
    assert len(outcome.examples) == count
    line = message_line(exc, check)
    assert expectation in line
    assert f"{count} unexpected row(s)" in line
    assert f"row {outcome.examples[0].row} (conversation 'c" in line
    assert not report_of(exc).success


@pytest.mark.parametrize(
    ("turns", "check", "observed"),
    [
        pytest.param(turns_to_frame([]), "at least 10 rows", "0", id="empty"),
        pytest.param(make_turns().iloc[:5], "at least 10 rows", "5", id="too-few-rows"),
        pytest.param(make_turns(1, 12), "at least 2 distinct values", "1", id="one-conversation"),
    ],
)  # fmt: skip
def test_table_size_failures_show_what_was_observed(
    turns: pd.DataFrame, check: str, observed: str
) -> None:
    with pytest.raises(TurnValidationError) as info:
        validate_turns(turns)
    outcome = failed(report_of(info.value), check)
    assert outcome.observed == observed
    assert f"observed {observed}" in message_line(info.value, check)


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_a_missing_column_is_reported_not_a_gx_crash(column: str) -> None:
    with pytest.raises(TurnValidationError) as info:
        validate_turns(make_turns().drop(columns=[column]))
    report = report_of(info.value)
    assert [r.name for r in report.failures] == [f"column '{column}' exists"]
    assert f"expect_column_to_exist, column '{column}'" in str(info.value)
    assert not any(r.error for r in report.results)  # no check ran against the missing column


def test_history_length_is_checked_against_turn_only_when_asked() -> None:
    turns = set_cell(5, "history", ["only one"])(make_turns())
    assert check_turns(turns).success
    with pytest.raises(TurnValidationError) as info:
        validate_turns(turns, ValidationConfig(history_matches_turn=True))
    outcome = failed(report_of(info.value), "len(history) == 2 * turn")
    assert (outcome.expectation, outcome.unexpected_count) == (
        "expect_column_pair_values_to_be_equal",
        1,
    )
    assert outcome.examples[0].turn == "1"
    assert outcome.examples[0].value == "1"  # len(history)
    assert "1 unexpected row(s)" in message_line(info.value, "len(history) == 2 * turn")


def test_a_check_gx_cannot_evaluate_is_a_failure_with_its_reason() -> None:
    turns = make_turns()
    turns["turn"] = turns["turn"].astype(str)
    report = check_turns(turns)
    outcome = failed(report, "'turn' is >= 0")
    assert outcome.error
    assert "could not be evaluated" in outcome.describe()
    assert "could not be evaluated" in report.to_html()
    assert failed(report, "'turn' has dtype int64").unexpected_count == 12


def test_a_wrong_column_dtype_shows_the_dtype_found() -> None:
    turns = make_turns().assign(history=float("nan"))
    outcome = failed(check_turns(turns), "'history' has dtype object")
    assert outcome.observed == "float64"


def test_an_expectation_that_raised_keeps_its_message() -> None:
    result = ExpectationValidationResult(
        success=False, exception_info={"raised_exception": True, "exception_message": "boom"}
    )
    outcome = outcome_from_result(
        result, make_turns(), name="n", expectation="expect_x", column=None, shown=None
    )
    assert (outcome.success, outcome.error) == (False, "boom")
    assert outcome.describe() == "n [expect_x]: could not be evaluated: boom"


def test_every_failure_is_listed_at_once() -> None:
    turns = set_cell(0, "turn", -1)(set_cell(2, "query", "  ")(make_turns()))
    with pytest.raises(TurnValidationError) as info:
        validate_turns(turns)
    names = {r.name for r in report_of(info.value).failures}
    assert names == {"'turn' is >= 0", "'query' is not blank"}
    assert str(info.value).startswith("turn table: failed 2 of")


def test_error_keeps_its_report_through_pickle() -> None:
    with pytest.raises(TurnValidationError) as info:
        validate_turns(make_turns().iloc[:3], source="train split")
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)
    assert copy.report == info.value.report
    assert str(copy).startswith("train split: failed")


def test_html_is_self_contained_and_escapes_user_text() -> None:
    evil = "<script>alert('x')</script>"
    turns = set_cell(2, "query", " ")(set_cell(2, "conversation_id", evil)(make_turns()))
    report = check_turns(turns, source="<b>upload</b>")
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>")
    assert "'query' is not blank".replace("'", "&#x27;") in html
    assert "expect_column_values_to_not_match_regex" in html
    assert "FAIL" in html
    assert "&lt;script&gt;" in html
    assert "<script" not in html
    assert "<b>" not in html
    assert "http" not in html  # nothing loaded from a CDN
    assert "<style>" in html


def test_a_passing_report_renders_too() -> None:
    html = check_turns(make_turns()).to_html()
    assert "PASSED" in html
    assert "FAIL" not in html


def test_long_histories_are_counted_not_failed() -> None:
    turns = make_turns(conversations=3, turns=4)  # history lengths 0, 2, 4, 6 per conversation
    report = validate_turns(turns, ValidationConfig(max_context_length=3))
    assert report.success
    assert report.truncated_histories == 6
    assert "6 histories longer than 3 turns" in report.summary()


def test_truncate_histories_keeps_the_most_recent_turns() -> None:
    turns = make_turns(conversations=1, turns=4)
    original = [list(h) for h in turns["history"]]
    short = truncate_histories(turns, 3)
    assert [len(h) for h in short["history"]] == [0, 2, 3, 3]
    assert short["history"].iloc[3] == original[3][-3:]
    assert [list(h) for h in turns["history"]] == original  # caller's lists untouched
    pd.testing.assert_frame_equal(short.drop(columns="history"), turns.drop(columns="history"))
    report = check_turns(short, ValidationConfig(min_conversations=1, min_rows=1))
    assert report.truncated_histories == 0


def test_truncate_histories_rejects_bad_input() -> None:
    turns = make_turns()
    with pytest.raises(ConfigError, match="max_context_length must be >= 1, got 0"):
        truncate_histories(turns, 0)
    with pytest.raises(DataValidationError, match="no 'history' column"):
        truncate_histories(turns.drop(columns="history"), 2)
    with pytest.raises(DataValidationError, match=r"rows \[1\] hold \['str'\]"):
        truncate_histories(set_cell(1, "history", "q0")(turns), 2)


def test_only_a_dataframe_is_accepted() -> None:
    with pytest.raises(DataValidationError, match="expected a pandas DataFrame, got <class 'list"):
        check_turns([{"turn": 0}])  # type: ignore[arg-type]


def test_validation_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(_sock: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert check_turns(make_turns()).success
    assert attempts == []


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"min_rows": 0}, "min_rows"),
        ({"min_conversations": 0}, "min_conversations"),
        ({"max_query_chars": 0}, "max_query_chars"),
        ({"max_context_length": 0}, "max_context_length"),
        ({"min_query_chars": 10, "max_query_chars": 5}, "min_query_chars=10 must be <= max_query"),
        ({"min_target_chars": 9, "max_target_chars": 8}, "min_target_chars=9 must be <= max"),
        ({"min_rows": 2, "min_conversations": 3}, "min_conversations=3 must be <= min_rows=2"),
        ({"history_matches_turn": "maybe"}, "history_matches_turn"),
        ({"min_row": 3}, "min_row"),
    ],
)
def test_bad_config_values_raise_config_error(values: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ValidationConfig(**values)


def test_gx_bookkeeping_stays_out_of_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert check_turns(make_turns()).success
    gx = [r.getMessage() for r in caplog.records if r.name.startswith("great_expectations")]
    assert gx == []  # GX logs "Skipping registering function ..." per context on INFO
    assert [r.name for r in caplog.records] == ["prime_model.data.validation"]  # the summary
    assert logging.getLogger("great_expectations").level == logging.NOTSET  # restored
