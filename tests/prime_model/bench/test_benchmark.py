from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from prime_model import ConfigError
from prime_model.bench.benchmark import run_benchmark
from prime_model.bench.machine import measure_matmul_peak, measure_read_bandwidth, model_flops
from prime_model.bench.report import BenchmarkReport
from prime_model.model_inputs import ModelInputs
from prime_model.runtime.serving import ServingForward, serving_flops
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, tiny_model


@pytest.fixture(scope="module")
def report() -> BenchmarkReport:
    return run_benchmark(
        tiny_model(), ("eager", "onnx", "onnx-int8"), (1, 4), repeats=3, budget_s=5.0
    )


def test_report_has_every_backend_at_every_batch_size(report: BenchmarkReport) -> None:
    assert [(r.backend, r.batch_size) for r in report.rows] == [
        (backend, batch) for batch in (1, 4) for backend in ("eager", "onnx", "onnx-int8")
    ]
    for batch in (1, 4):
        eager = report.row("eager", batch)
        assert eager.speedup_vs_eager == 1.0 and eager.parity_vs_eager.max_abs_diff == 0.0
        onnx = report.row("onnx", batch)
        assert onnx.parity_vs_eager.max_abs_diff < 1e-5
        assert onnx.speedup_vs_eager == pytest.approx(eager.p50_ms / onnx.p50_ms)
        int8 = report.row("onnx-int8", batch).parity_vs_eager.min_cosine
        verdict = report.quantization
        assert verdict is not None  # judged on the synthetic self-retrieval set
        if verdict.accepted:  # the chosen scheme met the rule here, so it is close to eager too
            assert int8 > verdict.parity_vs_fp32.min_cosine - 1e-4 > 0.998
    for row in report.rows:
        assert row.runs == 3 and row.p95_ms >= row.p50_ms > 0
        assert row.throughput == pytest.approx(row.batch_size / row.p50_ms * 1e3)
        flops = report.flops_per_row[row.backend]
        assert row.gflops == pytest.approx(flops * row.batch_size / row.p50_ms / 1e6)
        assert row.peak_fraction == pytest.approx(row.gflops / report.matmul_peak_gflops)
        assert row.floor_ratio == pytest.approx(row.p50_ms / row.floor_ms)
    assert report.weight_bytes["onnx-int8"] < report.weight_bytes["onnx"]
    assert report.matmul_peak_gflops > 0 and report.read_bandwidth_gbs > 0
    with pytest.raises(KeyError, match="no row for backend 'compiled'"):
        report.row("compiled", 1)


def test_int8_is_chosen_for_this_cpu_and_the_report_says_so(report: BenchmarkReport) -> None:
    verdict = report.quantization
    assert verdict is not None and verdict.cpu == report.machine.instruction_set
    assert len(verdict.candidates) >= 2 and verdict.p50_ms_fp32 is not None
    note = next(n for n in report.notes if n.startswith("onnx-int8"))
    assert ("accepted" in note) is verdict.accepted
    if not verdict.accepted:
        assert verdict.reason and "REJECTED" in note
    markdown = report.to_markdown()
    assert f"judged on this {verdict.cpu} CPU" in markdown
    assert all(c.options.label in markdown for c in verdict.candidates)
    assert "<h2>int8</h2>" in report.to_html()


def test_zero_repeats_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="repeats must be at least 1"):
        run_benchmark(tiny_model(), ("eager",), (1,), repeats=0)


def test_synthetic_recall_check_without_an_evaluation_set(report: BenchmarkReport) -> None:
    assert report.recall is not None and "synthetic" in report.recall.source
    assert report.recall.recall_at_10["eager"] == 1.0
    assert report.recall.holds("onnx")


def test_markdown_html_and_json(report: BenchmarkReport) -> None:
    markdown = report.to_markdown()
    assert "| backend | batch | p50 ms |" in markdown and "| onnx-int8 | 4 |" in markdown
    assert "read bandwidth" in markdown and "Recall@10" in markdown
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<script" not in html
    assert BenchmarkReport.model_validate_json(report.to_json()) == report


def test_flop_count_matches_torch_flop_counter() -> None:
    model = tiny_model()
    context, query = torch.randn(1, 3, 16), torch.randn(1, 16)
    mask = torch.ones(1, 3, dtype=torch.bool)
    # the math SDPA kernel runs attention as matmuls, which the counter sees
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(context, query, mask)
    assert model_flops(CONFIG, 3) == counter.get_total_flops()


def test_measurements_are_positive() -> None:
    assert measure_matmul_peak(size=128, repeats=2) > 0
    assert measure_read_bandwidth(nbytes=1 << 20, repeats=2) > 0


def test_evaluation_set_and_compile_fallback_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("compiler unavailable")

    monkeypatch.setattr(torch, "compile", broken)
    evaluation = make_encoded(m=20, n=CONFIG.max_context_length, d=16, k=15)
    result = run_benchmark(
        tiny_model(), ("compiled",), (2,), repeats=2, evaluation=evaluation, context_turns=2
    )
    assert result.context_turns == 2 and {r.backend for r in result.rows} == {"eager", "compiled"}
    assert any("torch.compile failed" in note for note in result.notes)
    assert result.recall is not None and result.recall.source.startswith("evaluation set (20")
    assert result.recall.drop_vs_eager["compiled"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backends": ("tensorrt",)}, "unknown backends"),
        ({"backends": ()}, "unknown backends"),
        ({"batch_sizes": (0,)}, "batch sizes must be positive"),
        ({"batch_sizes": (16,)}, "exceeds max_batch_size=8"),
        ({"batch_sizes": (1,), "context_turns": 9}, r"context_turns must be in \[0, 4\]"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_benchmark(tiny_model(), **kwargs)  # type: ignore[arg-type]


def test_serving_graph_equals_the_model_with_fewer_flops() -> None:
    model = tiny_model()
    serving = ServingForward(model)
    context, query = torch.randn(3, 4, 16), torch.randn(3, 16)
    mask = torch.rand(3, 4) < 0.6
    mask[:, -1] = True
    with torch.inference_mode():
        want = model.forward_unchecked(ModelInputs(context, query, mask))
        got = serving(context, query, mask)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        serving(context[:1], query[:1], mask[:1])
    assert serving_flops(CONFIG, 4) == counter.get_total_flops() < model_flops(CONFIG, 4)
