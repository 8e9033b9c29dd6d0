"""The rewrite oracle: the human rewrite's embedding retrieves, reported beside the baselines."""

from __future__ import annotations

import pandas as pd
import pytest

from prime_model import DataValidationError
from prime_model.data import Turn, turns_to_frame
from prime_model.data.schema import REWRITE_COLUMN
from prime_model.encode.encoding import encode_turns
from prime_model.evaluate.oracle import (
    REWRITE_ORACLE,
    rewrite_oracle,
    turn_rewrites,
    with_rewrite_oracle,
)
from prime_model.evaluate.report import EvaluationTable
from tests.conftest import CountingEncoder

VECTORS = {
    "t0": [1.0, 0.0, 0.0],
    "t1": [0.0, 1.0, 0.0],
    "says t0": [1.0, 0.0, 0.0],
    "says t1": [0.0, 1.0, 0.0],
}


def _turns(rewrites: list[str | None] | None) -> pd.DataFrame:
    frame = turns_to_frame(
        [
            Turn(conversation_id="a", turn=0, query="q0", target="t0"),
            Turn(conversation_id="a", turn=1, history=["q0"], query="q1", target="t1"),
        ]
    )
    if rewrites is not None:
        frame[REWRITE_COLUMN] = pd.Series(rewrites, dtype=object)
    return frame


def _table() -> EvaluationTable:
    return EvaluationTable(
        num_turns=2, rows={"model": {"mrr": 0.5}, "query-only": {"mrr": 0.4}},
        best_baseline="query-only", relative_gain=0.25, relative_gains={}, corpus_size=2,
        encoder_name="stub", max_context_length=4,
    )  # fmt: skip


def test_the_oracle_row_is_added_only_where_every_turn_has_a_rewrite() -> None:
    encoder = CountingEncoder(dim=3, table=VECTORS)
    turns = _turns(["says t0", "says t1"])
    encoded = encode_turns(turns, encoder, max_context_length=4)
    table = with_rewrite_oracle(_table(), turns, encoded, encoder)
    assert table.rows[REWRITE_ORACLE]["mrr"] == 1.0 and table.rows[REWRITE_ORACLE]["recall@1"] == 1
    assert table.best_baseline == "query-only"  # the oracle is never a baseline
    missing: list[list[str | None] | None] = [None, ["says t0", None], ["says t0", " "]]
    for without in missing:
        plain = _turns(without)
        assert turn_rewrites(plain) is None
        assert REWRITE_ORACLE not in with_rewrite_oracle(_table(), plain, encoded, encoder).rows


def test_one_rewrite_per_encoded_turn() -> None:
    encoder = CountingEncoder(dim=3, table=VECTORS)
    encoded = encode_turns(_turns(None), encoder, max_context_length=4)
    with pytest.raises(DataValidationError, match="1 rewrites for 2 encoded turns"):
        rewrite_oracle(encoded, ["says t0"], encoder)
