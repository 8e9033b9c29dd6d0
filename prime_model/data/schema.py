"""The turn schema: one row per conversational turn, defined once for every reader and check.

A turn table is a pandas DataFrame with exactly :data:`COLUMNS`, in that order:

================  ==============  ======================================================
column            dtype           meaning
================  ==============  ======================================================
conversation_id   object (str)    identifies the conversation
turn              int64           0-based position of the turn in its conversation (readers
                                  of 1-based datasets convert); history, not turn, says
                                  whether a turn has context
history           object (list)   previous turns' texts, oldest first (list[str])
query             object (str)    the user's current, possibly ambiguous, question
target            object (str)    the content to retrieve: passage, answer or rewrite
target_id         object (str)    optional id of the target in a corpus; None if unknown
================  ==============  ======================================================

A reader that knows who said each history entry adds the optional column ``history_roles``
(list[str] of :data:`ROLES`, one per history entry); tables without it mean "unknown", which the
predictor reads as it always did. A table read from several files (:mod:`prime_model.data.sources`)
adds the optional column ``source`` (the file's name), which its split groups by. Readers of
datasets with human rewrites add ``rewrite`` (the oracle's question, never a model input), and the
TopiOCQA reader adds ``extra_target``: a passage-like text a training turn may also be trained on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from prime_model.errors import ConfigError, DataValidationError
from prime_model.text import shown

logger = logging.getLogger(__name__)

COLUMNS: Final = ("conversation_id", "turn", "history", "query", "target", "target_id")
REQUIRED_COLUMNS: Final = ("conversation_id", "turn", "history", "query", "target")
INPUT_COLUMNS: Final = ("conversation_id", "turn", "history", "query")  # what prediction reads
ROLE_COLUMN: Final = "history_roles"
SOURCE_COLUMN: Final = "source"
REWRITE_COLUMN: Final = "rewrite"  # the question made self-contained by a human: the oracle
# a second, passage-like text a training turn may also be trained on (see sources.FileSource)
EXTRA_TARGET_COLUMN: Final = "extra_target"
EXTRA_COLUMNS: Final = (ROLE_COLUMN, SOURCE_COLUMN, REWRITE_COLUMN, EXTRA_TARGET_COLUMN)
ROLES: Final = ("user", "system")  # index + 1 is the role id; 0 is unknown (and padding)
_INT64_LIMIT: Final = 2.0**63  # compared as float: uint64, bool and object columns alike
DTYPES: Final = {
    "conversation_id": "object",
    "turn": "int64",
    "history": "object",
    "query": "object",
    "target": "object",
    "target_id": "object",
}


class Turn(BaseModel):
    """One row of the turn table, for code that builds or inspects turns one at a time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conversation_id: str = Field(min_length=1)
    turn: int = Field(ge=0)
    history: list[str] = Field(default_factory=list, description="previous turns, oldest first")
    query: str
    target: str
    target_id: str | None = None


def turns_to_frame(turns: Iterable[Turn]) -> pd.DataFrame:
    """Build a turn table from :class:`Turn` rows (the columns and dtypes of :data:`COLUMNS`)."""
    frame = pd.DataFrame([t.model_dump() for t in turns], columns=list(COLUMNS))
    return conform_frame(frame)


def required_columns(*, require_target: bool = True) -> tuple[str, ...]:
    """Training and evaluation need targets; batch prediction reads only :data:`INPUT_COLUMNS`."""
    return REQUIRED_COLUMNS if require_target else INPUT_COLUMNS


