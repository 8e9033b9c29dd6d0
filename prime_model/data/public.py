"""Adapters for public conversational datasets: QReCC, TopiOCQA, CANARD and doc2dial.

Each adapter maps one release's records to the turn schema: the dataset's 1-based turn numbers
become 0-based ``turn`` values, and targets a retriever cannot use (TopiOCQA ``UNANSWERABLE``,
QuAC ``CANNOTANSWER``) are dropped with a logged count rather than embedded as content.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Final

import pandas as pd

from prime_model.data.doc2dial import doc2dial_rows
from prime_model.data.records import (
    NO_ANSWER,
    Record,
    check_file,
    check_unicode,
    data_suffix,
    id_field,
    load_records,
    optional_id,
    read_text,
    require,
    split_lines,
    string_list,
    text_field,
    turn_number,
)
from prime_model.data.schema import (
    COLUMNS,
    EXTRA_TARGET_COLUMN,
    REWRITE_COLUMN,
    ROLE_COLUMN,
    conform_frame,
)
from prime_model.data.topic_passages import topic_passages
from prime_model.errors import DataValidationError
from prime_model.text import shown

logger = logging.getLogger(__name__)

PUBLIC_TARGETS: Final = {
    "qrecc": ("answer", "rewrite"),
    "topiocqa": ("passage", "answer"),
    "canard": ("rewrite", "answer"),
    "doc2dial": ("passage", "answer"),
}
WHY_NOT: Final = {
    "qrecc": "it has no gold passage text",
    "topiocqa": "it has no query rewrites",
    "canard": "it has no passages",
    "doc2dial": "its targets are grounding spans (answer) and their paragraphs (passage)",
}
_SHARED_FIELDS: Final = ("Conversation_no", "Turn_no", "Context", "Question")
_CANARD_FIELDS: Final = ("History", "QuAC_dialog_id", "Question", "Question_no", "Rewrite")
_STRINGS: Final = "a list of strings"
# ASCII digits, at most 9: int() of thousands of digits raises a bare ValueError
_CANARD_ID: Final = re.compile(r"^(?P<dialog>.+)_q#(?P<turn>[0-9]{1,9})$")


def read_public(path: Path, fmt: str, target: str) -> pd.DataFrame:
    """The turn table of a public release in format ``fmt``, retrieving ``target``."""
    if target not in PUBLIC_TARGETS[fmt]:
        raise DataValidationError(
            f"{path}: format {fmt!r} cannot provide target {target!r} ({WHY_NOT[fmt]}); "
            f"supported targets for {fmt}: {PUBLIC_TARGETS[fmt]}"
        )
    if fmt == "canard":
        rows = _canard_rows(path, target)
    elif fmt == "doc2dial":
        rows = doc2dial_rows(path, target)
    else:
        records = load_records(path)
        to_row = _qrecc_row if fmt == "qrecc" else _topiocqa_row
        rows = [to_row(record, path, i, target) for i, record in enumerate(records)]
        if fmt == "topiocqa":  # passage-like texts a training turn may also be trained on
            for row, passage in zip(rows, topic_passages(records, path), strict=True):
                row[EXTRA_TARGET_COLUMN] = passage
    kept = [row for row in rows if row["target"] not in NO_ANSWER]
    if len(kept) < len(rows):
        logger.info(
            "%s: dropped %d of %d turns whose %s is a no-answer marker (%s)",
            path,
            len(rows) - len(kept),
            len(rows),
            target,
            "/".join(sorted(NO_ANSWER)),
        )
    extra = [EXTRA_TARGET_COLUMN] if fmt == "topiocqa" else []
    columns = [*COLUMNS, ROLE_COLUMN, REWRITE_COLUMN, *extra]
    return conform_frame(pd.DataFrame(kept, columns=columns), source=str(path))


def alternating_roles(history: list[str]) -> list[str]:
    """Question, answer, question, ...: the history of QReCC and TopiOCQA."""
    return ["user" if i % 2 == 0 else "system" for i in range(len(history))]


def _common_fields(record: Record, path: Path, index: int, fmt: str, field: str) -> Record:
    require(record, (*_SHARED_FIELDS, field), path, index, fmt)
    where = f"record {index} field 'Context'"
    history = string_list(record["Context"], path, where, _STRINGS)
    return {
        "turn": turn_number(record, "Turn_no", path, index),
        "history": history,
        "query": text_field(record, "Question", path, index),
        ROLE_COLUMN: alternating_roles(history),
    }


def _qrecc_row(record: Record, path: Path, index: int, target: str) -> Record:
    """Prefix the id with the source: QReCC numbers conversations per source (quac, nq, trec)."""
    field = "Answer" if target == "answer" else "Rewrite"
    common = _common_fields(record, path, index, "qrecc", field)
    source = optional_id(record.get("Conversation_source"), path, f"record {index} source")
    number = id_field(record, "Conversation_no", path, index)
    url = optional_id(record.get("Answer_URL"), path, f"record {index} field 'Answer_URL'")
    return {
        "conversation_id": f"{source}_{number}" if source else number,
        **common,
        "target": text_field(record, field, path, index),
        "target_id": url if target == "answer" and url else None,
        REWRITE_COLUMN: None if target == "rewrite" else _optional_rewrite(record, path, index),
    }


def _optional_rewrite(record: Record, path: Path, index: int) -> str | None:
    """The human rewrite where the record has one: the oracle's question, not a target."""
    if record.get("Rewrite") is None:
        return None
    return text_field(record, "Rewrite", path, index)


