"""Readers: load turn tables from files and adapt the public QReCC and TopiOCQA datasets.

Every reader ends in :func:`~prime_model.data.schema.conform_frame`, so whatever the source, the
caller gets the same columns and dtypes; every failure is a :class:`DataValidationError` that names
the file, the problem and what was expected, instead of a pandas or JSON traceback.
"""

from __future__ import annotations

import json
import logging
import reprlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from prime_model.data.schema import COLUMNS, conform_frame
from prime_model.errors import DataValidationError

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS: Final = ("jsonl", "parquet", "csv", "qrecc", "topiocqa")
TARGETS: Final = ("passage", "answer", "rewrite")
# Only the turn-schema formats are inferred: a public dataset's .json file must be named explicitly.
_SUFFIX_FORMATS: Final = {".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv"}
_ADAPTER_TARGETS: Final = {"qrecc": ("answer", "rewrite"), "topiocqa": ("passage", "answer")}
_SHARED_FIELDS: Final = ("Conversation_no", "Turn_no", "Context", "Question")
_WHY_NOT: Final = {"qrecc": "it has no gold passage text", "topiocqa": "it has no query rewrites"}

Record = dict[str, Any]


def read_turns(
    path: str | Path,
    format: str | None = None,
    *,
    target: str = "passage",
    require_target: bool = True,
) -> pd.DataFrame:
    """Read a turn table from ``path``; ``target`` picks what to retrieve for qrecc/topiocqa.

    ``require_target=False`` accepts turn-schema files without a ``target`` column (batch
    prediction); their ``target`` is None.

    ``format`` is one of :data:`SUPPORTED_FORMATS`; None infers it from the suffix (.jsonl,
    .parquet, .csv). For the turn-schema formats ``target`` is ignored: the file already holds a
    ``target`` column.
    """
    path = Path(path)
    fmt = _resolve_format(path, format)
    if target not in TARGETS:
        raise DataValidationError(f"unknown target {target!r}; expected one of {TARGETS}")
    if fmt in _ADAPTER_TARGETS and target not in _ADAPTER_TARGETS[fmt]:
        raise DataValidationError(
            f"{path}: format {fmt!r} cannot provide target {target!r} ({_WHY_NOT[fmt]}); "
            f"supported targets for {fmt}: {_ADAPTER_TARGETS[fmt]}"
        )
    _check_file(path)
    reader = _SCHEMA_READERS.get(fmt)
    if reader is None:
        frame = _read_public(path, fmt, target)
    else:
        frame = conform_frame(reader(path), source=str(path), require_target=require_target)
    logger.info("read %d turns from %s (format %s)", len(frame), path, fmt)
    return frame


def _resolve_format(path: Path, format: str | None) -> str:
    """Return the format to use, so a typo fails before any file is opened."""
    if format is None:
        inferred = _SUFFIX_FORMATS.get(path.suffix.lower())
        if inferred is None:
            raise DataValidationError(
                f"{path}: cannot infer the format from suffix {path.suffix!r}; expected one of "
                f"{sorted(_SUFFIX_FORMATS)} or an explicit format in {SUPPORTED_FORMATS}"
            )
        return inferred
    if format not in SUPPORTED_FORMATS:
        raise DataValidationError(
            f"unknown format {format!r}; supported formats: {SUPPORTED_FORMATS}"
        )
    return format


def _check_file(path: Path) -> None:
    """Fail with the path in the message rather than with a bare OSError deep in pandas."""
    if not path.exists():
        raise DataValidationError(f"{path}: file not found; expected an existing data file")
    if not path.is_file():
        raise DataValidationError(f"{path}: is a directory, not a file; expected a data file")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: not valid UTF-8 text ({exc})") from None


def _parse_json_lines(path: Path, text: str) -> list[Record]:
    """Parse one JSON object per non-blank line, naming the line that is broken."""
    records: list[Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"{path}: invalid JSON on line {number} ({exc.msg}); expected one JSON object "
                "per line"
            ) from None
        records.append(_as_record(value, path, f"line {number}"))
    return records


def _as_record(value: object, path: Path, where: str) -> Record:
    if not isinstance(value, dict):
        raise DataValidationError(
            f"{path}: {where} is a JSON {type(value).__name__}; expected a JSON object"
        )
    return value


