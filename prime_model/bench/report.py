"""A benchmark run's result, :class:`BenchmarkReport`, as data, as Markdown and as HTML.

The HTML page is self-contained: inline CSS and SVG, no scripts (its frame and chart are in
:mod:`.report_html`).
"""

from __future__ import annotations

from html import escape
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from prime_model.bench.machine import Machine
from prime_model.bench.report_html import render_page, speedup_chart, wrap
from prime_model.config import PredictorConfig
from prime_model.export.quantize import QuantizationResult
from prime_model.runtime.inference import ParityStats

RECALL_TOLERANCE: Final = 0.01
_COLUMNS: Final = (
    "backend",
    "batch",
    "p50 ms",
    "p95 ms",
    "conv/s",
    "speedup vs eager",
    "max abs diff",
    "min cosine",
    "GFLOP/s",
    "% matmul peak",
    "p50 / floor",
)


class BenchmarkRow(BaseModel):
    """One backend at one batch size."""

    model_config = ConfigDict(frozen=True)

    backend: str
    batch_size: int
    runs: int
    p50_ms: float
    p95_ms: float
    throughput: float = Field(description="conversations per second at p50")
    speedup_vs_eager: float = Field(description="eager p50 / this p50, same run")
    parity_vs_eager: ParityStats
    gflops: float = Field(description="model FLOPs / p50")
    peak_fraction: float = Field(description="gflops / measured fp32 matmul peak")
    floor_ms: float = Field(description="this backend's weight bytes / measured read bandwidth")
    floor_ratio: float = Field(description="p50 / floor_ms (1.0 = streaming the weights once)")


class RecallCheck(BaseModel):
    """Recall@10 of every backend on one evaluation set, and each drop against eager."""

    model_config = ConfigDict(frozen=True)

    source: str
    rows: int
    recall_at_10: dict[str, float]
    drop_vs_eager: dict[str, float]
    tolerance: float = RECALL_TOLERANCE

    def holds(self, backend: str) -> bool:
        return self.drop_vs_eager[backend] <= self.tolerance + 1e-12


class BenchmarkReport(BaseModel):
    """Everything one benchmark run measured; ``to_markdown``/``to_html``/``model_dump_json``."""

    model_config = ConfigDict(frozen=True)

    title: str
    predictor_config: PredictorConfig
    context_turns: int
    machine: Machine
    matmul_peak_gflops: float
    read_bandwidth_gbs: float
    flops_per_row: dict[str, int] = Field(
        description="FLOPs one conversation costs each backend: eager runs the whole model, the "
        "others the serving graph (prime_model.runtime.serving), so GFLOP/s counts work actually "
        "done"
    )
    weight_bytes: dict[str, int]
    setup_seconds: dict[str, float]
    rows: list[BenchmarkRow]
    recall: RecallCheck | None = None
    quantization: QuantizationResult | None = Field(
        None, description="every int8 scheme judged on this CPU; onnx-int8 runs the accepted one"
    )
    notes: list[str] = Field(default_factory=list)

    def row(self, backend: str, batch_size: int) -> BenchmarkRow:
        for row in self.rows:
            if (row.backend, row.batch_size) == (backend, batch_size):
                return row
        raise KeyError(f"no row for backend {backend!r} at batch size {batch_size}")

    def to_markdown(self) -> str:
        return render_markdown(self)

    def to_html(self) -> str:
        return render_html(self)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def _cells(row: BenchmarkRow) -> list[str]:
    p = row.parity_vs_eager
    return [
        row.backend,
        str(row.batch_size),
        f"{row.p50_ms:.1f}",
        f"{row.p95_ms:.1f}",
        f"{row.throughput:.1f}",
        f"{row.speedup_vs_eager:.2f}x",
        f"{p.max_abs_diff:.1e}",
        f"{p.min_cosine:.6f}",
        f"{row.gflops:.1f}",
        f"{100 * row.peak_fraction:.0f}%",
        f"{row.floor_ratio:.2f}",
    ]


def _header_lines(report: BenchmarkReport) -> list[str]:
    cfg, m = report.predictor_config, report.machine
    weights = ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in report.weight_bytes.items())
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in report.setup_seconds.items()) or "none"
    return [
        f"Predictor {cfg.input_dim}->{cfg.hidden_dim}x{cfg.num_layers} layers/"
        f"{cfg.num_heads} heads->{cfg.output_dim}, {report.context_turns} context turns; "
        "GFLOP per conversation: "
        + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in report.flops_per_row.items())
        + " (non-eager backends skip the last block's unread rows).",
        f"Machine: {m.processor} ({m.instruction_set}), {m.torch_threads} torch threads, "
        f"device {m.device}; "
        f"torch {m.torch_version}, onnxruntime {m.onnxruntime_version or 'absent'}.",
        f"Measured on the spot: fp32 matmul peak {report.matmul_peak_gflops:.0f} GFLOP/s, "
        f"read bandwidth {report.read_bandwidth_gbs:.1f} GB/s.",
        f"Weights read per forward pass: {weights}. Setup (export/compile + warmup): {setup}.",
    ]


