"""doc2dial (reading-comprehension layout): histories with roles, span and paragraph targets."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest

from prime_model.data import read_turns
from prime_model.errors import DataValidationError

DOC = "Intro line.\n\nFirst paragraph. It holds the span here. More text.\n\nSecond paragraph."
SPAN = "It holds the span here. "
FIELDS = ("id", "question", "context", "answers", "spans", "domain", "title")


def _row(dial: str, turn: int, question: str, start: int | None = None) -> dict[str, str]:
    start = DOC.index(SPAN) if start is None else start
    answers = repr({"text": [SPAN], "answer_start": [start], "spans": {"1": SPAN}})
    return {
        "id": f"{dial}_{turn}",
        "question": question,
        "context": DOC,
        "answers": answers,
        "spans": "{}",
        "domain": "dmv",
        "title": "doc#1",
    }


def _write(path: Path, rows: list[dict[str, str]], *, zipped: bool = False) -> Path:
    csv_path = path.with_suffix(".csv") if zipped else path
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if not zipped:
        return path
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(csv_path, "inner.csv")
    return path


ROWS = [
    _row("d1", 1, "user:How do I renew?"),
    _row("d1", 3, "user:And online? \tagent:You can renew by mail. \tuser:How do I renew?"),
]


@pytest.mark.parametrize("zipped", [False, True])
def test_reads_histories_oldest_first_with_roles(tmp_path: Path, zipped: bool) -> None:
    path = _write(tmp_path / ("d.csv.zip" if zipped else "d.csv"), ROWS, zipped=zipped)
    turns = read_turns(path, "doc2dial", target="answer")
    assert turns["turn"].tolist() == [0, 2]
    assert turns["history"].tolist() == [[], ["How do I renew?", "You can renew by mail."]]
    assert turns["history_roles"].tolist() == [[], ["user", "system"]]
    assert turns["query"].tolist() == ["How do I renew?", "And online?"]
    assert turns["target"].tolist() == [SPAN.strip()] * 2


def test_passage_target_is_the_paragraph_around_the_span(tmp_path: Path) -> None:
    turns = read_turns(_write(tmp_path / "d.csv", ROWS), "doc2dial", target="passage")
    assert turns["target"].iloc[0] == "First paragraph. It holds the span here. More text."
    assert turns["target_id"].nunique() == 1  # one paragraph, one corpus id


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_row("d1", 1, "agent:Hello"), "expected user"),
        (_row("d1", 1, "bot:Hello"), "expected 'user:TEXT' or 'agent:TEXT'"),
        ({**_row("d1", 1, "user:hi"), "answers": "{'text': ["}, "expected a dict"),
        ({**_row("d1", 1, "user:hi"), "id": "no-turn"}, "expected '<dialog>_<turn>'"),
    ],
)
def test_malformed_rows_are_refused(tmp_path: Path, row: dict[str, str], message: str) -> None:
    path = _write(tmp_path / "d.csv", [row])
    with pytest.raises(DataValidationError, match=message.replace("(", r"\(")):
        read_turns(path, "doc2dial", target="answer")


def test_a_zip_with_two_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "id\n")
        archive.writestr("b.csv", "id\n")
    with pytest.raises(DataValidationError, match="one CSV member"):
        read_turns(path, "doc2dial", target="answer")


def test_doc2dial_cannot_provide_rewrites(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="cannot provide target 'rewrite'"):
        read_turns(_write(tmp_path / "d.csv", ROWS), "doc2dial", target="rewrite")
