"""PgVectorIndex: searching an exported table, from many threads, across a dropped connection."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from prime_model.errors import RetrievalError
from prime_model.http.request import RetrievalRequest
from prime_model.http.service import Retriever
from prime_model.retrieve.index import RetrievalIndex, SearchIndex
from prime_model.retrieve.pgvector import PgVectorIndex, export_index
from tests.conftest import CountingEncoder
from tests.prime_model.retrieve.pgvector.support import ENCODER, TABLE, D, N, sql
from tests.prime_model.retrieve.support import TINY, tiny_retriever, unit_rows

pytestmark = pytest.mark.slow  # a real PostgreSQL server (pgserver), started per package

with contextlib.suppress(ImportError):  # without it the server fixture skips
    from psycopg import sql as psql


def test_hnsw_search_matches_exact_search(
    dsn: str, exported: PgVectorIndex, exact: RetrievalIndex
) -> None:
    with PgVectorIndex.connect(dsn, TABLE) as index:
        # 500 rows are few enough for the planner to scan them all (exactly); make it use the
        # HNSW graph, as it does on a real corpus, so the recall measured is the graph's
        conn = index._connection()
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            psql.SQL(
                "EXPLAIN SELECT id, text, embedding <#> %(q)s AS distance FROM {} "
                "ORDER BY distance LIMIT %(k)s"
            ).format(psql.Identifier(TABLE)),
            {"q": unit_rows(1, D)[0], "k": 10},
        ).fetchall()
        assert f"Index Scan using {TABLE}_hnsw" in "\n".join(row[0] for row in plan)
        queries = unit_rows(60, D, seed=1)
        found, truth = index.search(queries, 10), exact.search(queries, 10)
        first = index.search(exact.vectors()[3], 1)[0][0]
    assert all(len(hits) == 10 for hits in found)
    overlap = [
        len({h.id for h in a} & {h.id for h in b}) for a, b in zip(found, truth, strict=True)
    ]
    assert sum(overlap) / (10 * len(queries)) >= 0.98
    top1 = np.mean([a[0].id == b[0].id for a, b in zip(found, truth, strict=True)])
    assert top1 >= 0.95
    by_id = dict(zip(exact.ids, exact.vectors(), strict=True))
    for query, hits in zip(queries, found, strict=True):
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)  # best first: `<#>` is negated back
        assert scores == pytest.approx([float(by_id[h.id] @ query) for h in hits], abs=1e-5)
    assert (first.id, first.text) == ("doc-3", exact.texts[3])
    assert first.score == pytest.approx(1.0, abs=1e-5)


def test_connect_round_trip_and_protocol(
    dsn: str, exported: PgVectorIndex, exact: RetrievalIndex
) -> None:
    with PgVectorIndex.connect(dsn, TABLE, ef_search=64, dim=D, encoder_name=ENCODER) as index:
        served: SearchIndex = index  # what Retriever accepts
        assert (served.dim, served.encoder_name, served.kind, len(served)) == (
            D,
            ENCODER,
            "pgvector",
            N,
        )
        assert index.hnsw and index.ef_search == 64
        queries = unit_rows(5, D, seed=2)
        ids = [[h.id for h in hits] for hits in index.search(queries, 5)]
        assert ids == [[h.id for h in hits] for hits in exact.search(queries, 5)]
        assert "prime_corpus" in repr(index) and "500 items" in repr(index)


def test_k_beyond_ef_search_still_returns_k(dsn: str, exported: PgVectorIndex) -> None:
    with PgVectorIndex.connect(dsn, TABLE, ef_search=5) as index:
        assert [len(hits) for hits in index.search(unit_rows(3, D, seed=3), 40)] == [40] * 3
        assert len(index.search(unit_rows(1, D, seed=3), 5)[0]) == 5
        setting = index._connection().execute("SHOW hnsw.ef_search").fetchone()
        assert setting == ("5",)  # connect's setting; only one search raised it, locally
        with pytest.raises(RetrievalError, match=r"ef_search is 2000; expected 1\.\.1000"):
            PgVectorIndex.connect(dsn, TABLE, ef_search=2000)


def test_searches_from_many_threads(exported: PgVectorIndex) -> None:
    """The service answers on a thread pool: each thread gets its own connection."""
    queries = unit_rows(8, D, seed=4)
    expected = [[h.id for h in hits] for hits in exported.search(queries, 5)]
    results: dict[int, list[str]] = {}

    def one(i: int) -> None:
        results[i] = [h.id for h in exported.search(queries[i], 5)[0]]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(queries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(queries))] == expected


def test_reconnects_once_after_the_server_drops_it(dsn: str, exported: PgVectorIndex) -> None:
    before = exported.search(unit_rows(1, D, seed=5), 3)
    sql(
        dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'prime' AND pid <> pg_backend_pid()",
    )
    assert exported.search(unit_rows(1, D, seed=5), 3) == before


def test_a_retriever_serves_from_postgres(dsn: str) -> None:
    encoder = CountingEncoder(dim=TINY.input_dim)
    embedded = tiny_retriever(encoder)
    assert isinstance(embedded.index, RetrievalIndex)
    with export_index(embedded.index, dsn, "prime_service", hnsw=False) as index:
        served = Retriever(embedded.predictor, encoder, index, model_version="tiny:1")
        request = RetrievalRequest(history=["first turn"], query="and then?", top_k=4)
        answer = served.answer(request)
        assert [h.id for h in answer.hits] == [h.id for h in embedded.answer(request).hits]
        assert served.info()["index"] == {"kind": "pgvector", "items": 50}
        with pytest.raises(RetrievalError, match="encoded with 'counting-stub'"):
            Retriever(embedded.predictor, CountingEncoder(16, "other"), index, model_version="x")


def test_mismatches_are_refused_at_connect(dsn: str, exported: PgVectorIndex) -> None:
    with pytest.raises(RetrievalError, match="holds 16-d vectors, expected 32-d"):
        PgVectorIndex.connect(dsn, TABLE, dim=32)
    with pytest.raises(RetrievalError, match="encoded with 'test-encoder', expected 'other'"):
        PgVectorIndex.connect(dsn, TABLE, encoder_name="other")
    with pytest.raises(RetrievalError, match=r"expected B×16"):
        exported.search(unit_rows(2, 8), 3)
    with pytest.raises(RetrievalError, match="expected L2-normalised"):
        exported.search(np.ones((1, D)), 3)