def _gold_passage(record: Record, path: Path, index: int) -> tuple[str, str | None]:
    """Embed title and text together, as a retriever indexing the passage would."""
    passage = record["Gold_passage"]
    if not isinstance(passage, dict) or not isinstance(passage.get("text"), str):
        raise DataValidationError(
            f"{path}: record {index} field 'Gold_passage' is {shown(passage, 80)}; expected an "
            "object with a string 'text' (and optional 'id', 'title')"
        )
    title = passage.get("title")
    if title is not None and not isinstance(title, str):  # a list would be stringified in
        raise DataValidationError(
            f"{path}: record {index} field 'Gold_passage.title' is {shown(title, 80)}; "
            "expected a string or null"
        )
    title = check_unicode(title or "", path, f"record {index} field 'Gold_passage.title'")
    body = check_unicode(passage["text"], path, f"record {index} field 'Gold_passage.text'")
    text = f"{title}: {body}" if title else body
    where = f"record {index} field 'Gold_passage.id'"
    return text, optional_id(passage.get("id"), path, where)


def _topiocqa_row(record: Record, path: Path, index: int, target: str) -> Record:
    field = "Gold_passage" if target == "passage" else "Answer"
    common = _common_fields(record, path, index, "topiocqa", field)
    if target == "passage":
        text, target_id = _gold_passage(record, path, index)
    else:
        text, target_id = text_field(record, "Answer", path, index), None
    return {
        "conversation_id": id_field(record, "Conversation_no", path, index),
        **common,
        "target": text,
        "target_id": target_id,
    }


def _canard_rows(path: Path, target: str) -> list[Record]:
    """CANARD ships as a TSV pair (``X.question.tsv`` + ``X.rewrite.tsv``) or as JSON records."""
    if data_suffix(path) == ".tsv":
        if target != "rewrite":
            raise DataValidationError(
                f"{path}: the CANARD TSV pair has no answers; use target 'rewrite', or the "
                "JSON release (dev.json) for target 'answer'"
            )
        return _canard_tsv_rows(path)
    records = load_records(path)
    for index, record in enumerate(records):
        require(record, _CANARD_FIELDS, path, index, "canard")
    return _canard_json_rows(records, path, target)


def canard_pair(path: Path) -> tuple[Path, Path]:
    """(question file, rewrite file) of the TSV pair that ``path`` is one half of."""
    name = path.name
    for half, other in ((".question.", ".rewrite."), (".rewrite.", ".question.")):
        if half in name:
            partner = path.with_name(name.replace(half, other, 1))
            check_file(partner)
            return (path, partner) if half == ".question." else (partner, path)
    raise DataValidationError(
        f"{path}: a CANARD TSV file must be named NAME.question.tsv or NAME.rewrite.tsv, "
        "with the other half of the pair beside it"
    )


