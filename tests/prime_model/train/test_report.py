from __future__ import annotations

import re

from prime_model.train.report import nice_ticks, training_curves_html

HISTORY = [
    {"step": 0.0, "epoch": 0.0, "train/loss": 3.0},
    {"step": 1.0, "epoch": 0.0, "train/loss": 2.0},
    {"step": 1.0, "epoch": 0.0, "val/loss": 1.5, "val/recall@10": 0.6},
    {"step": 3.0, "epoch": 1.0, "train/loss": 1.2},
    {"step": 3.0, "epoch": 1.0, "val/loss": 1.0, "val/recall@10": 0.8},
]


def test_loss_and_retrieval_charts_with_axis_titles_and_legends() -> None:
    page = training_curves_html(HISTORY, title="<run>")
    assert page.count("<svg") == 2  # losses together, then retrieval (MRR was never logged)
    for text in ("training loss (last 1.2000)", "validation loss (last 1.0000)"):
        assert text in page
    assert "validation Recall@10 (last 0.8000)" in page and "MRR (last" not in page
    assert page.count(">epoch</text>") == 2  # the x axis title of both charts
    assert ">loss</text>" in page and ">Recall@10 / MRR</text>" in page
    assert "&lt;run&gt;" in page
    assert "http" not in page and "<script" not in page  # self-contained


def test_x_is_epochs_completed_when_epochs_are_logged() -> None:
    page = training_curves_html(HISTORY)
    # 2 steps an epoch: validation of epoch 0 sits at x = 1 (its end), of epoch 1 at x = 2
    labels = re.findall(r"text-anchor='middle'>([0-9.]+)</text>", page)
    assert labels[0] == "0.5" and labels[-1] == "2"


def test_legend_rows_do_not_overlap() -> None:
    page = training_curves_html(HISTORY)
    first = page.split("<svg")[1]
    ys = [float(y) for y in re.findall(r"<text x='86' y='([0-9.]+)'>", first)]
    assert len(ys) == 2 and ys[1] - ys[0] >= 14  # one 12 px row per series


def test_steps_when_no_epoch_is_logged_and_edge_cases() -> None:
    assert "No metrics were logged" in training_curves_html([])
    single = training_curves_html([{"step": 0.0, "train/loss": 1.0}])
    assert single.count("<circle") == 1 and ">step</text>" in single


def test_nice_ticks_are_round_and_few() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.13, 0.87, most=5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(3.0, 3.0) == [3.0, 4.0, 5.0, 6.0]  # a flat curve still gets an axis
    for low, high in ((0.0, 7.0), (1.37, 2.91), (-5.0, 1234.0), (0.0012, 0.0019)):
        ticks = nice_ticks(low, high)
        assert 2 <= len(ticks) <= 6 and ticks[0] <= low and ticks[-1] >= high
