"""The search structures: exact numpy search and FAISS HNSW, and how their files fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prime_model.errors import RetrievalError
from prime_model.retrieve._faiss import faiss
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.retrieve.index_files import IndexFiles
from prime_model.retrieve.search_backends import ExactBackend, HnswBackend, load_backend
from tests.prime_model.retrieve.support import tiny_index, unit_rows


def _recall_at_10(index: RetrievalIndex, exact: RetrievalIndex, queries: np.ndarray) -> float:
    found = index.search(queries, 10)
    truth = exact.search(queries, 10)
    overlap = [
        len({h.id for h in a} & {h.id for h in b}) for a, b in zip(found, truth, strict=True)
    ]
    return sum(overlap) / (10 * len(queries))


def test_exact_search_ranks_by_inner_product() -> None:
    index = tiny_index(30)
    vectors = index.vectors()
    query = vectors[7]
    hits = index.search(query, 5)[0]
    assert hits[0].id == "doc-7"
    assert hits[0].text == "text of document 7"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    expected = np.argsort(-(vectors @ query))[:5]
    assert [h.id for h in hits] == [f"doc-{i}" for i in expected]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hnsw_finds_what_exact_search_finds() -> None:
    corpus = unit_rows(3000, 32, seed=1)
    ids, texts = [str(i) for i in range(3000)], ["t"] * 3000
    hnsw = RetrievalIndex.build(ids, texts, corpus, encoder_name="e")
    exact = RetrievalIndex.build(
        ids, texts, corpus, encoder_name="e", config=IndexConfig(kind="exact")
    )
    # queries near corpus items, as predicted embeddings land near their targets
    queries = corpus[:200] + 0.3 * unit_rows(200, 32, seed=2)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    assert _recall_at_10(hnsw, exact, queries) >= 0.98


def test_exact_backend_returns_the_best_rows_first() -> None:
    vectors = unit_rows(20, 8, seed=3)
    scores, rows = ExactBackend(vectors).search(vectors[:2], 25)  # k beyond the corpus: all
    assert rows.shape == (2, 20)
    assert rows[:, 0].tolist() == [0, 1]
    assert (np.diff(scores, axis=1) <= 0).all()


def test_a_failed_faiss_write_is_an_oserror_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """atomic_directory turns OSErrors into one clear write error; FAISS raises RuntimeError."""
    backend = HnswBackend.build(unit_rows(10, 8), IndexConfig())

    def fail(index: object, path: str) -> None:
        raise RuntimeError("Error in write: 4331 != 68568 (File too large)")

    monkeypatch.setattr(faiss, "write_index", fail)
    with pytest.raises(OSError, match=r"FAISS could not write the index \(File too large\)"):
        backend.save(tmp_path / "graph.faiss")


def _files(data: Path) -> IndexFiles:
    return IndexFiles(meta={}, config={}, ids=[], texts=[], data=data, exact_vectors=None)


def test_load_refuses_an_unreadable_or_foreign_faiss_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.faiss"
    garbage.write_bytes(b"not a faiss index")
    with pytest.raises(RetrievalError, match="unreadable HNSW index"):
        load_backend(_files(garbage), IndexConfig())
    flat = tmp_path / "flat.faiss"
    index = faiss.IndexFlatIP(8)
    index.add(unit_rows(4, 8))
    faiss.write_index(index, str(flat))
    with pytest.raises(RetrievalError, match="a IndexFlatIP; expected an HNSW flat index"):
        load_backend(_files(flat), IndexConfig())
