"""Training curves as one self-contained HTML page (inline SVG): loss per step, val metrics."""

from __future__ import annotations

import html
from collections.abc import Sequence

WIDTH, HEIGHT, PAD = 520, 220, 36
CURVES = (
    ("train/loss", "step", "training loss"),
    ("val/loss", "step", "validation loss"),
    ("val/recall@10", "step", "validation Recall@10"),
    ("val/mrr", "step", "validation MRR"),
)


def training_curves_html(history: Sequence[dict[str, float]], title: str = "Training") -> str:
    """One small chart per logged metric; metrics never logged are left out."""
    charts = []
    for key, x_key, label in CURVES:
        points = [(row[x_key], row[key]) for row in history if key in row and x_key in row]
        if points:
            charts.append(_chart(points, label))
    body = "".join(charts) or "<p>No metrics were logged.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "figure{display:inline-block;margin:0 24px 24px 0}"
        "figcaption{font-weight:600;margin-bottom:4px}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _chart(points: list[tuple[float, float]], label: str) -> str:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def sx(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    dots = "".join(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='2.5'/>" for x, y in points)
    return (
        f"<figure><figcaption>{html.escape(label)} (last {ys[-1]:.4f})</figcaption>"
        f"<svg width='{WIDTH}' height='{HEIGHT}' role='img' aria-label='{html.escape(label)}'>"
        f"<rect x='{PAD}' y='{PAD}' width='{WIDTH - 2 * PAD}' height='{HEIGHT - 2 * PAD}' "
        "fill='none' stroke='#ccc'/>"
        f"<polyline points='{line}' fill='none' stroke='#2b6cb0' stroke-width='2'/>"
        f"<g fill='#2b6cb0'>{dots}</g>"
        f"<text x='{PAD}' y='{HEIGHT - 8}' font-size='11'>step {x0:g}</text>"
        f"<text x='{WIDTH - PAD}' y='{HEIGHT - 8}' font-size='11' text-anchor='end'>{x1:g}</text>"
        f"<text x='4' y='{PAD + 4}' font-size='11'>{y1:.3g}</text>"
        f"<text x='4' y='{HEIGHT - PAD}' font-size='11'>{y0:.3g}</text></svg></figure>"
    )
