"""A small slice of the real-data benchmark, where the public data lies beside the checkout.

Opt-in by presence: ``../shared/data`` (the team's copy of CANARD, TopiOCQA and doc2dial) exists
on the team's machines and in CI, not on a user's; without it the test is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.real_data import main
from prime_model import load_checkpoint
from prime_model.evaluate.report import SYSTEMS
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT.parent / "shared" / "data"
pytestmark = pytest.mark.skipif(
    not (DATA / "canard" / "dev.json").is_file(), reason="no ../shared/data beside the checkout"
)


def test_a_slice_trains_a_checkpoint_and_writes_both_tables(tmp_path: Path) -> None:
    code = main(
        [
            "--data-dir", str(DATA), "--out", str(tmp_path), "--training", "smoke",
            "--max-train-turns", "300", "--max-eval-turns", "60",
            "--cache-dir", str(tmp_path / "cache"),
        ]
    )  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "real_data.json").read_text(encoding="utf-8"))
    assert set(results["sets"]) == {
        "val",
        "canard-dev (rewrite)",
        "canard-dev (answer)",
        "topiocqa held-out (answer)",
        "doc2dial held-out (paragraph)",
        "doc2dial held-out (span)",
    }
    for table in results["sets"].values():
        assert set(SYSTEMS) <= set(table["rows"])
    oracle = results["sets"]["canard-dev (answer)"]["rows"]["rewrite oracle"]
    assert 0 < oracle["mrr"] <= 1
    table = (tmp_path / "real_data.md").read_text(encoding="utf-8")
    assert "| canard-dev (answer) |" in table
    assert "| history 5+ MRR |" in table
    doc2dial = results["sets"]["doc2dial held-out (paragraph)"]
    assert {"with system turns", "first turn"} <= set(doc2dial["breakdown"])
    model = load_checkpoint(tmp_path / "model").model
    assert model.config.residual
