"""TopiOCQA's passage-like training targets: the answers on one topic around a turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prime_model.data.readers import read_turns
from prime_model.data.schema import EXTRA_TARGET_COLUMN
from prime_model.data.topic_passages import topic_passages
from prime_model.errors import DataValidationError, PrimeError

FIXTURE = Path(__file__).parents[2] / "fixtures" / "data" / "topiocqa_sample.json"
HERE = Path("topiocqa.json")


def _record(conversation: int, turn: int, topic: str, answer: str, section: str = "S") -> Any:
    return {
        "Conversation_no": conversation,
        "Turn_no": turn,
        "Topic": topic,
        "Topic_section": section,
        "Answer": answer,
    }


def test_a_turn_gets_the_answers_on_its_topic_one_before_and_two_after() -> None:
    records = [_record(1, t, "Force", f"a{t}") for t in range(1, 7)]
    passages = topic_passages(records, HERE)
    assert passages[0] == "Force: S. a1 a2 a3"
    assert passages[2] == "Force: S. a2 a3 a4 a5"
    assert passages[5] == "Force: S. a5 a6"


def test_answers_on_another_topic_or_in_another_conversation_stay_out() -> None:
    records = [
        _record(1, 1, "Force", "f1"),
        _record(1, 2, "Galileo", "g1", section=""),
        _record(1, 3, "Force", "f2"),
        _record(2, 1, "Force", "other conversation"),
    ]
    passages = topic_passages(list(reversed(records)), HERE)[::-1]  # file order does not matter
    assert passages[0] == "Force: S. f1 f2"
    assert passages[1] == "Galileo. g1"  # no section: the title alone
    assert passages[3] == "Force: S. other conversation"


def test_no_answer_turns_and_turns_without_a_topic_get_none() -> None:
    records = [
        _record(1, 1, "Force", "f1"),
        _record(1, 2, "Force", "UNANSWERABLE"),
        _record(1, 3, "", "f3"),
        {"Conversation_no": 1, "Turn_no": 4, "Answer": "no topic field"},
    ]
    assert topic_passages(records, HERE) == ["Force: S. f1", None, None, None]


@pytest.mark.parametrize("field", ["Topic", "Topic_section"])
def test_a_topic_that_is_not_a_string_is_refused_naming_the_field(field: str) -> None:
    record = _record(1, 1, "Force", "a")
    record[field] = ["a", "list"]
    with pytest.raises(
        DataValidationError, match=rf"record 0 field '{field}' is .*expected a string"
    ):
        topic_passages([record], HERE)
    with pytest.raises(PrimeError):
        topic_passages([record], HERE)


def test_the_topiocqa_reader_fills_extra_target_and_keeps_the_answer_as_target() -> None:
    turns = read_turns(FIXTURE, "topiocqa", target="answer")
    assert turns["target"].iloc[0] == "Canberra"
    assert turns[EXTRA_TARGET_COLUMN].iloc[0] == (
        "Australia: Canberra. Canberra 1913 Walter Burley Griffin and Marion Mahony Griffin"
    )
    assert turns[EXTRA_TARGET_COLUMN].iloc[5] == (
        "J. R. R. Tolkien: Works. The Lord of the Rings and The Silmarillion"
    )
    qrecc = read_turns(FIXTURE.with_name("qrecc_sample.json"), "qrecc", target="rewrite")
    assert EXTRA_TARGET_COLUMN not in qrecc.columns