def _tsv_lines(path: Path) -> list[tuple[str, int, str]]:
    """(dialog id, 0-based turn, text) per line of ``<dialog>_q#<k> TAB text``."""
    out: list[tuple[str, int, str]] = []
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        key, tab, text = line.partition("\t")
        match = _CANARD_ID.match(key)
        if not tab or match is None:
            raise DataValidationError(
                f"{path}: line {number} is {shown(line, 80)}; expected '<dialog id>_q#<k><TAB>text'"
            )
        out.append((match["dialog"], int(match["turn"]), text))
    return out


def _canard_tsv_rows(path: Path) -> list[Record]:
    """History is the dialog's earlier questions: the TSV release has no answers or titles."""
    question_path, rewrite_path = canard_pair(path)
    questions, rewrites = _tsv_lines(question_path), _tsv_lines(rewrite_path)
    if len(questions) != len(rewrites):
        raise DataValidationError(
            f"{question_path} has {len(questions)} lines but {rewrite_path} has "
            f"{len(rewrites)}; expected one rewrite per question, line for line"
        )
    dialogs: dict[str, list[tuple[int, str, str]]] = {}
    for number, (q, r) in enumerate(zip(questions, rewrites, strict=True), start=1):
        if q[:2] != r[:2]:
            raise DataValidationError(
                f"line {number}: {question_path.name} has {q[0]}_q#{q[1]} but "
                f"{rewrite_path.name} has {r[0]}_q#{r[1]}; expected the same ids in the same order"
            )
        dialogs.setdefault(q[0], []).append((q[1], q[2], r[2]))
    rows: list[Record] = []
    for dialog, turns in dialogs.items():
        turns.sort()
        asked = [question for _, question, _ in turns]
        rows.extend(
            _row(dialog, turn, asked[:i], question, rewrite, roles=["user"] * i)
            for i, (turn, question, rewrite) in enumerate(turns)
        )
    return rows


def _canard_json_rows(records: list[Record], path: Path, target: str) -> list[Record]:
    """Each record's ``History`` is title, section, then earlier questions and answers."""
    parsed = [
        (
            text_field(record, "QuAC_dialog_id", path, i),
            turn_number(record, "Question_no", path, i),
            string_list(record["History"], path, f"record {i} field 'History'", _STRINGS),
            text_field(record, "Question", path, i),
            text_field(record, "Rewrite", path, i),
        )
        for i, record in enumerate(records)
    ]
    answers = _canard_answers(parsed) if target == "answer" else {}
    rows: list[Record] = []
    for dialog, turn, history, question, rewrite in parsed:
        text = rewrite if target == "rewrite" else answers.get((dialog, turn))
        if text is not None:
            row = _row(dialog, turn, history, question, text, roles=_canard_roles(history))
            rows.append(row | {REWRITE_COLUMN: rewrite if target == "answer" else None})
    if target == "answer" and len(rows) < len(parsed):
        logger.info(
            "%s: %d of %d turns have no recorded answer (a dialog's last turn) and are dropped",
            path,
            len(parsed) - len(rows),
            len(parsed),
        )
    return rows


def _canard_answers(
    parsed: list[tuple[str, int, list[str], str, str]],
) -> dict[tuple[str, int], str]:
    """A turn's answer is recorded only in the next turn's history, right after its question."""
    by_key = {(dialog, turn): (history, question) for dialog, turn, history, question, _ in parsed}
    answers: dict[tuple[str, int], str] = {}
    for (dialog, turn), (history, question) in by_key.items():
        following = by_key.get((dialog, turn + 1))
        if following is None:
            continue
        later = following[0]
        cut = len(history)
        if len(later) >= cut + 2 and later[:cut] == history and later[cut] == question:
            answers[(dialog, turn)] = later[cut + 1]
    return answers


def _canard_roles(history: list[str]) -> list[str]:
    """Title and section (the system's context) first, then questions and answers."""
    head = min(2, len(history))
    return ["system"] * head + alternating_roles(history[head:])


def _row(
    dialog: str, turn: int, history: list[str], query: str, target: str, *, roles: list[str]
) -> Record:
    return {
        "conversation_id": dialog,
        "turn": turn,
        "history": list(history),
        "query": query,
        "target": target,
        "target_id": None,
        ROLE_COLUMN: roles,
    }
