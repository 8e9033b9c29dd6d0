from __future__ import annotations

from prime_model.train.report import training_curves_html


def test_one_chart_per_logged_metric() -> None:
    history = [
        {"step": 0.0, "train/loss": 3.0},
        {"step": 1.0, "train/loss": 2.0},
        {"step": 1.0, "epoch": 0.0, "val/loss": 1.5, "val/recall@10": 0.6},
        {"step": 3.0, "epoch": 1.0, "val/loss": 1.0, "val/recall@10": 0.8},
    ]
    page = training_curves_html(history, title="<run>")
    assert page.count("<svg") == 3  # loss, val loss, recall@10; MRR was never logged
    assert "validation Recall@10 (last 0.8000)" in page
    assert "&lt;run&gt;" in page
    assert "http" not in page  # self-contained


def test_empty_history_and_a_single_point() -> None:
    assert "No metrics were logged" in training_curves_html([])
    assert training_curves_html([{"step": 0.0, "train/loss": 1.0}]).count("<circle") == 1