def _recall_lines(report: BenchmarkReport) -> list[str]:
    check = report.recall
    if check is None:
        return []
    lines = [f"Recall@10 on {check.source} (tolerance {check.tolerance} below eager):", ""]
    lines.append("| backend | Recall@10 | drop vs eager | holds |")
    lines.append("|---|---|---|---|")
    for name, value in check.recall_at_10.items():
        verdict = "yes" if check.holds(name) else "**no**"
        lines.append(f"| {name} | {value:.4f} | {check.drop_vs_eager[name]:+.4f} | {verdict} |")
    return lines


_INT8_COLUMNS: Final = (
    "int8 scheme",
    "MB",
    "batch-1 p50 ms",
    "vs fp32",
    "min cosine",
    "Recall@10 drop",
    "verdict",
)


def _int8_rows(verdict: QuantizationResult) -> list[list[str]]:
    chosen = verdict.options if verdict.accepted else None
    rows = []
    for c in verdict.candidates:
        state = "**chosen**" if c.options == chosen else ("passes" if c.passed else c.reason or "")
        rows.append(
            [
                c.options.label,
                f"{c.int8_bytes / 1e6:.1f}",
                "-" if c.p50_ms is None else f"{c.p50_ms:.2f}",
                "-" if c.speedup is None else f"{c.speedup:.2f}x",
                f"{c.parity_vs_fp32.min_cosine:.5f}",
                f"{c.recall_drop:+.4f}",
                state,
            ]
        )
    return rows


def _int8_intro(verdict: QuantizationResult) -> str:
    fp32 = "" if verdict.p50_ms_fp32 is None else f"; fp32 ONNX p50 {verdict.p50_ms_fp32:.2f} ms"
    return (
        f"int8 schemes judged on this {verdict.cpu} CPU against fp32 ONNX "
        f"({verdict.fp32_bytes / 1e6:.1f} MB{fp32}), fastest passing one chosen:"
    )


def _int8_lines(report: BenchmarkReport) -> list[str]:
    verdict = report.quantization
    if verdict is None:
        return []
    lines = [_int8_intro(verdict), "", "| " + " | ".join(_INT8_COLUMNS) + " |"]
    lines.append("|" + "---|" * len(_INT8_COLUMNS))
    lines.extend("| " + " | ".join(cells) + " |" for cells in _int8_rows(verdict))
    return lines


def _int8_html(report: BenchmarkReport, heading: str = "h2") -> str:
    verdict = report.quantization
    if verdict is None:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in _INT8_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c.strip('*'))}</td>" for c in cells) + "</tr>"
        for cells in _int8_rows(verdict)
    )
    return (
        f"<{heading}>int8</{heading}><p>{escape(_int8_intro(verdict))}</p>"
        f'<div class="wrap"><table><tr>{head}</tr>{body}</table></div>'
    )


def render_markdown(report: BenchmarkReport) -> str:
    lines = [f"## {report.title}", "", *_header_lines(report), ""]
    lines.append("| " + " | ".join(_COLUMNS) + " |")
    lines.append("|" + "---|" * len(_COLUMNS))
    lines.extend("| " + " | ".join(_cells(row)) + " |" for row in report.rows)
    lines.append("")
    lines.append(
        "p50 / floor: p50 over (weight bytes / read bandwidth); 1.0 means the weights were "
        "streamed once at full bandwidth. % matmul peak is against the fp32 peak for every "
        "backend, int8 included. Speedups and parity are against eager in the same run."
    )
    for section in (_recall_lines(report), _int8_lines(report)):
        if section:
            lines.extend(["", *section])
    if report.notes:
        lines.extend(["", *(f"- {note}" for note in report.notes)])
    return "\n".join(lines) + "\n"


def render_section(report: BenchmarkReport, heading: str = "h1") -> str:
    """The report as one ``<section>``: pages with several reports put them one after another."""
    sub = "h3" if heading == "h2" else "h2"
    head = "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _cells(row)) + "</tr>"
        for row in report.rows
    )
    intro = "".join(f"<p>{escape(line)}</p>" for line in _header_lines(report))
    recall = ""
    if report.recall is not None:
        check = report.recall
        recall_rows = "".join(
            f"<tr><td>{escape(n)}</td><td>{v:.4f}</td><td>{check.drop_vs_eager[n]:+.4f}</td>"
            f"<td>{'yes' if check.holds(n) else 'no'}</td></tr>"
            for n, v in check.recall_at_10.items()
        )
        recall = f"<{sub}>Recall@10 on {escape(check.source)}</{sub}>" + wrap(
            "<table><tr><th>backend</th><th>Recall@10</th><th>drop vs eager</th>"
            f"<th>holds (≤ {check.tolerance})</th></tr>{recall_rows}</table>"
        )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    speedups = {(row.backend, row.batch_size): row.speedup_vs_eager for row in report.rows}
    return (
        f"<section><{heading}>{escape(report.title)}</{heading}>{intro}"
        f"<{sub}>Speedup vs eager (same run)</{sub}>{wrap(speedup_chart(speedups))}"
        f"<{sub}>Latency, parity and roofline</{sub}>"
        + wrap(f"<table><tr>{head}</tr>{body}</table>")
        + f"{recall}{_int8_html(report, sub)}"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</section>"
    )


def render_html(report: BenchmarkReport) -> str:
    return render_page(report.title, [render_section(report)])
