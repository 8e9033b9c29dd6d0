"""The benchmark page's frame and speedup chart, without running a benchmark."""

from __future__ import annotations

from prime_model.bench.report_html import COLOURS, render_page, speedup_chart, wrap


def test_the_chart_has_one_bar_per_backend_and_batch_size() -> None:
    speedups = {("eager", 1): 1.0, ("onnx", 1): 2.5, ("eager", 8): 1.0, ("onnx", 8): 3.0}
    svg = speedup_chart(speedups)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 4 + 2  # the bars, then one legend swatch per backend
    assert "onnx batch 8: 3.00x" in svg and "batch 1</text>" in svg
    assert COLOURS["onnx"] in svg and "#888" not in svg  # every backend has its colour
    assert "#888" in speedup_chart({("other", 1): 1.0})


def test_the_page_wraps_sections_without_scripts() -> None:
    page = render_page("A & B", ["<section>one</section>", "<section>two</section>"])
    assert "<title>A &amp; B</title>" in page and "<script" not in page
    assert "<section>one</section><section>two</section>" in page
    assert wrap("<table></table>") == '<div class="wrap"><table></table></div>'
