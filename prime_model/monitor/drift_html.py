"""The drift decision as a self-contained HTML page: a table with inline SVG bars, no scripts.

Evidently's own report needs JavaScript; this summary renders where scripts are blocked (the
ZenML dashboard's artifact view) and points to Evidently's page as a separate artifact.
"""

from __future__ import annotations

from typing import Final

from prime_model.html_page import escape as _e
from prime_model.html_page import html_page
from prime_model.monitor.drift import EMBEDDINGS, DriftResult, DriftScore

_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}
h1{font-size:1.4em}.wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.test{min-width:22em}
tr.drifted td{background:#fdecea}.verdict{border-left:6px solid;padding:.5em 1em}
.verdict.yes{border-color:#c62828;background:#fdf2f2}.verdict.no{border-color:#2e7d32;background:#f1f8f1}
svg text{font:12px system-ui,sans-serif;fill:#222}
"""
_BAR: Final = 160  # px of a score bar at the scale's maximum


def render_drift_html(result: DriftResult, full_report: str = "drift_report_full") -> str:
    """Per-column results as a table with inline SVG bars: renders where scripts are blocked.

    Evidently's own report needs JavaScript; it travels as the artifact named ``full_report``.
    """
    kind = "yes" if result.drifted else "no"
    rows = "".join(
        _drift_row(score, decides)
        for decides, scores in ((True, result.embeddings), (False, result.columns))
        for score in scores
    )
    head = "".join(
        f"<th>{c}</th>"
        for c in ("column", "kind", "test", "score", "", "threshold", "drifted", "decides")
    )
    title = "Input drift: current turns vs the production model's training turns"
    body = (
        f"<h1>{_e(title)}</h1>"
        f'<p class="verdict {kind}"><strong>{"Drifted" if result.drifted else "No drift"}'
        f"</strong>: {_e(result.describe())}</p>"
        f"<p>{result.current_rows} current vs {result.reference_rows} reference conversations, "
        "one turn each. Embedding drift decides; column drift is shown to explain it.</p>"
        f'<div class="wrap"><table><tr>{head}</tr>{rows}</table></div>'
        f"<p>Evidently's full interactive report is the <code>{_e(full_report)}</code> "
        "artifact of this step (download it and open it in a browser: it needs scripts).</p>"
    )
    return html_page(title, _CSS, body)


def _drift_row(score: DriftScore, decides: bool) -> str:
    kind = "embedding" if score.name in EMBEDDINGS else "column"
    threshold = "bootstrap" if score.threshold is None else f"{score.threshold:.3g}"
    scale = max(1.0, score.score, score.threshold or 0.0)
    width = min(max(score.score, 0.0), scale) / scale * _BAR
    colour = "#c62828" if score.drifted else "#2e7d32"
    mark = ""
    if score.threshold is not None:
        x = score.threshold / scale * _BAR
        mark = f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="16" stroke="#222"/>'
    bar = (
        f'<svg width="{_BAR + 2}" height="16" role="img" aria-label="score {score.score:.3f}">'
        f'<rect x="0" y="3" width="{_BAR}" height="10" fill="#eee"/>'
        f'<rect x="0" y="3" width="{width:.1f}" height="10" fill="{colour}"/>{mark}</svg>'
    )
    return (
        f'<tr class="{"drifted" if score.drifted else "ok"}"><td>{_e(score.name)}</td>'
        f'<td>{kind}</td><td class="test">{_e(score.test or score.method)}</td>'
        f'<td class="num">{score.score:.4f}</td><td>{bar}</td>'
        f'<td class="num">{_e(threshold)}</td><td>{"yes" if score.drifted else "no"}</td>'
        f"<td>{'yes' if decides else 'no'}</td></tr>"
    )
