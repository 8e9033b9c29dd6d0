"""Passage-like training targets from TopiOCQA: the answers given on one topic, around a turn.

Real assistants retrieve passages, while TopiOCQA's answers are short (often an entity). Its
answers on one ``Topic`` come from one Wikipedia article, so the answers given on that topic just
before and after a turn, under the topic's title, read like a paragraph of that article: text a
model can learn passage-shaped targets from (issue 26). Only ever a *training* target
(``FileSource.train_on_extra_target``); the judged sets keep the real answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from prime_model.data.records import NO_ANSWER, Record, check_unicode, id_field, turn_number
from prime_model.errors import DataValidationError
from prime_model.text import shown

ANSWERS_BEFORE: Final = 1  # answers on the same topic before the turn's own
ANSWERS_AFTER: Final = 2  # and after it


def topic_passages(records: Sequence[Record], path: Path) -> list[str | None]:
    """Per record: ``"<Topic>: <section>. <answers>"``, the answers given on its topic from
    :data:`ANSWERS_BEFORE` turns before to :data:`ANSWERS_AFTER` after it in its conversation
    (no-answer markers left out); None for a record without a topic or an answer."""
    topics = [_topic(record, path, i) for i, record in enumerate(records)]
    answers = [_answer(record) for record in records]
    order: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        order.setdefault(id_field(record, "Conversation_no", path, i), []).append(i)
    out: list[str | None] = [None] * len(records)
    for members in order.values():
        members.sort(key=lambda i: turn_number(records[i], "Turn_no", path, i))
        for at, i in enumerate(members):
            topic = topics[i]
            if topic is None or answers[i] is None:
                continue
            window = members[max(0, at - ANSWERS_BEFORE) : at + ANSWERS_AFTER + 1]
            same = [j for j in window if (other := topics[j]) is not None and other[0] == topic[0]]
            joined = " ".join(a for j in same if (a := answers[j]) is not None)
            heading = f"{topic[0]}: {topic[1]}" if topic[1] else topic[0]
            out[i] = f"{heading}. {joined}"
    return out


def _topic(record: Record, path: Path, index: int) -> tuple[str, str] | None:
    """(Topic, Topic_section), or None where the record names no topic."""
    values = []
    for field in ("Topic", "Topic_section"):
        value = record.get(field) or ""
        if not isinstance(value, str):
            raise DataValidationError(
                f"{path}: record {index} field {field!r} is {shown(value)}; expected a string"
            )
        values.append(check_unicode(value.strip(), path, f"record {index} field {field!r}"))
    return None if not values[0] else (values[0], values[1])


def _answer(record: Record) -> str | None:
    answer = record.get("Answer")
    if not isinstance(answer, str) or not answer.strip() or answer in NO_ANSWER:
        return None
    return answer.strip()
