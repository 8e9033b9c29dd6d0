"""The parts of a benchmark page that know nothing of the report: the page frame, scrolling
tables and the speedup chart (inline SVG: the page runs no scripts)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Final

from prime_model.html_page import html_page

COLOURS: Final = {
    "eager": "#9e9e9e",
    "compiled": "#5c6bc0",
    "onnx": "#26a69a",
    "onnx-int8": "#ef6c00",
}


_CSS: Final = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px}"
    ".wrap{max-width:100%;overflow-x:auto}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}"
    "th{background:#f3f3f3}td:first-child{text-align:left}"
    "section+section{border-top:2px solid #ddd;margin-top:2em}"
)


def wrap(table: str) -> str:
    """Wide tables scroll inside the page's width instead of being clipped by the frame."""
    return f'<div class="wrap">{table}</div>'


def render_page(title: str, sections: list[str]) -> str:
    """One self-contained document around :func:`~prime_model.bench.report.render_section`
    outputs (no frames)."""
    return html_page(title, _CSS, "".join(sections))


def speedup_chart(speedups: Mapping[tuple[str, int], float]) -> str:
    """Grouped bars: speedup vs eager (by backend and batch size) per batch size, one colour per
    backend, backends in the mapping's order."""
    sizes = sorted({size for _, size in speedups})
    backends = list(dict.fromkeys(name for name, _ in speedups))
    top = max(speedups.values(), default=1.0) * 1.15
    bar, gap, height, left = 22, 30, 220, 40
    group = bar * len(backends) + gap
    width = left + group * len(sizes) + 160
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
        'role="img" aria-label="speedup vs eager">'
    ]
    y1 = height - height / top
    parts.append(
        f'<line x1="{left}" x2="{left + group * len(sizes)}" y1="{y1:.1f}" y2="{y1:.1f}" '
        'stroke="#444" stroke-dasharray="4 3"/>'
        f'<text x="2" y="{y1 + 4:.1f}" font-size="11">1x</text>'
    )
    for i, size in enumerate(sizes):
        x0 = left + i * group
        for j, name in enumerate(backends):
            value = speedups[name, size]
            h = height * value / top
            colour = COLOURS.get(name, "#888")
            parts.append(
                f'<rect x="{x0 + j * bar}" y="{height - h:.1f}" width="{bar - 3}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(name)} batch {size}: '
                f"{value:.2f}x</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + bar * len(backends) / 2:.0f}" y="{height + 16}" font-size="12" '
            f'text-anchor="middle">batch {size}</text>'
        )
    for j, name in enumerate(backends):
        y = 20 + 18 * j
        x = left + group * len(sizes) + 20
        parts.append(
            f'<rect x="{x}" y="{y - 10}" width="12" height="12" '
            f'fill="{COLOURS.get(name, "#888")}"/><text x="{x + 18}" y="{y}" '
            f'font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
