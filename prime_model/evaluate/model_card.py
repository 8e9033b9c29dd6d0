"""A model card: one model version's standing, metrics, gate decision and lineage, as one page.

The OSS dashboard has no Models page, so the card is what shows a version's stage among the
others. Built from plain data (the step gathers it from the ZenML client) into a self-contained
page: inline CSS, no scripts (the dashboard's frame runs none), every text escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from prime_model.artifacts import PREDICTOR_CHECKPOINT
from prime_model.evaluate.oracle import REWRITE_ORACLE
from prime_model.evaluate.promotion import PromotionDecision
from prime_model.evaluate.report import EvaluationTable, results_table_html
from prime_model.html_page import escape as _e
from prime_model.html_page import html_page

# role -> the pipeline outputs that play it, in the order data flows through the pipeline
LINEAGE: Final = (
    ("dataset", ("turns", "combined_turns", "validated_turns")),
    ("encoded data", ("encoded_train", "encoded_val", "encoded_test")),
    ("checkpoint", (PREDICTOR_CHECKPOINT,)),
    ("ONNX exports", ("onnx_model", "onnx_int8_model")),
)


class ArtifactRef(BaseModel):
    """One artifact version, as the card names it."""

    model_config = ConfigDict(frozen=True)

    name: str
    artifact_id: str
    version: str
    fingerprint: str | None = Field(None, description="content sha256, when the step logged one")


class LineageStage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    artifacts: list[ArtifactRef]


class VersionRow(BaseModel):
    """One version of the model, for the versions table."""

    model_config = ConfigDict(frozen=True)

    name: str
    number: int | None = None
    stage: str | None = None
    created: str = ""
    score: float | None = Field(None, description="the gate metric it was registered with")


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    version: str
    description: str = ""
    run_name: str = ""
    evaluation: EvaluationTable
    decision: PromotionDecision
    versions: list[VersionRow] = Field(default_factory=list)
    lineage: list[LineageStage] = Field(default_factory=list)


def lineage_from_outputs(outputs: Mapping[str, ArtifactRef]) -> list[LineageStage]:
    """The run's outputs (by output name) that make up the lineage, in pipeline order.

    Roles with no output in this run (a pipeline without ONNX export) are left out.
    """
    stages = []
    for role, names in LINEAGE:
        found = [outputs[name] for name in names if name in outputs]
        if found:
            stages.append(LineageStage(role=role, artifacts=found))
    return stages


_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em}
.sub{color:#555;margin-top:0}.wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
tr.model td,tr.current td{font-weight:bold;background:#eef4ff}
.stage{display:inline-block;padding:0 .5em;border-radius:.8em;font-size:.85em;background:#e0e0e0}
.stage.production{background:#c8e6c9;color:#1b5e20}.stage.staging{background:#fff3c4}
.stage.archived{background:#eee;color:#777}
.gate{border-left:6px solid;padding:.6em 1em;margin:.6em 0}
.gate.pass{border-color:#2e7d32;background:#f1f8f1}.gate.fail{border-color:#c62828;background:#fdf2f2}
.gate strong{font-size:1.1em}.gate ul{margin:.4em 0 0 0}
.lineage{display:flex;flex-wrap:wrap;align-items:stretch;gap:.4em}
.node{border:1px solid #bbb;border-radius:6px;padding:.5em .7em;background:#fafafa;min-width:12em}
.node h3{font-size:.95em;margin:0 0 .3em}.arrow{align-self:center;font-size:1.4em;color:#777}
.art{margin:.3em 0;font-size:.85em}.art b{font-size:1.05em}
code{font-size:.85em;word-break:break-all}
"""


