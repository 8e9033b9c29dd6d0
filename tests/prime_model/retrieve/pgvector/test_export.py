"""export_index: a whole table swapped in one transaction, or nothing changed."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from prime_model.errors import RetrievalError
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.retrieve.pgvector import PgVectorIndex, export_index
from tests.prime_model.retrieve.pgvector.support import ENCODER, TABLE, D, N, corpus, sql
from tests.prime_model.retrieve.support import unit_rows

pytestmark = pytest.mark.slow  # a real PostgreSQL server (pgserver), started per package


def test_exact_export_without_hnsw(dsn: str, exact: RetrievalIndex) -> None:
    with export_index(exact, dsn, "prime_exact", hnsw=False) as index:
        assert not index.hnsw
        queries = unit_rows(20, D, seed=6)
        found = [[h.id for h in hits] for hits in index.search(queries, 10)]
        assert found == [[h.id for h in hits] for hits in exact.search(queries, 10)]
    indexes = sql(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'prime_exact'")
    assert indexes == [("prime_exact_pkey",)]


def test_reexport_replaces_the_table_atomically(dsn: str) -> None:
    table = "prime_swap"
    ids_a, texts_a = corpus(200, prefix="a")
    ids_b, texts_b = corpus(300, prefix="b")
    old = RetrievalIndex.build(ids_a, texts_a, unit_rows(200, D, 7), encoder_name="enc-a")
    new = RetrievalIndex.build(ids_b, texts_b, unit_rows(300, D, 8), encoder_name="enc-b")
    seen: set[str] = set()
    errors: list[BaseException] = []
    done = threading.Event()
    with export_index(old, dsn, table) as reader:

        def read() -> None:  # one query per search: each sees one table, old or new
            query = unit_rows(1, D, 9)
            while not done.is_set():
                try:
                    prefixes = {h.id.split("-")[0] for h in reader.search(query, 10)[0]}
                except RetrievalError as exc:
                    errors.append(exc)
                    return
                if len(prefixes) != 1:
                    errors.append(AssertionError(f"one search saw both tables: {prefixes}"))
                seen.update(prefixes)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            with export_index(new, dsn, table) as replaced:
                assert (len(replaced), replaced.encoder_name) == (300, "enc-b")
            after = reader.search(unit_rows(1, D, 9), 10)[0]
        finally:
            done.set()
            thread.join()
    assert not errors, errors
    assert "a" in seen and seen <= {"a", "b"} and all(h.id.startswith("b-") for h in after)
    tables = sql(dsn, "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", f"{table}%")
    assert tables == [(table,)]  # no build table left behind
    indexes = sql(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = %s", table)
    names = {row[0] for row in indexes}
    assert names == {f"{table}_pkey", f"{table}_hnsw"}


class _BrokenVectors(RetrievalIndex):
    """Claims 16-d but hands 8-d rows to COPY: the export fails inside its transaction."""

    def vectors(self) -> np.ndarray:
        return np.ascontiguousarray(super().vectors()[:, :8])


def test_a_failed_export_leaves_the_old_table(dsn: str, exported: PgVectorIndex) -> None:
    ids, texts = corpus(10, prefix="broken")
    broken = _BrokenVectors.build(
        ids, texts, unit_rows(10, D, 10), encoder_name="e", config=IndexConfig(kind="exact")
    )
    with pytest.raises(RetrievalError, match=r"failed \(nothing changed\).*dimensions"):
        export_index(broken, dsn, TABLE)
    with PgVectorIndex.connect(dsn, TABLE) as index:
        assert (len(index), index.encoder_name) == (N, ENCODER)
        assert index.search(unit_rows(1, D, 11), 1)[0][0].id.startswith("doc-")


def test_the_encoder_fingerprint_travels_with_the_table(dsn: str) -> None:
    """The server compares it with its request encoder's, as for an index directory."""
    ids, texts = corpus(5, prefix="fp")
    index = RetrievalIndex.build(
        ids, texts, unit_rows(5, D, 12), encoder_name="e", encoder_fingerprint="weights-v1",
        config=IndexConfig(kind="exact"),
    )  # fmt: skip
    with export_index(index, dsn, "prime_fingerprinted", hnsw=False) as exported:
        assert exported.encoder_fingerprint == "weights-v1"
    with PgVectorIndex.connect(dsn, "prime_fingerprinted") as reopened:
        assert reopened.encoder_fingerprint == "weights-v1"
