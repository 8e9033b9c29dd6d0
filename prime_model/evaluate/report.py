"""The evaluation's result, :class:`EvaluationTable`, as data, as Markdown and as one HTML page.

The HTML is built by hand with inline CSS and inline SVG bar charts: it must open offline, from a
pipeline artifact store or an e-mail, so nothing is loaded from a CDN and no script runs. Every
text goes through :func:`html.escape`, encoder names included.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from prime_model.evaluate.evaluation_set import EvaluationSet
from prime_model.html_page import escape as _e
from prime_model.html_page import html_page

MODEL: Final = "model"
BASELINES: Final = ("query-only", "concat-text", "query+concat", "mean-of-turns")
SYSTEMS: Final = (MODEL, *BASELINES)
HEADLINE_METRIC: Final = "recall@10"  # picks the best baseline and the headline gain
FIRST_TURN: Final = "first turn"
LATER_TURNS: Final = "later turns"
CHART_METRICS: Final = (HEADLINE_METRIC, "mrr")
_LABEL_WIDTH: Final = 120
_BAR_WIDTH: Final = 300
_BAR_HEIGHT: Final = 22
_BAR_GAP: Final = 6


class RetrievalResults(BaseModel):
    """Metrics of every system on one set of turns, and how the model compares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_turns: int = Field(ge=0)
    rows: dict[str, dict[str, float]] = Field(description="system -> metric -> value")
    best_baseline: str = Field(description=f"the baseline with the highest {HEADLINE_METRIC}")
    relative_gain: float | None = Field(
        description=f"model {HEADLINE_METRIC} / best baseline's - 1; None if that is 0"
    )
    relative_gains: dict[str, float | None] = Field(
        description="per metric: model / the strongest baseline on that metric - 1"
    )

    @property
    def metrics(self) -> list[str]:
        """Metric names, in the order the metrics module returns them."""
        return list(self.rows[MODEL])

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-friendly data (None for an undefined gain)."""
        return self.model_dump(mode="json")


class EvaluationTable(RetrievalResults):
    """The model and every baseline on all turns, plus a first-turn / later-turn breakdown."""

    corpus_size: int = Field(ge=0, description="unique targets every system retrieves from")
    encoder_name: str
    max_context_length: int = Field(ge=1, description="context turns each system could read")
    breakdown: dict[str, RetrievalResults] = Field(
        default_factory=dict, description=f"'{FIRST_TURN}' (empty history) and '{LATER_TURNS}'"
    )
    evaluation_set: EvaluationSet | None = Field(
        None, description="the turns scored (None: a table made before sets were recorded)"
    )

    def to_markdown(self, *, breakdown: bool = True) -> str:
        """A systems × metrics table, the gain line and (``breakdown``) the per-segment tables,
        for a terminal or a PR."""
        return render_markdown(self, breakdown=breakdown)

    def to_html(self) -> str:
        """A self-contained page (inline CSS and SVG, no scripts) with tables and bar charts."""
        return render_html(self)


def render_markdown(table: EvaluationTable, *, breakdown: bool = True) -> str:
    """Overview line, the systems × metrics table, the gain line, then the breakdown tables."""
    parts = [
        f"Retrieval on {table.num_turns} turns against a corpus of {table.corpus_size} targets "
        f"(Y-Encoder {_md(table.encoder_name)}, up to {table.max_context_length} context turns).",
        "",
        _md_table(table),
        "",
        _gain_line(table),
    ]
    for name, subset in table.breakdown.items() if breakdown else ():
        parts += ["", f"**{_md(name)}** ({subset.num_turns} turns)", "", _md_table(subset)]
        parts += ["", _gain_line(subset)]
    return "\n".join(parts) + "\n"


def _md_table(results: RetrievalResults) -> str:
    metrics = results.metrics
    lines = [
        "| system | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for system, values in results.rows.items():
        name = f"**{_md(system)}**" if system == MODEL else _md(system)
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.3f}" for m in metrics) + " |")
    return "\n".join(lines)


def _gain_line(results: RetrievalResults) -> str:
    others = ", ".join(
        f"{metric} {_percent(gain)}"
        for metric, gain in results.relative_gains.items()
        if metric != HEADLINE_METRIC
    )
    return (
        f"Model vs best baseline ({_md(results.best_baseline)}): {HEADLINE_METRIC} "
        f"{_percent(results.relative_gain)}; vs the strongest baseline per metric: {others}"
    )


def _percent(gain: float | None) -> str:
    return "n/a" if gain is None else f"{gain * 100:+.1f} %"


def _md(text: str) -> str:
    """Keep user text (an encoder name) from breaking the table or adding markup."""
    escaped = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return " ".join(escaped.split())


_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:60em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}.wrap{max-width:100%;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
tr.model td{font-weight:bold;background:#eef4ff}.gain{margin:.4em 0}
.charts{display:flex;flex-wrap:wrap;gap:2em}figure{margin:0}figcaption{font-weight:bold}
svg text{font:13px system-ui,sans-serif;fill:#222}
"""


