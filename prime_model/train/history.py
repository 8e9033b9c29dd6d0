"""What a training run logged, read back: the best epoch, and whether it was still improving."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

MONITOR: Final = "val/recall@10"  # what ModelCheckpoint and EarlyStopping watch


def read_history(path: Path) -> list[dict[str, float]]:
    """CSVLogger's rows (steps and epochs), blanks dropped, as floats."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def best_epoch(history: list[dict[str, float]]) -> dict[str, float]:
    """Validation metrics of the epoch ModelCheckpoint kept: the first with the highest score."""
    rows = [row for row in history if MONITOR in row]
    if not rows:
        return {}
    best = max(rows, key=lambda row: row[MONITOR])  # max() keeps the first of equal scores
    return {k: v for k, v in best.items() if k.startswith("val/") or k in ("epoch", "step")}


def still_improving(history: list[dict[str, float]]) -> bool:
    """True when the last validation was the best one so far, strictly: more epochs might help.

    A run that early stopping ended, or whose score had already peaked, is not.
    """
    scores = [row[MONITOR] for row in history if MONITOR in row]
    return len(scores) >= 2 and scores[-1] > max(scores[:-1])


def warn_if_still_improving(history: list[dict[str, float]]) -> bool:
    """Log a warning (and return True) when the run ended while validation still improved."""
    if not still_improving(history):
        return False
    scores = [row[MONITOR] for row in history if MONITOR in row]
    logger.warning(
        "training ended while %s was still improving (%.4f -> %.4f in the last epoch); "
        "more epochs (training.max_epochs / max_steps) may give a better model",
        MONITOR,
        max(scores[:-1]),
        scores[-1],
    )
    return True
