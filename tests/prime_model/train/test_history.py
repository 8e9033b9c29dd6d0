"""Reading a run's history back: the best epoch and the still-improving warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from prime_model.train.history import (
    MONITOR,
    best_epoch,
    read_history,
    still_improving,
    warn_if_still_improving,
)


def _history(*scores: float) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for epoch, score in enumerate(scores):
        rows.append({"train/loss": 1.0, "step": float(epoch)})  # a step row, no val metric
        rows.append({MONITOR: score, "epoch": float(epoch), "val/mrr": score / 2})
    return rows


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ((0.5, 0.6, 0.7), True),
        ((0.5, 0.7, 0.6), False),  # peaked: early stopping's business, not more epochs
        ((0.5, 0.7, 0.7), False),  # a tie is not an improvement
        ((0.5,), False),  # one epoch says nothing about a trend
        ((), False),
    ],
)
def test_still_improving(scores: tuple[float, ...], expected: bool) -> None:
    assert still_improving(_history(*scores)) is expected


def test_the_warning_names_the_metric_and_what_to_raise(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="prime_model.train.history"):
        assert warn_if_still_improving(_history(0.5, 0.6))
    assert "val/recall@10 was still improving (0.5000 -> 0.6000" in caplog.text
    assert "max_epochs" in caplog.text
    caplog.clear()
    assert not warn_if_still_improving(_history(0.6, 0.5))
    assert caplog.text == ""


def test_best_epoch_keeps_the_first_of_equal_scores() -> None:
    best = best_epoch(_history(0.5, 0.7, 0.7))
    assert best == {MONITOR: 0.7, "epoch": 1.0, "val/mrr": 0.35}
    assert best_epoch([]) == {}


def test_read_history_drops_blanks(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val/recall@10\n0,9,\n0,9,0.5\n", encoding="utf-8")
    assert read_history(path) == [
        {"epoch": 0.0, "step": 9.0},
        {"epoch": 0.0, "step": 9.0, MONITOR: 0.5},
    ]
    assert read_history(tmp_path / "missing.csv") == []
