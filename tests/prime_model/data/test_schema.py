from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from prime_model import DataValidationError
from prime_model.data import COLUMNS, DTYPES, Turn, conform_frame, turns_to_frame
from prime_model.data.schema import ROLE_COLUMN, role_ids, truncate_histories
from tests.conftest import REPO_ROOT


def _raw(**overrides: object) -> pd.DataFrame:
    data: dict[str, object] = {
        "conversation_id": ["a", "a"],
        "turn": [0, 1],
        "history": [[], ["q0", "a0"]],
        "query": ["q0", "q1"],
        "target": ["t0", "t1"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_turns_to_frame_has_the_schema_columns_and_dtypes() -> None:
    frame = turns_to_frame([Turn(conversation_id="c", turn=0, query="q", target="t")])
    assert tuple(frame.columns) == COLUMNS
    assert str(frame["turn"].dtype) == "int64"
    assert frame.loc[0, "history"] == []
    assert frame.loc[0, "target_id"] is None


def test_conform_reorders_adds_target_id_and_stringifies_ids() -> None:
    frame = conform_frame(_raw(conversation_id=[7, 7], target_id=[3, float("nan")])[::-1])
    assert tuple(frame.columns) == COLUMNS
    assert frame["conversation_id"].tolist() == ["7", "7"]
    assert frame["target_id"].tolist() == [None, "3"]
    assert frame.index.tolist() == [0, 1]


def test_conform_keeps_null_ids_for_validation_to_report() -> None:
    assert conform_frame(_raw(conversation_id=[None, "a"]))["conversation_id"].tolist() == [
        None,
        "a",
    ]


def test_missing_columns_are_named() -> None:
    with pytest.raises(
        DataValidationError, match=r"my.csv: missing required column\(s\) \['query'\]"
    ):
        conform_frame(_raw().drop(columns=["query"]), source="my.csv")


@pytest.mark.parametrize("turns", [[0, 1.5], [0, None], [0, "x"]])
def test_turn_must_be_whole_numbers(turns: list[object]) -> None:
    with pytest.raises(DataValidationError, match="'turn' must hold whole numbers"):
        conform_frame(_raw(turn=turns))


def test_float_turns_that_are_whole_are_accepted() -> None:
    assert conform_frame(_raw(turn=[0.0, 1.0]))["turn"].tolist() == [0, 1]


def test_the_docs_document_exactly_the_schema() -> None:
    """docs/library.md's turn table is a copy; this keeps it from drifting from the definition."""
    docs = (REPO_ROOT / "docs" / "library.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (\w+)", docs, flags=re.MULTILINE)
    assert rows == [(column, DTYPES[column]) for column in COLUMNS]


def test_array_histories_from_parquet_become_lists() -> None:
    frame = conform_frame(_raw(history=[np.array([], dtype=object), np.array(["q0", "a0"])]))
    assert frame["history"].tolist() == [[], ["q0", "a0"]]
    assert all(isinstance(h, list) for h in frame["history"])


def test_history_roles_are_kept_checked_and_truncated_with_the_history() -> None:
    frame = pd.DataFrame(
        {
            "conversation_id": ["c", "c"],
            "turn": [0, 1],
            "history": [["q0", "a0", "q1"], []],
            "query": ["q", "r"],
            "target": ["t", "u"],
            ROLE_COLUMN: [["user", "system", "user"], None],
        }
    )
    turns = conform_frame(frame)
    assert turns[ROLE_COLUMN].tolist() == [["user", "system", "user"], None]
    kept = truncate_histories(turns, 2)
    assert kept[ROLE_COLUMN].tolist() == [["system", "user"], None]
    assert role_ids(["system", "user"], 2) == [2, 1]
    assert role_ids(None, 3) == [0, 0, 0]
    with pytest.raises(DataValidationError, match="2 roles"):
        conform_frame(_with_roles(frame, [["user", "system"], None]))
    with pytest.raises(DataValidationError, match="expected a list of user/system"):
        conform_frame(_with_roles(frame, [["user", "bot", "user"], None]))
    assert ROLE_COLUMN not in conform_frame(frame.drop(columns=[ROLE_COLUMN])).columns


def _with_roles(frame: pd.DataFrame, roles: list[list[str] | None]) -> pd.DataFrame:
    out = frame.copy()
    out[ROLE_COLUMN] = pd.Series(roles, dtype=object)
    return out
