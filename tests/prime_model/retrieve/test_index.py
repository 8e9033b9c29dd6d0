from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prime_model.errors import RetrievalError
from prime_model.retrieve.index import META_FILE, IndexConfig, RetrievalIndex
from tests.prime_model.retrieve.support import tiny_index, unit_rows


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    index = tiny_index(40, kind=kind)
    loaded = RetrievalIndex.load(index.save(tmp_path / "index"))
    assert (len(loaded), loaded.dim, loaded.encoder_name, loaded.kind) == (
        40,
        12,
        "counting-stub",
        kind,
    )
    queries = unit_rows(5, 12, seed=3)
    assert loaded.search(queries, 4) == index.search(queries, 4)
    np.testing.assert_allclose(loaded.vectors(), index.vectors(), atol=1e-6)


def test_load_may_change_search_settings_not_the_kind(tmp_path: Path) -> None:
    path = tiny_index(40, kind="hnsw").save(tmp_path / "index")
    assert RetrievalIndex.load(path, IndexConfig(ef_search=16)).config.ef_search == 16
    with pytest.raises(RetrievalError, match="cannot search it as 'exact'"):
        RetrievalIndex.load(path, IndexConfig(kind="exact"))


def test_k_larger_than_the_corpus_returns_every_item() -> None:
    assert len(tiny_index(3).search(unit_rows(1, 12), 10)[0]) == 3


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_tampered_files_are_refused_before_parsing(tmp_path: Path, kind: str) -> None:
    path = tiny_index(20, kind=kind).save(tmp_path / "index")
    data = next(p for p in path.iterdir() if p.name not in (META_FILE, "items.parquet"))
    data.write_bytes(data.read_bytes()[:-8])
    with pytest.raises(RetrievalError, match=r"sha256 .* does not match"):
        RetrievalIndex.load(path)


def test_foreign_or_broken_metadata_is_refused(tmp_path: Path) -> None:
    path = tiny_index(5).save(tmp_path / "index")
    meta = path / META_FILE
    original = json.loads(meta.read_text())
    with pytest.raises(RetrievalError, match="not a directory"):
        RetrievalIndex.load(tmp_path / "missing")
    meta.write_text(json.dumps({**original, "format": "other"}))
    with pytest.raises(RetrievalError, match="not a prime-retrieval-index"):
        RetrievalIndex.load(path)
    meta.write_text(json.dumps({**original, "format_version": "9"}))
    with pytest.raises(RetrievalError, match="format version '9'"):
        RetrievalIndex.load(path)
    meta.write_text(json.dumps({k: v for k, v in original.items() if k != "dim"}))
    with pytest.raises(RetrievalError, match=r"malformed field\(s\) \['dim'\]"):
        RetrievalIndex.load(path)
    meta.write_text("{not json")
    with pytest.raises(RetrievalError, match="invalid JSON"):
        RetrievalIndex.load(path)


def test_a_failed_save_keeps_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_index(5).save(tmp_path / "index")
    bigger = tiny_index(9)

    def broken(self: object, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(type(bigger._backend), "save", broken)
    with pytest.raises(OSError, match="disk full"):
        bigger.save(path)
    assert len(RetrievalIndex.load(path)) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


@pytest.mark.parametrize(
    ("ids", "texts", "vectors", "message"),
    [
        (["a", "b"], ["x", "y"], unit_rows(3, 4), "2 ids, 2 texts and 3 vectors"),
        (["a", "a"], ["x", "y"], unit_rows(2, 4), r"corpus ids \['a'\] occur more than once"),
        (["a", ""], ["x", "y"], unit_rows(2, 4), "non-empty strings"),
        (["a"], ["x"], np.zeros((1, 4), np.float32), "row 0 has norm 0.0000"),
        (["a"], ["x"], np.full((1, 4), np.nan, np.float32), "NaN or infinite"),
        ([], [], np.zeros((0, 4), np.float32), r"shape \(0, 4\)"),
        (["a"], ["x"], [["p", "q"]], "expected an N×D array of floats"),
    ],
)
def test_bad_corpora_are_refused(
    ids: list[str], texts: list[str], vectors: object, message: str
) -> None:
    with pytest.raises(RetrievalError, match=message):
        RetrievalIndex.build(ids, texts, vectors, encoder_name="e")  # type: ignore[arg-type]


def test_bad_queries_are_refused() -> None:
    index = tiny_index(5)
    with pytest.raises(RetrievalError, match=r"shape \(1, 11\); expected B×12"):
        index.search(unit_rows(1, 11))
    with pytest.raises(RetrievalError, match=r"norm 2\.0000"):
        index.search(2 * unit_rows(1, 12))
