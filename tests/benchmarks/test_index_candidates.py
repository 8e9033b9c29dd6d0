"""Each index-choice candidate built, saved, loaded again and searched like exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.index_candidates import Settings, build_all, optional_module
from benchmarks.index_data import K, clustered_unit_vectors, exact_search, recall_at_k

SMALL = Settings(
    m=8, ef_search=(64,), threads=(1,), build_threads=1, usearch_dtypes=("f32",), budget_s=5.0
)


def test_every_installed_candidate_round_trips_through_its_file(tmp_path: Path) -> None:
    corpus = clustered_unit_vectors(500, dim=16, clusters=8, seed=1)
    queries = clustered_unit_vectors(20, dim=16, clusters=8, seed=2)
    built, skipped = build_all(corpus, SMALL, tmp_path, queries[:5])
    names = {b.candidate for b in built}
    assert {"exact-numpy", "faiss-flat", "faiss-hnsw"} <= names  # faiss-cpu is a dependency
    assert names | set(skipped) == {"exact-numpy", "faiss-flat", "faiss-hnsw", "usearch-f32",
                                    "hnswlib"}  # fmt: skip
    truth = exact_search(corpus, queries)
    for b in built:
        assert b.roundtrip_identical and b.disk_bytes > 0 and b.build_s >= 0, b.candidate
        for variant in b.variants:
            found = variant.batch(queries)
            assert found.shape == (len(queries), K)
            assert recall_at_k(found, truth) >= 0.9, b.candidate
            assert variant.one(queries[:1]) is not None


def test_a_missing_library_is_none() -> None:
    assert optional_module("numpy") is np
    assert optional_module("no_such_library_here") is None
