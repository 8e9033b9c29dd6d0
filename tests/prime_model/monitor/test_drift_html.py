"""The drift summary page: every column, its bar and verdict, and no scripts."""

from __future__ import annotations

from prime_model.monitor.drift import DriftResult, DriftScore
from prime_model.monitor.drift_html import render_drift_html


def test_summary_page_lists_every_column_without_scripts() -> None:
    def score(name: str, value: float, drifted: bool, threshold: float | None) -> DriftScore:
        test = "bootstrap" if threshold is None else "K-S test p-value"
        return DriftScore(
            name=name, score=value, drifted=drifted, method="m", test=test, threshold=threshold
        )

    result = DriftResult(
        drifted=True,
        score=0.91,
        embeddings=[score("query", 0.91, True, None), score("context", 0.52, False, None)],
        columns=[score("query_chars", 0.001, True, 0.05), score("history_turns", 0.4, False, 0.05)],
        reference_rows=120,
        current_rows=80,
    )
    page = render_drift_html(result)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert "<iframe" not in page and "overflow-x:auto" in page
    for name, value in (("query", 0.91), ("context", 0.52), ("query_chars", 0.001)):
        assert f"<td>{name}</td>" in page and f"{value:.4f}" in page
    assert page.count('<tr class="drifted">') == 2 and page.count('<tr class="ok">') == 2
    assert '<td class="num">0.05</td>' in page and "bootstrap" in page
    assert "drift_report_full" in page and "Drifted</strong>" in page
