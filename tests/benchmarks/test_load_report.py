"""The load test's report: passes kept apart, rates per client added up, memory judged after the
warm-up; and the real index's text choice (cached texts first). No server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.load_clients import FIRST, WARM, ClientRun, Samples
from benchmarks.load_report import (
    code_version,
    markdown,
    memory_result,
    summarize,
    summarize_pass,
)
from benchmarks.load_server import cached_first
from prime_model.encode.cache import text_key


def _run(first: list[float], warm: list[float], seconds: tuple[float, float]) -> ClientRun:
    return ClientRun(
        samples={
            (FIRST, "retrieve"): Samples(first),
            (WARM, "retrieve"): Samples(warm, {"HTTP 503": 1}),
            (FIRST, "register"): Samples([1.0, 2.0]),
        },
        seconds={FIRST: seconds[0], WARM: seconds[1]},
    )


def test_first_pass_and_warm_are_separate_rows_with_rates_per_client() -> None:
    runs = [_run([100.0] * 10, [5.0] * 40, (2.0, 4.0)), _run([300.0] * 5, [], (5.0, 1.0))]
    result = summarize("s", 100, 6.0, runs, order="conversation")
    assert [(p.phase, p.kind) for p in result.passes] == [
        (FIRST, "retrieve"), (FIRST, "register"), (WARM, "retrieve"),
    ]  # fmt: skip
    first, warm = result.at(FIRST), result.at(WARM)
    assert first is not None and warm is not None
    assert first.requests == 15 and first.requests_per_s == pytest.approx(10 / 2 + 5 / 5)
    assert first.p50_ms == 100.0 and first.p99_ms > 290.0 and not first.errors
    assert warm.requests == 40 and warm.requests_per_s == pytest.approx(10.0)
    assert warm.p90_ms == 5.0 and warm.errors == {"HTTP 503": 2}
    assert result.at(WARM, "register") is None
    assert summarize_pass(runs, WARM, "nothing") is None


def test_a_pass_with_only_errors_has_no_percentiles() -> None:
    run = ClientRun({(FIRST, "retrieve"): Samples([], {"HTTP 422": 3})}, {FIRST: 1.0})
    only = summarize_pass([run], FIRST, "retrieve")
    assert only is not None and only.requests == 0 and math.isnan(only.p50_ms)
    table = markdown([summarize("s", 1, 1.0, [run])])
    assert "| 0 | 0.0 | - | - | - | 3 {'HTTP 422': 3} |" in table


def test_memory_after_the_warm_up_against_the_end() -> None:
    samples = [(0.0, 900.0), (10.0, 1200.0), (20.0, 1250.0), (300.0, 1290.0)]
    memory = memory_result(samples, warmup_s=15.0, peak_mb=1300.0)
    assert memory is not None
    assert (memory.start_mb, memory.warm_mb, memory.end_mb) == (900.0, 1250.0, 1290.0)
    assert memory.change == pytest.approx(0.032) and memory.flat and memory.seconds == 300.0
    grown = memory_result([*samples, (400.0, 1400.0)], warmup_s=15.0)
    assert grown is not None and not grown.flat and grown.peak_mb is None
    short = memory_result(samples[:2], warmup_s=60.0)  # shorter than the warm-up: last sample
    assert short is not None and short.warm_mb == 1200.0
    assert memory_result([], warmup_s=1.0) is None


def test_the_memory_table_says_flat_or_not() -> None:
    run = ClientRun({(FIRST, "retrieve"): Samples([1.0])}, {FIRST: 1.0})
    flat = memory_result([(0.0, 100.0), (5.0, 100.0), (60.0, 104.0)], warmup_s=5.0)
    grew = memory_result([(0.0, 100.0), (5.0, 100.0), (60.0, 110.0)], warmup_s=5.0)
    table = markdown([
        summarize("s", 1, 60.0, [run], order="conversation", memory=flat, cache_hit_rate=0.5,
                  load_avg_1m=7.0),
        summarize("s", 1, 60.0, [run], order="shuffled", memory=grew),
    ])  # fmt: skip
    flat_row = "| s | conversation | 1 | 1 | 60 | 100 | 100 (at 5 s) | 104 | - | +4.0% | yes | 7.0"
    assert flat_row + " |" in table
    assert "| s | shuffled | 1 | 1 | 60 | 100 | 100 (at 5 s) | 110 | - | +10.0% | NO | - |" in table
    assert "| 50% |" in table


def test_the_index_takes_cached_texts_first_without_repeats_or_blanks() -> None:
    texts = ["a", "b", "a", "  ", "c", "d"]
    cached = {text_key("c"), text_key("d")}
    assert cached_first(texts, cached, items=3) == ["c", "d", "a"]
    assert cached_first(texts, cached, items=10) == ["c", "d", "a", "b"]
    assert cached_first(texts, set(), items=2) == ["a", "b"]


def test_the_header_names_the_served_code() -> None:
    if not Path(".git").exists():
        pytest.skip("not run from a git checkout")
    version = code_version()
    assert version.startswith("commit ") and not version.startswith("commit ?")
