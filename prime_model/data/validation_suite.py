"""The validation suite as data: its bounds (:class:`ValidationConfig`) and its checks.

Each check names a Great Expectations expectation class and its arguments, so that GX is imported
only when :mod:`prime_model.data.validation` runs the suite. GX cannot look inside list cells, so
``history`` is checked through columns derived on a copy of the frame (:func:`derived_frame`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

import pandas as pd
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig
from prime_model.data.schema import COLUMNS, DTYPES, Turn, required_columns
from prime_model.text import BLANK_PATTERN

# Columns whose values must be strings, read off the schema's Turn model (str or str | None).
_TEXT_COLUMNS: Final = tuple(
    name for name, info in Turn.model_fields.items() if info.annotation in (str, str | None)
)
_BLANK: Final = BLANK_PATTERN  # whitespace, zero-width and other invisible characters only


class ValidationConfig(FrozenConfig):
    """Bounds of the validation suite; bad values raise :class:`ConfigError`."""

    min_rows: int = Field(10, ge=1, description="fewest rows a usable table has")
    min_conversations: int = Field(2, ge=1, description="fewest distinct conversation ids")
    min_query_chars: int = Field(1, ge=1)
    max_query_chars: int = Field(2_000, ge=1)
    min_target_chars: int = Field(1, ge=1)
    max_target_chars: int = Field(20_000, ge=1)
    max_history_turn_chars: int = Field(20_000, ge=1, description="longest text in a history")
    max_context_length: int = Field(
        10, ge=1, description="history turns kept at encoding; match PredictorConfig's N_max"
    )
    require_target: bool = Field(
        True, description="False for batch prediction inputs, which have no target to check"
    )
    history_matches_turn: bool = Field(
        False,
        description="expect len(history) == 2 * turn: questions and answers interleaved, as in "
        "the generated sample set; leave off for datasets with other history layouts",
    )

    @model_validator(mode="after")
    def _consistent_bounds(self) -> Self:
        for name in ("query", "target"):
            low, high = getattr(self, f"min_{name}_chars"), getattr(self, f"max_{name}_chars")
            if low > high:
                raise ValueError(f"min_{name}_chars={low} must be <= max_{name}_chars={high}")
        if self.min_conversations > self.min_rows:
            raise ValueError(
                f"min_conversations={self.min_conversations} must be <= min_rows={self.min_rows}: "
                "every conversation has at least one row"
            )
        return self


@dataclass(frozen=True)
class Check:
    """One expectation of the suite, as data: GX is imported only when the suite runs."""

    name: str
    expectation: str  # class name in great_expectations.expectations
    kwargs: Mapping[str, Any]
    shown: str | None = None  # column illustrating an offending row, if not kwargs["column"]

    @property
    def column(self) -> str | None:
        """The validated column(s), for the report; None for table-level checks."""
        kw = self.kwargs
        if "column" in kw:
            return str(kw["column"])
        if "column_list" in kw:
            return ", ".join(kw["column_list"])
        if "column_A" in kw:
            return f"{kw['column_A']}, {kw['column_B']}"
        return None

    @property
    def example_column(self) -> str | None:
        """The column whose value a failing row is shown with (None: the row's key says it)."""
        return self.shown or self.kwargs.get("column")


def derived_frame(turns: pd.DataFrame, config: ValidationConfig) -> pd.DataFrame:
    """A copy with the schema's columns (positional index) and the columns GX checks history by."""
    frame = turns[[c for c in COLUMNS if c in turns.columns]].reset_index(drop=True).copy()
    if "history" not in frame:
        return frame
    facts = [_history_facts(h) for h in frame["history"]]
    derived = pd.DataFrame(facts, columns=list(_HISTORY_FACTS), index=frame.index)
    frame[list(_HISTORY_FACTS)] = derived
    if config.history_matches_turn and "turn" in frame:
        frame["expected_history_len"] = pd.to_numeric(frame["turn"], errors="coerce") * 2
    return frame


_HISTORY_FACTS: Final = (
    "history_is_list",
    "history_items_are_str",
    "history_len",
    "history_longest_turn_chars",
)


def _history_facts(value: object) -> tuple[bool | None, bool | None, float, float]:
    """One cell's row of :data:`_HISTORY_FACTS`; None/NaN (skipped by GX) where undefined."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None, None, math.nan, math.nan  # the not-null check reports it
    if not isinstance(value, list):
        return False, None, math.nan, math.nan
    if not all(isinstance(x, str) for x in value):
        return True, False, float(len(value)), math.nan
    return True, True, float(len(value)), float(max(map(len, value), default=0))


def suite_checks(columns: Collection[str], config: ValidationConfig) -> list[Check]:
    """The suite for a frame with these columns: checks on a missing column are left out."""
    checks = [
        Check(f"column '{c}' exists", "ExpectColumnToExist", {"column": c})
        for c in required_columns(require_target=config.require_target)
    ]
    rows = {"min_value": config.min_rows}
    checks.append(Check(f"at least {config.min_rows} rows", "ExpectTableRowCountToBeBetween", rows))
    present = [c for c in COLUMNS if c in columns]
    for column in present:
        checks += _columnsuite_checks(column, config)
    if "conversation_id" in present and "turn" in present:
        key = {"column_list": ["conversation_id", "turn"]}
        checks.append(
            Check("(conversation_id, turn) is unique", "ExpectCompoundColumnsToBeUnique", key)
        )
    if "history" in present:
        checks += _historysuite_checks(columns, config)
    return checks


def _columnsuite_checks(c: str, config: ValidationConfig) -> list[Check]:
    """The checks of one schema column that the frame has, each kept when its condition holds."""
    text = c in _TEXT_COLUMNS
    required = c in required_columns(require_target=config.require_target)
    bounds = {
        "query": (config.min_query_chars, config.max_query_chars),
        "target": (config.min_target_chars, config.max_target_chars),
    }
    low, high = bounds.get(c, (0, 0))
    n = config.min_conversations
    table: list[tuple[bool, str, str, dict[str, Any]]] = [
        (True, f"has dtype {DTYPES[c]}", "ExpectColumnValuesToBeOfType", {"type_": DTYPES[c]}),
        (required, "has no nulls", "ExpectColumnValuesToNotBeNull", {}),
        (text, "values are strings", "ExpectColumnValuesToBeOfType", {"type_": "str"}),
        (text and required, "is not blank", "ExpectColumnValuesToNotMatchRegex", {"regex": _BLANK}),
        (
            c in bounds,
            f"has {low} to {high} characters",
            "ExpectColumnValueLengthsToBeBetween",
            {"min_value": low, "max_value": high},
        ),
        (c == "turn", "is >= 0", "ExpectColumnValuesToBeBetween", {"min_value": 0}),
        (
            c == "conversation_id",
            f"has at least {n} distinct values",
            "ExpectColumnUniqueValueCountToBeBetween",
            {"min_value": n},
        ),
    ]
    return [
        Check(f"'{c}' {name}", kind, {"column": c, **kw}) for keep, name, kind, kw in table if keep
    ]


def _historysuite_checks(columns: Collection[str], config: ValidationConfig) -> list[Check]:
    """Checks on the derived history columns: GX cannot look inside list cells."""
    longest = config.max_history_turn_chars
    checks = [
        Check(
            "'history' is a list",
            "ExpectColumnValuesToBeInSet",
            {"column": "history_is_list", "value_set": [True]},
            shown="history",
        ),
        Check(
            "'history' holds only strings",
            "ExpectColumnValuesToBeInSet",
            {"column": "history_items_are_str", "value_set": [True]},
            shown="history",
        ),
        Check(
            f"history texts have at most {longest} characters",
            "ExpectColumnValuesToBeBetween",
            {"column": "history_longest_turn_chars", "max_value": longest},
        ),
    ]
    if "expected_history_len" in columns:
        pair = {
            "column_A": "history_len",
            "column_B": "expected_history_len",
            "ignore_row_if": "either_value_is_missing",
        }
        checks.append(
            Check(
                "len(history) == 2 * turn",
                "ExpectColumnPairValuesToBeEqual",
                pair,
                shown="history_len",
            )
        )
    return checks
