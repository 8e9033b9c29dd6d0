"""Readers: load turn tables from files (gzipped or not) and the public QReCC, TopiOCQA, CANARD.

Every reader ends in :func:`~prime_model.data.schema.conform_frame`, so whatever the source, the
caller gets the same columns and dtypes; every failure is a :class:`DataValidationError` that names
the file, the problem and what was expected, instead of a pandas or JSON traceback.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import IO, Final

import pandas as pd

from prime_model.data.public import PUBLIC_TARGETS, read_public
from prime_model.data.records import (
    check_file,
    data_suffix,
    parse_json_lines,
    read_bytes,
    read_csv_bytes,
    read_text,
    string_list,
)
from prime_model.data.schema import COLUMNS, conform_frame
from prime_model.errors import DataValidationError
from prime_model.parsing import parse_json
from prime_model.text import shown

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS: Final = ("jsonl", "parquet", "csv", *PUBLIC_TARGETS)
TARGETS: Final = ("passage", "answer", "rewrite")
# Only the turn-schema formats are inferred (also under .gz): a public dataset is named explicitly.
_SUFFIX_FORMATS: Final = {".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv"}


def read_turns(
    path: str | Path,
    format: str | None = None,
    *,
    target: str = "passage",
    require_target: bool = True,
) -> pd.DataFrame:
    """Read a turn table from ``path``; ``target`` picks what to retrieve for a public dataset.

    Any file may be gzipped (``turns.jsonl.gz``, ``topiocqa_train.json.gz``): a ``.gz`` name is
    decompressed and its inner suffix names the format.

    ``require_target=False`` accepts turn-schema files without a ``target`` column (batch
    prediction); their ``target`` is None.

    ``format`` is one of :data:`SUPPORTED_FORMATS`; None infers it from the suffix (.jsonl,
    .parquet, .csv). Public datasets count turns from 1; they are converted to the schema's
    0-based ``turn``. For the turn-schema formats ``target`` is ignored: the file already holds a
    ``target`` column.
    """
    path = Path(path)
    fmt = _resolve_format(path, format)
    if target not in TARGETS:
        raise DataValidationError(f"unknown target {target!r}; expected one of {TARGETS}")
    check_file(path)
    reader = _SCHEMA_READERS.get(fmt)
    if reader is None:
        frame = read_public(path, fmt, target)
    else:
        frame = conform_frame(reader(path), source=str(path), require_target=require_target)
    logger.info("read %d turns from %s (format %s)", len(frame), path, fmt)
    return frame


def _resolve_format(path: Path, format: str | None) -> str:
    """Return the format to use, so a typo fails before any file is opened."""
    if format is None:
        suffix = data_suffix(path)
        inferred = _SUFFIX_FORMATS.get(suffix)
        if inferred is None:
            raise DataValidationError(
                f"{path}: cannot infer the format from suffix {suffix!r}; expected one of "
                f"{sorted(_SUFFIX_FORMATS)} (optionally + .gz) or an explicit format in "
                f"{SUPPORTED_FORMATS}"
            )
        return inferred
    if format not in SUPPORTED_FORMATS:
        raise DataValidationError(
            f"unknown format {format!r}; supported formats: {SUPPORTED_FORMATS}"
        )
    return format


def _decode_history(value: object, path: Path, where: str) -> list[str]:
    """CSV cells are flat text, so a history is stored as a JSON list string."""
    expected = 'a JSON list of strings such as \'["hi", "hello"]\''
    try:
        decoded = (
            parse_json(value, "cell", DataValidationError, expected=expected)
            if isinstance(value, str)
            else value
        )
    except DataValidationError as exc:
        problem = str(exc).removeprefix("cell: ").split("; expected")[0]
        raise DataValidationError(
            f"{path}: {where} is {shown(value)}, not valid JSON; expected {expected} ({problem})"
        ) from None
    return string_list(decoded, path, where, expected)


def _decode_histories(frame: pd.DataFrame, path: Path, *, json_history: bool) -> pd.DataFrame:
    """Check every history cell; missing columns are left to ``conform_frame``."""
    if "history" in frame.columns:
        frame = frame.copy()
        cells = [
            _decode_history(value, path, f"row {row} column 'history'")
            if json_history
            else string_list(value, path, f"row {row} column 'history'", "a list of strings")
            for row, value in enumerate(frame["history"])
        ]
        frame["history"] = pd.Series(cells, index=frame.index, dtype=object)
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = parse_json_lines(path, read_text(path))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(COLUMNS))
    return _decode_histories(frame, path, json_history=False)


def _read_parquet(path: Path) -> pd.DataFrame:
    frame = parquet_frame(
        io.BytesIO(read_bytes(path)), path, "Parquet file", "a Parquet turn table"
    )
    return _decode_histories(frame, path, json_history=False)


def parquet_frame(source: Path | IO[bytes], path: Path, what: str, expected: str) -> pd.DataFrame:
    """``pd.read_parquet(source)``, its failures a :class:`DataValidationError` naming ``path``."""
    try:
        return pd.read_parquet(source)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError(
            f"{path}: not a readable {what} ({shown(str(exc))}); expected {expected}"
        ) from None


def _read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as text, keeping empty strings; only an empty target_id becomes None.

    ``conform_frame`` then turns the ``turn`` column into integers.
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(read_csv_bytes(path)),
            dtype=str,
            keep_default_na=False,
            na_values={"target_id": [""]},
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            f"{path}: not a readable CSV file ({exc}); expected a header row and one turn per row"
        ) from None
    return _decode_histories(frame, path, json_history=True)


_SCHEMA_READERS: Final = {"jsonl": _read_jsonl, "parquet": _read_parquet, "csv": _read_csv}
