"""Low-level reading for every format: bytes (gzipped or not), text, JSON records and fields.

Each helper turns a decoding or type problem into a :class:`DataValidationError` naming the file,
the place and what was expected, so readers never leak a ``gzip``, ``json`` or pandas traceback.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from prime_model.data.decompress import gunzip_bounded
from prime_model.errors import DataValidationError
from prime_model.files import check_regular_file
from prime_model.parsing import parse_json
from prime_model.text import shown
from prime_model.unicode_checks import has_lone_surrogate

Record = dict[str, Any]
GZIP_SUFFIX: Final = ".gz"
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


# what QuAC (CANNOTANSWER) and TopiOCQA (UNANSWERABLE) write instead of an answer: not content
NO_ANSWER: Final = frozenset({"UNANSWERABLE", "CANNOTANSWER"})


def data_suffix(path: Path) -> str:
    """The suffix that names the format: ``.jsonl`` for both ``a.jsonl`` and ``a.jsonl.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == GZIP_SUFFIX:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def check_file(path: Path) -> None:
    """Fail with the path and what it really is (a FIFO, a symlink loop, ...), without opening it.

    ``stat``, never ``open``: opening a named pipe blocks until a writer comes, possibly forever.
    """
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ENOENT and not path.is_symlink():
            raise DataValidationError(
                f"{path}: file not found; expected an existing data file"
            ) from None
    except ValueError:
        pass  # an embedded NUL: check_regular_file names it
    check_regular_file(path, "data file", DataValidationError)


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed (streamed, bounded) when its name ends in ``.gz``."""
    if path.suffix.lower() == GZIP_SUFFIX:
        return gunzip_bounded(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_csv_bytes(path: Path) -> bytes:
    """A CSV file's bytes, refused if one holds a NUL: pandas' parser ends a cell at a NUL, so
    the rest of that text would silently vanish."""
    data = read_bytes(path)
    at = data.find(b"\0")
    if at >= 0:
        line = data.count(b"\n", 0, at) + 1
        raise DataValidationError(
            f"{path}: line {line} holds a NUL byte (\\0), which CSV readers cut text at; "
            "expected plain text cells (write NULs, if they are data, in JSON lines or Parquet)"
        )
    return data


def read_text(path: Path) -> str:
    """UTF-8 text; a leading byte-order mark (Windows editors write one) is dropped."""
    try:
        return read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: not valid UTF-8 text ({exc})") from None


def split_lines(text: str) -> list[str]:
    """Lines as JSON lines and TSV mean them: ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac
    files) end a line; nothing else does.

    ``str.splitlines`` also splits on U+2028, U+2029, U+0085, ``\\f``, ..., which are legal
    inside a JSON string and so would cut a valid record in two. A raw CR cannot be inside a
    JSON string (it must be escaped), so splitting on it never cuts a record.
    """
    return _LINE_BREAK.split(text)


def parse_json_lines(path: Path, text: str) -> list[Record]:
    """Parse one JSON object per non-blank line, naming the line that is broken.

    A pretty-printed JSON document (an array of records, or one object, over several lines) is
    recognised as such instead of being reported as a broken first line: an array of objects is
    read, anything else is refused with what it is.
    """
    lines = split_lines(text)
    first = next((line.strip() for line in lines if line.strip()), "")
    if first in ("{", "[") or (_spans_lines(first) and _is_json(text)):
        return _document_records(path, text)
    return [
        as_record(_loads(line, path, number, "one JSON object per line"), path, f"line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


def _spans_lines(first_line: str) -> bool:
    """Whether the first non-blank line opens a JSON value that it does not close."""
    head = first_line.strip()
    if not head.startswith(("{", "[")):
        return False
    try:
        parse_json(head, "first line", DataValidationError)
    except DataValidationError:
        return True
    return False


def _is_json(text: str) -> bool:
    try:
        parse_json(text, "document", DataValidationError)
    except DataValidationError:
        return False
    return True


def _document_records(path: Path, text: str) -> list[Record]:
    expected = "a JSON array of objects, or one JSON object per line (JSON lines)"
    data = parse_json(text, str(path), DataValidationError, expected=expected)
    if isinstance(data, dict):
        raise DataValidationError(
            f"{path}: is a single JSON object spanning several lines (keys "
            f"{shown(sorted(data)[:10])}), not JSON lines; expected {expected}"
        )
    if not isinstance(data, list):
        raise DataValidationError(f"{path}: is a JSON {type(data).__name__}; expected {expected}")
    return [as_record(value, path, f"record {index}") for index, value in enumerate(data)]


def load_records(path: Path) -> list[Record]:
    """Public datasets ship as one JSON array; JSON lines are accepted too."""
    text = read_text(path)
    if not text.lstrip().startswith("["):
        return parse_json_lines(path, text)
    return _document_records(path, text)


def _loads(text: str, path: Path, line: int, expected: str) -> Any:
    """Strict ``json.loads`` of one line, whose error names the file, the line and the need."""
    return parse_json(text, str(path), DataValidationError, expected=expected, line=line)


def as_record(value: object, path: Path, where: str) -> Record:
    if not isinstance(value, dict):
        raise DataValidationError(
            f"{path}: {where} is a JSON {type(value).__name__}; expected a JSON object"
        )
    return value


def string_list(value: object, path: Path, where: str, expected: str) -> list[str]:
    """Return ``value`` as a list of strings; Parquet hands lists back as numpy arrays."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataValidationError(f"{path}: {where} is {shown(value)}; expected {expected}")
    for index, item in enumerate(value):
        check_unicode(item, path, f"{where}[{index}]")
    return value


def check_unicode(text: str, path: Path, where: str) -> str:
    """Refuse a lone surrogate: no UTF-8 form, so the tokenizer, Parquet or a hash fails later."""
    if has_lone_surrogate(text):
        raise DataValidationError(
            f"{path}: {where} holds a lone surrogate (such as \\ud800), which has no UTF-8 "
            "form; expected valid Unicode text"
        )
    return text


def require(record: Record, fields: Sequence[str], path: Path, index: int, fmt: str) -> None:
    missing = [field for field in fields if field not in record]
    if missing:
        raise DataValidationError(
            f"{path}: record {index} is missing field(s) {missing}; {fmt} records need "
            f"{list(fields)}, got {sorted(record)}"
        )


def text_field(record: Record, field: str, path: Path, index: int) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise DataValidationError(
            f"{path}: record {index} field {field!r} is {shown(value)}; expected a string"
        )
    return check_unicode(value, path, f"record {index} field {field!r}")


def id_field(record: Record, field: str, path: Path, index: int) -> str:
    """An id given as a string or an integer; a list or object would be silently stringified."""
    value = optional_id(record[field], path, f"record {index} field {field!r}")
    if value is None:
        raise DataValidationError(
            f"{path}: record {index} field {field!r} is null; expected a string or integer id"
        )
    return value


def optional_id(value: object, path: Path, where: str) -> str | None:
    """``str`` of a string or integer id, None for null; anything else is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        return check_unicode(value, path, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise DataValidationError(
        f"{path}: {where} is the {type(value).__name__} {shown(value)}; expected a string or "
        "integer id"
    )


def turn_number(record: Record, field: str, path: Path, index: int) -> int:
    """A dataset's 1-based turn number as the schema's 0-based ``turn``."""
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataValidationError(
            f"{path}: record {index} field {field!r} is {shown(value)}; expected an int >= 1"
        )
    return value - 1
