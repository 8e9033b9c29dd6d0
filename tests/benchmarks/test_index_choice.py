"""The index-choice benchmark on tiny synthetic sets: recall, sweep, choice and report files.

Never touches ``../shared`` or the real embedding cache: vectors are synthetic or written into
``tmp_path`` shards.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from benchmarks.index_candidates import CANDIDATES, Settings
from benchmarks.index_choice import (
    Row,
    choice_text,
    choose,
    main,
    measure_size,
    smallest_passing_breadth,
)
from benchmarks.index_data import clustered_unit_vectors, split_corpus_queries

# a deliberately weak graph, so that a narrow search breadth can lose recall
TINY = Settings(
    m=4,
    ef_construction=16,
    ef_search=(10, 64),
    threads=(1,),
    build_threads=1,
    usearch_dtypes=("f32",),
    budget_s=5.0,
)


def _expected_names(settings: Settings) -> set[str]:
    names = set(settings.candidates) - {"usearch"}
    return names | {f"usearch-{d}" for d in settings.usearch_dtypes}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Row], list[str]]:
    vectors = clustered_unit_vectors(2050, clusters=16, seed=1)
    corpus, queries = split_corpus_queries(vectors, 2000, 50, seed=0)
    return measure_size(corpus, queries, TINY, tmp_path_factory.mktemp("indexes"))


def test_every_candidate_is_measured_with_sane_recall(
    measured: tuple[list[Row], list[str]],
) -> None:
    rows, skipped = measured
    assert {r.candidate for r in rows} | set(skipped) == _expected_names(TINY)
    assert "exact-numpy" not in skipped
    for row in rows:
        assert row.p50_ms > 0
        assert row.p50_ms <= row.p95_ms <= row.p99_ms
        assert row.batch_qps > 0
        assert row.disk_mb > 0
        assert row.roundtrip_identical, row
        assert row.timed_queries == 50
    exact = [r for r in rows if r.candidate == "exact-numpy"]
    assert exact
    assert all(r.recall_at_10 == 1.0 for r in exact)
    flat = [r for r in rows if r.candidate == "faiss-flat"]
    assert all(r.recall_at_10 >= 0.99 for r in flat)


def test_a_narrow_search_breadth_recalls_no_more_than_a_wide_one(
    measured: tuple[list[Row], list[str]],
) -> None:
    rows, _ = measured
    swept = [r for r in rows if "efSearch" in r.params]
    assert swept
    for candidate in {r.candidate for r in swept}:
        by_ef = {r.params["efSearch"]: r.recall_at_10 for r in swept if r.candidate == candidate}
        assert set(by_ef) == {10, 64}
        assert by_ef[10] <= by_ef[64], candidate


def _row(candidate: str, recall: float, p99: float, size: int = 100_000, **params: int) -> Row:
    return Row(
        size=size, candidate=candidate, params={**params}, threads=1, recall_at_10=recall,
        p50_ms=p99 / 2, p95_ms=p99 * 0.9, p99_ms=p99, batch_qps=1000.0, build_s=1.0,
        disk_mb=10.0, rss_mb=None, roundtrip_identical=True, timed_queries=1000,
    )  # fmt: skip


def test_the_choice_is_the_fastest_passing_candidate_at_the_largest_size() -> None:
    rows = [
        _row("exact-numpy", 1.0, 9.0),
        _row("faiss-hnsw", 0.97, 0.1, efSearch=32),  # fastest, but misses the recall bar
        _row("faiss-hnsw", 0.99, 0.6, efSearch=64),
        _row("usearch-f32", 0.985, 0.5, efSearch=64),
        _row("hnswlib", 0.999, 0.01, size=10_000, efSearch=32),  # fastest passing, wrong size
    ]
    pick = choose(rows, 100_000)
    assert pick is not None
    assert (pick.candidate, pick.params) == ("usearch-f32", {"efSearch": 64})
    assert choose(rows, 100_000, min_recall=0.995) == rows[0]
    text = choice_text(rows)
    assert text.startswith("Choice at 100,000 vectors: usearch-f32 (efSearch=64, threads 1)")
    assert "18.0x the pick" in text  # exact p99 9.0 / 0.5
    assert "faiss-hnsw (efSearch=64" in text
    assert choose(rows, 100_000, min_recall=1.01) is None
    assert choice_text(rows, min_recall=1.01).startswith("No candidate reached")


def test_the_smallest_passing_breadth_per_candidate() -> None:
    rows = [
        _row("faiss-hnsw", 0.97, 0.1, efSearch=32),
        _row("faiss-hnsw", 0.995, 0.3, efSearch=128),
        _row("faiss-hnsw", 0.985, 0.2, efSearch=64),
        _row("usearch-f16", 0.9, 0.2, efSearch=256),
        _row("faiss-flat", 1.0, 2.0),
    ]
    (best,) = smallest_passing_breadth(rows)
    assert (best.candidate, best.params["efSearch"]) == ("faiss-hnsw", 64)
    assert dataclasses.replace(best, threads=2).label == "efSearch=64"


def test_main_writes_the_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "--data", "synthetic", "--sizes", "400,800", "--queries", "40", "--out", str(out),
            "--m", "8", "--ef-construction", "32", "--ef-search", "16,32", "--threads", "1",
            "--usearch-dtypes", "f32,i8", "--budget-s", "3",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "index_choice.json").read_text(encoding="utf-8"))
    assert report["data"]["kind"] == "synthetic"
    assert {"processor", "avx2", "avx512", "instruction_set"} <= set(report["machine"])
    names = _expected_names(Settings(usearch_dtypes=("f32", "i8")))
    for size in (400, 800):
        measured = {r["candidate"] for r in report["rows"] if r["size"] == size}
        assert measured | set(report["skipped"]) == names
    pick = report["choice"]
    assert pick is None or (pick["size"] == 800 and pick["recall_at_10"] >= 0.98)
    table = (out / "index_choice.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in table
    assert report["choice_text"] in table
    assert "| 800 | exact-numpy |" in table
    assert "timed calls per variant:" in table
    assert not list(out.glob(".*.tmp"))  # written atomically, nothing left behind


def test_unknown_candidates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", "synthetic", "--candidates", "annoy", "--out", str(tmp_path)])
    assert set(CANDIDATES) >= {"exact-numpy", "faiss-flat", "faiss-hnsw", "usearch", "hnswlib"}