def _string_list(value: object, path: Path, where: str, expected: str) -> list[str]:
    """Return ``value`` as a list of strings; Parquet hands lists back as numpy arrays."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataValidationError(f"{path}: {where} is {reprlib.repr(value)}; expected {expected}")
    return value


def _decode_history(value: object, path: Path, where: str) -> list[str]:
    """CSV cells are flat text, so a history is stored as a JSON list string."""
    expected = 'a JSON list of strings such as \'["hi", "hello"]\''
    try:
        decoded = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        raise DataValidationError(
            f"{path}: {where} is {reprlib.repr(value)}, not valid JSON; expected {expected}"
        ) from None
    return _string_list(decoded, path, where, expected)


def _decode_histories(frame: pd.DataFrame, path: Path, *, json_history: bool) -> pd.DataFrame:
    """Check every history cell; missing columns are left to ``conform_frame``."""
    if "history" in frame.columns:
        frame = frame.copy()
        cells = [
            _decode_history(value, path, f"row {row} column 'history'")
            if json_history
            else _string_list(value, path, f"row {row} column 'history'", "a list of strings")
            for row, value in enumerate(frame["history"])
        ]
        frame["history"] = pd.Series(cells, index=frame.index, dtype=object)
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = _parse_json_lines(path, _read_text(path))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(COLUMNS))
    return _decode_histories(frame, path, json_history=False)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError(
            f"{path}: not a readable Parquet file ({exc}); expected a Parquet turn table"
        ) from None
    return _decode_histories(frame, path, json_history=False)


def _read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as text, keeping empty strings; only an empty target_id becomes None.

    ``conform_frame`` then turns the ``turn`` column into integers.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values={"target_id": [""]})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            f"{path}: not a readable CSV file ({exc}); expected a header row and one turn per row"
        ) from None
    return _decode_histories(frame, path, json_history=True)


def _load_records(path: Path) -> list[Record]:
    """Public datasets ship as one JSON array; JSON lines are accepted too."""
    text = _read_text(path)
    if not text.lstrip().startswith("["):
        return _parse_json_lines(path, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"{path}: invalid JSON on line {exc.lineno} ({exc.msg}); expected a JSON array of "
            "objects"
        ) from None
    return [_as_record(value, path, f"record {index}") for index, value in enumerate(data)]


def _require(record: Record, fields: Sequence[str], path: Path, index: int, fmt: str) -> None:
    missing = [field for field in fields if field not in record]
    if missing:
        raise DataValidationError(
            f"{path}: record {index} is missing field(s) {missing}; {fmt} records need "
            f"{list(fields)}, got {sorted(record)}"
        )


def _text(record: Record, field: str, path: Path, index: int) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise DataValidationError(
            f"{path}: record {index} field {field!r} is {reprlib.repr(value)}; expected a string"
        )
    return value


def _common_fields(record: Record, path: Path, index: int, fmt: str, field: str) -> Record:
    """Check the fields both datasets share plus ``field``; they count turns from 1, we from 0."""
    _require(record, (*_SHARED_FIELDS, field), path, index, fmt)
    turn_no = record["Turn_no"]
    if isinstance(turn_no, bool) or not isinstance(turn_no, int) or turn_no < 1:
        raise DataValidationError(
            f"{path}: record {index} field 'Turn_no' is {reprlib.repr(turn_no)}; "
            "expected an int >= 1"
        )
    where = f"record {index} field 'Context'"
    return {
        "turn": turn_no - 1,
        "history": _string_list(record["Context"], path, where, "a list of strings"),
        "query": _text(record, "Question", path, index),
    }


def _qrecc_row(record: Record, path: Path, index: int, target: str) -> Record:
    """Prefix the id with the source: QReCC numbers conversations per source (quac, nq, trec)."""
    field = "Answer" if target == "answer" else "Rewrite"
    common = _common_fields(record, path, index, "qrecc", field)
    source = record.get("Conversation_source") or ""
    number = record["Conversation_no"]
    url = record.get("Answer_URL")
    return {
        "conversation_id": f"{source}_{number}" if source else str(number),
        **common,
        "target": _text(record, field, path, index),
        "target_id": str(url) if target == "answer" and url else None,
    }


def _gold_passage(record: Record, path: Path, index: int) -> tuple[str, str | None]:
    """Embed title and text together, as a retriever indexing the passage would."""
    passage = record["Gold_passage"]
    if not isinstance(passage, dict) or not isinstance(passage.get("text"), str):
        raise DataValidationError(
            f"{path}: record {index} field 'Gold_passage' is {reprlib.repr(passage)}; expected an "
            "object with a string 'text' (and optional 'id', 'title')"
        )
    title = passage.get("title") or ""
    text = f"{title}: {passage['text']}" if title else passage["text"]
    passage_id = passage.get("id")
    return text, None if passage_id is None else str(passage_id)


def _topiocqa_row(record: Record, path: Path, index: int, target: str) -> Record:
    field = "Gold_passage" if target == "passage" else "Answer"
    common = _common_fields(record, path, index, "topiocqa", field)
    if target == "passage":
        text, target_id = _gold_passage(record, path, index)
    else:
        text, target_id = _text(record, "Answer", path, index), None
    return {
        "conversation_id": str(record["Conversation_no"]),
        **common,
        "target": text,
        "target_id": target_id,
    }


def _read_public(path: Path, fmt: str, target: str) -> pd.DataFrame:
    to_row = _qrecc_row if fmt == "qrecc" else _topiocqa_row
    rows = [to_row(record, path, i, target) for i, record in enumerate(_load_records(path))]
    return conform_frame(pd.DataFrame(rows, columns=list(COLUMNS)), source=str(path))


_SCHEMA_READERS: Final = {"jsonl": _read_jsonl, "parquet": _read_parquet, "csv": _read_csv}