def render_model_card(card: ModelCard) -> str:
    """One HTML document: header, versions, metrics vs baselines, gate decision, lineage."""
    title = f"Model card: {card.model_name} version {card.version}"
    sub = " · ".join(
        part
        for part in (
            card.description,
            f"run {card.run_name}" if card.run_name else "",
            f"Y-Encoder {card.evaluation.encoder_name}",
        )
        if part
    )
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(sub)}</p>',
        _gate_html(card.decision),
        f"<h2>Versions of {_e(card.model_name)}</h2>",
        _versions_html(card),
        "<h2>This version's metrics vs the baselines</h2>",
        f"<p>Test split: {card.evaluation.num_turns} turns, corpus of "
        f"{card.evaluation.corpus_size} targets. Best baseline on "
        f"{_e(card.decision.metric)}: {_e(card.evaluation.best_baseline)}.</p>",
        _evaluation_set_html(card.evaluation),
        f'<div class="wrap">{results_table_html(card.evaluation)}</div>',
        *(
            f"<h3>{_e(name)} ({subset.num_turns} turns)</h3>"
            f'<div class="wrap">{results_table_html(subset)}</div>'
            for name, subset in card.evaluation.breakdown.items()
        ),
        "<h2>Lineage</h2>",
        _lineage_html(card.lineage),
    ]
    return html_page(title, _CSS, "".join(body))


def _evaluation_set_html(evaluation: EvaluationTable) -> str:
    """Which turns were scored: scores on different sets are not compared by the gate."""
    judged_on = evaluation.evaluation_set
    label = "not recorded" if judged_on is None else judged_on.label
    oracle = (
        f" The {REWRITE_ORACLE} row retrieves with the human rewrite of each question: a ceiling, "
        "not a baseline."
        if REWRITE_ORACLE in evaluation.rows
        else ""
    )
    return f"<p>Evaluation set: {_e(label)}.{_e(oracle)}</p>"


def _gate_html(decision: PromotionDecision) -> str:
    kind = "pass" if decision.promote else "fail"
    why = "".join(f"<li>{_e(line)}</li>" for line in decision.explanation())
    production = "none" if decision.incumbent is None else f"{decision.incumbent:.4f}"
    if decision.set_changed:
        production += " (on another evaluation set: not compared)"
    facts = (
        f"{_e(decision.metric)} {decision.score:.4f} · floor {decision.floor} · "
        f"best baseline {decision.best_baseline:.4f} · production {production}"
    )
    return (
        f'<div class="gate {kind}"><strong>Gate: {_e(decision.verdict)}</strong>'
        f"<div>{facts}</div><ul>{why}</ul></div>"
    )


def _versions_html(card: ModelCard) -> str:
    if not card.versions:
        return "<p>No versions listed.</p>"
    metric = card.decision.metric
    head = "".join(f"<th>{_e(c)}</th>" for c in ("version", "number", "stage", metric, "created"))
    rows = []
    for row in card.versions:
        current = ' class="current"' if row.name == card.version else ""
        stage = row.stage or "none"
        score = "-" if row.score is None else f"{row.score:.4f}"
        number = "-" if row.number is None else str(row.number)
        marker = " (this one)" if row.name == card.version else ""
        rows.append(
            f"<tr{current}><td>{_e(row.name)}{marker}</td><td>{number}</td>"
            f'<td><span class="stage {_e(stage)}">{_e(stage)}</span></td>'
            f"<td>{score}</td><td>{_e(row.created)}</td></tr>"
        )
    return f'<div class="wrap"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _lineage_html(stages: Sequence[LineageStage]) -> str:
    if not stages:
        return "<p>No lineage recorded.</p>"
    nodes = []
    for stage in stages:
        arts = "".join(
            f'<div class="art"><b>{_e(a.name)}</b> v{_e(a.version)}<br>'
            f"id <code>{_e(a.artifact_id)}</code>"
            + (f"<br>sha256 <code>{_e(a.fingerprint)}</code>" if a.fingerprint else "")
            + "</div>"
            for a in stage.artifacts
        )
        nodes.append(f'<div class="node"><h3>{_e(stage.role)}</h3>{arts}</div>')
    return '<div class="lineage">' + '<span class="arrow">→</span>'.join(nodes) + "</div>"
