"""Training curves as one self-contained HTML page (inline SVG, no scripts).

Two charts: losses (training per step, validation per epoch) and validation retrieval metrics,
both against epochs, so a step-logged curve and an epoch-logged one share an axis. Each chart has
axis titles, a few round-number ticks that cannot overlap, and a legend above the plot.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

WIDTH: Final = 560
HEIGHT: Final = 300
LEFT, RIGHT, BOTTOM = 64, 16, 48  # room for tick labels and axis titles
LEGEND_ROW: Final = 18  # the legend sits above the plot, one series per row: never overlaps
MAX_DOTS: Final = 60  # mark every point of a short series; a per-step curve stays a line
COLOURS: Final = ("#2b6cb0", "#dd6b20", "#2f855a", "#805ad5")
CHARTS: Final = (
    ("Loss", "loss", (("train/loss", "training loss"), ("val/loss", "validation loss"))),
    (
        "Retrieval on the validation split",
        "Recall@10 / MRR",
        (("val/recall@10", "validation Recall@10"), ("val/mrr", "validation MRR")),
    ),
)


class Series(NamedTuple):
    label: str
    points: list[tuple[float, float]]


def training_curves_html(history: Sequence[dict[str, float]], title: str = "Training") -> str:
    """One chart per group of logged metrics; metrics never logged are left out."""
    x_of, x_title = _x_axis(history)
    charts = []
    for caption, y_title, keys in CHARTS:
        series = [
            Series(label, points)
            for key, label in keys
            if (
                points := [(x_of(row), row[key]) for row in history if key in row and "step" in row]
            )
        ]
        if series:
            charts.append(_chart(caption, series, x_title, y_title))
    body = "".join(charts) or "<p>No metrics were logged.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "figure{display:inline-block;margin:0 24px 24px 0;max-width:100%;overflow-x:auto}"
        "figcaption{font-weight:600;margin-bottom:4px}"
        "svg text{font:12px system-ui,sans-serif;fill:#333}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _x_axis(history: Sequence[dict[str, float]]) -> tuple[Callable[[dict[str, float]], float], str]:
    """Epochs when the rows say how many steps an epoch has, else steps.

    Lightning logs validation at an epoch's last step: ``(step + 1) / steps_per_epoch`` puts it
    at the epoch's end, and a training step at the fraction of the epoch it completed.
    """
    ends = [row for row in history if "epoch" in row and "step" in row and "val/loss" in row]
    ends = ends or [row for row in history if "epoch" in row and "step" in row]
    if ends:
        last = max(ends, key=lambda row: row["step"])
        per_epoch = (last["step"] + 1) / (last["epoch"] + 1)
        if per_epoch > 0:
            return (lambda row: (row["step"] + 1) / per_epoch), "epoch"
    return (lambda row: row["step"]), "step"


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """At most ``most`` (at least 2) round values (1, 2, 2.5 or 5 × 10^k apart) covering
    [low, high]: the smallest such step, so the ticks are as dense as fits."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    most = max(most, 2)
    magnitude = 10 ** math.floor(math.log10((high - low) / (most - 1)))
    for step in (m * magnitude * scale for scale in (1, 10, 100) for m in (1, 2, 2.5, 5)):
        first = math.floor(low / step + 1e-9) * step
        count = math.ceil((high - first) / step - 1e-9) + 1
        if count <= most:
            return [round(first + k * step, 10) for k in range(count)]
    return [low, high]


def _chart(caption: str, series: list[Series], x_title: str, y_title: str) -> str:
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys), most=5)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    top = 12 + LEGEND_ROW * len(series)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - top - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    parts = [
        f"<rect x='{LEFT}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' stroke='#ccc'/>"
    ]
    for t in x_ticks:
        parts.append(
            f"<line x1='{sx(t):.1f}' x2='{sx(t):.1f}' y1='{top}' y2='{top + plot_h + 4}' "
            f"stroke='#eee'/><text x='{sx(t):.1f}' y='{top + plot_h + 18}' "
            f"text-anchor='middle'>{t:g}</text>"
        )
    for t in y_ticks:
        parts.append(
            f"<line x1='{LEFT - 4}' x2='{LEFT + plot_w}' y1='{sy(t):.1f}' y2='{sy(t):.1f}' "
            f"stroke='#eee'/><text x='{LEFT - 8}' y='{sy(t) + 4:.1f}' "
            f"text-anchor='end'>{t:.4g}</text>"
        )
    parts.append(
        f"<text x='{LEFT + plot_w / 2:.0f}' y='{HEIGHT - 8}' text-anchor='middle' "
        f"font-weight='600'>{html.escape(x_title)}</text>"
        f"<text transform='translate(14 {top + plot_h / 2:.0f}) rotate(-90)' "
        f"text-anchor='middle' font-weight='600'>{html.escape(y_title)}</text>"
    )
    for i, (colour, s) in enumerate(zip(COLOURS, series, strict=False)):
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        parts.append(f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='2'/>")
        if len(s.points) <= MAX_DOTS:
            dots = "".join(
                f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='2.5'/>" for x, y in s.points
            )
            parts.append(f"<g fill='{colour}'>{dots}</g>")
        label = f"{s.label} (last {s.points[-1][1]:.4f})"
        y = 14 + LEGEND_ROW * i
        parts.append(
            f"<rect x='{LEFT}' y='{y - 6}' width='16' height='4' fill='{colour}'/>"
            f"<text x='{LEFT + 22}' y='{y}'>{html.escape(label)}</text>"
        )
    return (
        f"<figure><figcaption>{html.escape(caption)}</figcaption>"
        f"<svg width='{WIDTH}' height='{HEIGHT}' role='img' aria-label='{html.escape(caption)}'>"
        + "".join(parts)
        + "</svg></figure>"
    )