def conform_frame(
    frame: pd.DataFrame, source: str = "turn table", *, require_target: bool = True
) -> pd.DataFrame:
    """Reorder to :data:`COLUMNS`, add a missing ``target_id`` (and optional target) as None.

    Raises :class:`DataValidationError` naming the missing columns; deeper checks (nulls, blanks,
    duplicates) are the validation suite's job, so this never drops or rewrites rows.
    """
    required = required_columns(require_target=require_target)
    optional = [c for c in COLUMNS if c not in required]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing required column(s) {missing}; "
            f"expected {list(required)} (+ optional {optional}), "
            f"got {list(frame.columns)}"
        )
    keep = [*COLUMNS, *(c for c in EXTRA_COLUMNS if c in frame.columns)]
    out = _plain_text_columns(frame.reindex(columns=keep))
    if "target" not in frame.columns:  # prediction inputs: no target, and None says so
        out["target"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    # Parquet hands list cells back as numpy arrays: the schema's history is a list
    out["history"] = pd.Series(
        [h.tolist() if isinstance(h, np.ndarray) else h for h in out["history"]],
        index=out.index,
        dtype=object,
    )
    for column in ("conversation_id", "target_id", REWRITE_COLUMN, EXTRA_TARGET_COLUMN):
        if column not in out.columns:
            continue
        out[column] = pd.Series(
            [_optional_str(v, source, column, row) for row, v in enumerate(out[column])],
            index=out.index,
            dtype=object,
        )
    turn = pd.to_numeric(out["turn"], errors="coerce")
    # True would become turn 1 and 2**64 would wrap around to a negative turn: refuse both
    flag = out["turn"].map(lambda v: isinstance(v, bool | np.bool_)).astype(bool)
    wrong = turn.isna() | (turn != turn.round()) | (turn.astype(float).abs() >= _INT64_LIMIT) | flag
    if wrong.any():
        bad = out.loc[wrong, "turn"].head(3).tolist()
        raise DataValidationError(
            f"{source}: column 'turn' must hold whole numbers (int64) with no nulls or "
            f"booleans, got e.g. {bad}"
        )
    out["turn"] = turn.astype("int64")
    if ROLE_COLUMN in out.columns:
        out[ROLE_COLUMN] = pd.Series(
            [
                _roles(r, h, source, row)
                for row, (r, h) in enumerate(zip(out[ROLE_COLUMN], out["history"], strict=True))
            ],
            index=out.index,
            dtype=object,
        )
    return out.reset_index(drop=True)


def _roles(value: object, history: object, source: str, row: int) -> list[str] | None:
    """A row's roles: None (unknown) or one of :data:`ROLES` per history entry."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not all(v in ROLES for v in value):
        raise DataValidationError(
            f"{source}: row {row} column {ROLE_COLUMN!r} is {shown(value)}; expected a list of "
            f"{'/'.join(ROLES)}, one per history entry, or null"
        )
    if isinstance(history, list) and len(value) != len(history):
        raise DataValidationError(
            f"{source}: row {row} has {len(history)} history entries but {len(value)} roles; "
            f"expected one role per entry"
        )
    return list(value)


def role_ids(roles: Sequence[str | None] | None, length: int) -> list[int]:
    """Role ids (1 user, 2 system; 0 unknown, per entry or for all) for ``length`` entries."""
    if roles is None:
        return [0] * length
    return [0 if role is None else ROLES.index(role) + 1 for role in roles]


def _plain_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose categorical and ``string``-dtype columns are plain object columns.

    Parquet writers dictionary-encode repetitive strings and pandas reads them back as
    ``category`` (or, with the pyarrow backend, as ``string``): the values are strings all the
    same, so they are kept as the schema's ``object`` strings, missing values as None.
    """
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.CategoricalDtype | pd.StringDtype):
            values = out[column].astype(object)
            out[column] = pd.Series(
                [
                    None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
                    for v in values
                ],
                index=out.index,
                dtype=object,
            )
    return out


def _optional_str(value: object, source: str, column: str, row: int) -> str | None:
    """Ids arrive as str, int, NaN (CSV/Parquet gaps) or None; keep str, or None for a gap.

    Anything else (a list, an object, a bool) is refused: ``str()`` would silently make an id
    such as ``"{'a': 1}"`` out of it.
    """
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # pandas made [3, NaN] into [3.0, NaN]
    raise DataValidationError(
        f"{source}: row {row} column {column!r} is the {type(value).__name__} {shown(value)}; "
        "expected a string or integer"
    )


def without_extra_targets(turns: pd.DataFrame) -> pd.DataFrame:
    """The turns with no ``extra_target`` column: nothing trains or encodes them."""
    return turns.drop(columns=[EXTRA_TARGET_COLUMN], errors="ignore")


def truncate_histories(turns: pd.DataFrame, max_context_length: int) -> pd.DataFrame:
    """A copy whose histories keep their ``max_context_length`` most recent turns.

    The predictor reads at most N_max context turns, and the most recent ones say most about an
    ambiguous query; the caller's frame and lists are left as they were.
    """
    if max_context_length < 1:
        raise ConfigError(f"max_context_length must be >= 1, got {max_context_length}")
    if "history" not in turns.columns:
        raise DataValidationError(f"no 'history' column; got {list(turns.columns)}")
    bad = [i for i, h in enumerate(turns["history"]) if not isinstance(h, list)]
    if bad:
        raise DataValidationError(
            f"'history' must hold lists; rows {bad[:3]} hold "
            f"{[type(turns['history'].iloc[i]).__name__ for i in bad[:3]]}"
        )
    out = turns.copy()
    kept = [h[-max_context_length:] for h in turns["history"]]
    truncated = sum(len(h) > max_context_length for h in turns["history"])
    if truncated:  # validation already reports how many histories are longer
        logger.debug(
            "%d histories truncated to their %d most recent turns", truncated, max_context_length
        )
    out["history"] = pd.Series(kept, index=turns.index, dtype=object)
    if ROLE_COLUMN in turns.columns:
        out[ROLE_COLUMN] = pd.Series(
            [None if r is None else list(r)[-max_context_length:] for r in turns[ROLE_COLUMN]],
            index=turns.index,
            dtype=object,
        )
    return out
