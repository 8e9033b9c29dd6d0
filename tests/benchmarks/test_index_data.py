"""The index-choice benchmark's data and ground truth, on tiny synthetic sets and ``tmp_path``
shards (never ``../shared`` or the real embedding cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from benchmarks.index_data import (
    clustered_unit_vectors,
    dedupe_rows,
    exact_search,
    load_vectors,
    read_cache_vectors,
    recall_at_k,
    split_corpus_queries,
)


def test_exact_search_is_best_first_and_recall_counts_overlap() -> None:
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((300, 8)).astype(np.float32)
    queries = rng.standard_normal((7, 8)).astype(np.float32)
    found = exact_search(corpus, queries, k=5)
    reference = np.argsort(-(queries @ corpus.T), axis=1)[:, :5]
    np.testing.assert_array_equal(found, reference)
    assert recall_at_k(found, reference) == 1.0
    assert recall_at_k(found + 300, reference) == 0.0
    half = np.concatenate([reference[:, :2], reference[:, 2:] + 300], axis=1)
    assert recall_at_k(half, reference) == pytest.approx(2 / 5)


def test_split_is_seeded_and_disjoint() -> None:
    vectors = dedupe_rows(clustered_unit_vectors(500, dim=16, seed=2))
    corpus, queries = split_corpus_queries(vectors, 400, 50, seed=3)
    again, _ = split_corpus_queries(vectors, 400, 50, seed=3)
    np.testing.assert_array_equal(corpus, again)
    rows = {row.tobytes() for row in corpus}
    assert not any(q.tobytes() in rows for q in queries)
    with pytest.raises(ValueError, match="needed"):
        split_corpus_queries(vectors, 480, 50, seed=0)


def _shard(path: Path, vectors: np.ndarray, first_key: int) -> None:
    keys = np.zeros((len(vectors), 32), dtype=np.uint8)
    keys[:, 0] = np.arange(first_key, first_key + len(vectors))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"keys": keys, "vectors": vectors.astype(np.float32)}, str(path))


def test_cache_vectors_are_read_deduplicated_and_bad_shards_skipped(tmp_path: Path) -> None:
    vectors = clustered_unit_vectors(30, dim=8, seed=4)
    folder = tmp_path / "all-MiniLM-L6-v2-0123456789abcdef"
    _shard(folder / "a.safetensors", vectors[:20], 0)
    _shard(folder / "b.safetensors", vectors[10:], 20)  # rows 10..19 again, under other keys
    (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    _shard(folder / "wide.safetensors", clustered_unit_vectors(5, dim=12), 40)  # other dim
    _shard(tmp_path / "other-encoder-0000/c.safetensors", vectors[:3] + 1, 50)  # not read
    found, keys, shards = read_cache_vectors(tmp_path)
    assert found.shape == (30, 8)
    assert {r.tobytes() for r in found} == {r.tobytes() for r in vectors}
    assert len(keys) == 40
    assert [s.name for s in shards] == ["a.safetensors", "b.safetensors"]


def test_load_vectors_uses_the_cache_else_says_synthetic(tmp_path: Path) -> None:
    vectors = clustered_unit_vectors(60, dim=8, seed=5)
    _shard(tmp_path / "cache" / "all-MiniLM-L6-v2-0123456789abcdef" / "a.safetensors", vectors, 0)
    no_data = tmp_path / "no-data"
    real = load_vectors(50, "auto", tmp_path / "cache", no_data)
    assert real.kind == "real-cache"
    assert len(real.vectors) == 60
    short = load_vectors(100, "auto", tmp_path / "cache", no_data)
    assert short.kind == "synthetic"
    assert "SYNTHETIC" in short.description
    assert short.vectors.shape == (100, 384)
    assert short.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(short.vectors, axis=1), 1.0, rtol=1e-5)
    assert load_vectors(10, "synthetic", tmp_path / "cache", no_data).kind == "synthetic"
