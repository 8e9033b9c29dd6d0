"""doc2dial in its reading-comprehension layout (``doc2dial_rc_*.csv``, optionally zipped).

Each row is one agent turn: ``question`` holds every earlier utterance newest first, tab-separated
and prefixed ``user:``/``agent:`` (the first item is the current user query), ``context`` the whole
grounding document and ``answers`` a Python-literal dict with the grounding span. The target is
the span (``answer``) or the blank-line-bounded paragraph around it (``passage``): a retriever
indexes paragraphs, not spans.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import sys
import zipfile
from pathlib import Path
from typing import Final

from prime_model.data.records import Record
from prime_model.errors import DataValidationError
from prime_model.text import shown

FIELDS: Final = ("id", "question", "context", "answers", "title")
MAX_MEMBER_BYTES: Final = 1 << 30  # the release's CSV is 46 MB; a zip bomb is refused
_SPEAKERS: Final = {"user": "user", "agent": "system"}
_ID: Final = re.compile(r"^(?P<dialog>.+)_(?P<turn>[0-9]{1,9})$")
_PARAGRAPH_BREAK: Final = "\n\n"


def doc2dial_rows(path: Path, target: str) -> list[Record]:
    """One turn per row; ``target`` is ``answer`` (the span) or ``passage`` (its paragraph)."""
    return [_row(row, path, i, target) for i, row in enumerate(_csv_rows(path))]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = _csv_text(path)
    csv.field_size_limit(min(sys.maxsize, (1 << 31) - 1))  # whole documents sit in one cell
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [f for f in FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise DataValidationError(
                f"{path}: doc2dial CSV lacks column(s) {missing}; expected {list(FIELDS)}"
            )
        return list(reader)
    except csv.Error as exc:
        raise DataValidationError(f"{path}: not a readable CSV ({exc})") from None


def _csv_text(path: Path) -> str:
    """The CSV's text: the file itself, or the single member of a zip holding it."""
    try:
        if not zipfile.is_zipfile(path):
            return path.read_text(encoding="utf-8-sig")
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1 or members[0].file_size > MAX_MEMBER_BYTES:
                found = [(m.filename, m.file_size) for m in members][:3]
                raise DataValidationError(
                    f"{path}: expected a zip with one CSV member of at most "
                    f"{MAX_MEMBER_BYTES} bytes, got {found}"
                )
            with archive.open(members[0]) as member:
                raw = member.read(MAX_MEMBER_BYTES + 1)
        return raw.decode("utf-8-sig")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not a readable doc2dial file ({exc})") from None


def _row(row: dict[str, str], path: Path, index: int, target: str) -> Record:
    where = f"{path}: row {index}"
    match = _ID.match(row["id"] or "")
    if match is None:
        raise DataValidationError(f"{where}: id {shown(row['id'])}; expected '<dialog>_<turn>'")
    utterances = [_utterance(item, where) for item in row["question"].split("\t")]
    (role, query), earlier = utterances[0], utterances[1:][::-1]  # oldest first
    if role != "user":
        raise DataValidationError(f"{where}: the current query is an {role} turn; expected user")
    start, span = _answer(row["answers"], where)
    text = _paragraph(row["context"], start, len(span)) if target == "passage" else span
    anchor = row["context"].rfind(_PARAGRAPH_BREAK, 0, start) if target == "passage" else start
    return {
        "conversation_id": match["dialog"],
        "turn": int(match["turn"]) - 1,
        "history": [text for _, text in earlier],
        "query": query,
        "target": text,
        "target_id": f"{row['title']}@{target}:{anchor}",
        "history_roles": [who for who, _ in earlier],
    }


def _utterance(item: str, where: str) -> tuple[str, str]:
    speaker, colon, text = item.partition(":")
    role = _SPEAKERS.get(speaker.strip())
    if not colon or role is None or not text.strip():
        raise DataValidationError(
            f"{where}: utterance {shown(item, 80)}; expected 'user:TEXT' or 'agent:TEXT'"
        )
    return role, text.strip()


def _answer(literal: str, where: str) -> tuple[int, str]:
    """(start, text) of the first grounding span; the field is a Python literal, not JSON."""
    try:
        answers = ast.literal_eval(literal)
        start, text = int(answers["answer_start"][0]), str(answers["text"][0])
    except (ValueError, SyntaxError, TypeError, KeyError, IndexError, MemoryError) as exc:
        raise DataValidationError(
            f"{where}: answers {shown(literal, 80)} ({type(exc).__name__}); expected a dict "
            "with 'text' and 'answer_start' lists"
        ) from None
    if not text.strip() or start < 0:
        raise DataValidationError(f"{where}: empty grounding span or negative answer_start")
    return start, text.strip()


def _paragraph(document: str, start: int, length: int) -> str:
    """The blank-line-bounded stretch of ``document`` that holds the span."""
    begin = document.rfind(_PARAGRAPH_BREAK, 0, start)
    end = document.find(_PARAGRAPH_BREAK, start + length)
    paragraph = document[0 if begin < 0 else begin : len(document) if end < 0 else end]
    return paragraph.strip()
