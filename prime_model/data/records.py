"""Low-level reading for every format: bytes (gzipped or not), text, JSON records and fields.

Each helper turns a decoding or type problem into a :class:`DataValidationError` naming the file,
the place and what was expected, so readers never leak a ``gzip``, ``json`` or pandas traceback.
"""

from __future__ import annotations

import gzip
import json
import reprlib
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from prime_model.errors import DataValidationError

Record = dict[str, Any]
GZIP_SUFFIX: Final = ".gz"


def data_suffix(path: Path) -> str:
    """The suffix that names the format: ``.jsonl`` for both ``a.jsonl`` and ``a.jsonl.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == GZIP_SUFFIX:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def check_file(path: Path) -> None:
    """Fail with the path in the message rather than with a bare OSError deep in pandas."""
    if not path.exists():
        raise DataValidationError(f"{path}: file not found; expected an existing data file")
    if path.is_dir():
        raise DataValidationError(f"{path}: is a directory, not a file; expected a data file")
    if not path.is_file():
        raise DataValidationError(f"{path}: is not a regular file; expected a data file")


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when its name ends in ``.gz``."""
    raw = path.read_bytes()
    if path.suffix.lower() != GZIP_SUFFIX:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataValidationError(
            f"{path}: not a readable gzip file ({exc}); expected gzip-compressed data"
        ) from None


def read_text(path: Path) -> str:
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: not valid UTF-8 text ({exc})") from None


def parse_json_lines(path: Path, text: str) -> list[Record]:
    """Parse one JSON object per non-blank line, naming the line that is broken."""
    return [
        as_record(_loads(line, path, number, "one JSON object per line"), path, f"line {number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def load_records(path: Path) -> list[Record]:
    """Public datasets ship as one JSON array; JSON lines are accepted too."""
    text = read_text(path)
    if not text.lstrip().startswith("["):
        return parse_json_lines(path, text)
    data = _loads(text, path, None, "a JSON array of objects")
    return [as_record(value, path, f"record {index}") for index, value in enumerate(data)]


def _loads(text: str, path: Path, line: int | None, expected: str) -> Any:
    """``json.loads`` whose error names the file, the line and what was expected."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = exc.lineno if line is None else line
        raise DataValidationError(
            f"{path}: invalid JSON on line {where} ({exc.msg}); expected {expected}"
        ) from None


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
        raise DataValidationError(f"{path}: {where} is {reprlib.repr(value)}; expected {expected}")
    return value


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
            f"{path}: record {index} field {field!r} is {reprlib.repr(value)}; expected a string"
        )
    return value


def turn_number(record: Record, field: str, path: Path, index: int) -> int:
    """A dataset's 1-based turn number as the schema's 0-based ``turn``."""
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataValidationError(
            f"{path}: record {index} field {field!r} is {reprlib.repr(value)}; expected an int >= 1"
        )
    return value - 1