def render_html(table: EvaluationTable) -> str:
    """One HTML document: overview, the table, bar charts, then the breakdown."""
    title = f"PRIME evaluation: {table.num_turns} turns"
    overview = (
        f"Retrieval on {table.num_turns} turns against a corpus of {table.corpus_size} targets "
        f"(Y-Encoder {table.encoder_name}, up to {table.max_context_length} context turns)."
    )
    body = [f"<h1>{_e(title)}</h1>", f"<p>{_e(overview)}</p>", _html_results(table)]
    for name, subset in table.breakdown.items():
        body += [f"<h2>{_e(name)} ({subset.num_turns} turns)</h2>", _html_results(subset)]
    return html_page(title, _CSS, "".join(body))


def results_table_html(results: RetrievalResults) -> str:
    """The systems × metrics table (model row classed ``model``) and the gain line."""
    metrics = results.metrics
    head = "".join(f"<th>{_e(m)}</th>" for m in ["system", *metrics])
    rows = "".join(
        f'<tr class="{"model" if system == MODEL else "baseline"}"><td>{_e(system)}</td>'
        + "".join(f"<td>{values[m]:.3f}</td>" for m in metrics)
        + "</tr>"
        for system, values in results.rows.items()
    )
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="gain">{_e(_gain_line(results))}</p>'
    )


def _html_results(results: RetrievalResults) -> str:
    charts = "".join(_bar_chart(results, m) for m in CHART_METRICS if m in results.metrics)
    return (
        f'<div class="wrap">{results_table_html(results)}</div><div class="charts">{charts}</div>'
    )


def _bar_chart(results: RetrievalResults, metric: str) -> str:
    """Horizontal bars on a 0-1 scale, so charts of different runs compare by eye."""
    step = _BAR_HEIGHT + _BAR_GAP
    height = step * len(results.rows) + _BAR_GAP
    width = _LABEL_WIDTH + _BAR_WIDTH + 60
    bars = []
    for i, (system, values) in enumerate(results.rows.items()):
        value = min(max(values[metric], 0.0), 1.0)
        y = _BAR_GAP + i * step
        colour = "#2f6fdf" if system == MODEL else "#9aa5b1"
        bars.append(
            f'<text x="0" y="{y + 16}">{_e(system)}</text>'
            f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{value * _BAR_WIDTH:.1f}" '
            f'height="{_BAR_HEIGHT}" fill="{colour}"/>'
            f'<text x="{_LABEL_WIDTH + value * _BAR_WIDTH + 6:.1f}" y="{y + 16}">'
            f"{values[metric]:.3f}</text>"
        )
    axis = f'<line x1="{_LABEL_WIDTH}" y1="0" x2="{_LABEL_WIDTH}" y2="{height}" stroke="#555"/>'
    return (
        f"<figure><figcaption>{_e(metric)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{_e(metric)} per system"><title>{_e(metric)} per system</title>'
        + "".join(bars)
        + axis
        + "</svg></figure>"
    )
