"""PgVectorIndex against a real, throwaway PostgreSQL + pgvector server started for this module.

The server comes from ``$PRIME_PG_BINDIR`` (when set, only from there), the ``pgserver`` wheel
(PostgreSQL 16 + pgvector) or Debian's ``/usr/lib/postgresql/<version>/bin``; it listens on a
Unix socket in its own temporary folder only (no TCP port), runs as an unprivileged user when
the tests run as root (initdb refuses root), and is stopped and removed at the end. Server tests
skip, with the reason, when no binaries, no pgvector or no psycopg can be found; the rest run.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import prime_model.retrieve.pgvector as pgvector_module
from prime_model.errors import RetrievalError
from prime_model.retrieve.index import IndexConfig, RetrievalIndex, SearchIndex
from prime_model.retrieve.pgvector import PgVectorIndex, check_table_name, export_index
from prime_model.retrieve.request import RetrievalRequest
from prime_model.retrieve.service import Retriever
from tests.conftest import CountingEncoder
from tests.prime_model.retrieve.support import TINY, tiny_retriever, unit_rows

try:
    import psycopg
    from psycopg import sql
except ImportError:
    HAVE_PSYCOPG = False
else:
    HAVE_PSYCOPG = True

N, D, ENCODER = 500, 16, "test-encoder"
TABLE = "prime_corpus"


def _bindirs() -> list[Path]:
    """Where PostgreSQL's initdb and pg_ctl may be, most likely first ($PRIME_PG_BINDIR only)."""
    if os.environ.get("PRIME_PG_BINDIR"):
        chosen = Path(os.environ["PRIME_PG_BINDIR"])
        return [chosen] if (chosen / "initdb").is_file() and (chosen / "pg_ctl").is_file() else []
    found = []
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.append(Path(location) / "pginstall" / "bin")
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    found += sorted(debian, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)[
        ::-1
    ]
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return [d for d in found if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]


def _has_vector(bindir: Path) -> bool:
    prefix = bindir.parent
    return any(
        (share / "vector.control").is_file()
        for share in (
            prefix / "share" / "postgresql" / "extension",
            prefix / "share" / "extension",
            Path("/usr/share/postgresql") / prefix.name / "extension",  # Debian's layout
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """None: run as ourselves; else the unprivileged account to run PostgreSQL as (root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists")


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    if not HAVE_PSYCOPG:
        pytest.skip("psycopg is not installed: pip install 'prime-predictor[pgvector]'")
    candidates = _bindirs()
    if not candidates:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl); install the pgserver wheel")
    bindir = next((d for d in candidates if _has_vector(d)), candidates[0])
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="prime-pg-"))
    data, log = root / "data", root / "server.log"
    prefix = ["runuser", "-u", user.pw_name, "--"] if user else []
    if user:
        os.chown(root, user.pw_uid, user.pw_gid)
    env = {**os.environ, "LC_ALL": "C"}
    port, started = _free_port(), False

    def run(*args: str | Path) -> None:
        command = [*prefix, *map(str, args)]
        subprocess.run(command, check=True, capture_output=True, env=env)  # noqa: S603 - initdb/pg_ctl

    try:
        try:
            run(bindir / "initdb", "-D", data, "-U", "prime", "-A", "trust", "-E", "UTF8", "-N")
            options = f"-k {root} -p {port} -c listen_addresses= -c fsync=off"
            run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "30", "-o", options, "start")
            started = True
        except subprocess.CalledProcessError as exc:
            tail = log.read_text()[-500:] if log.exists() else exc.stderr.decode()[-500:]
            pytest.skip(f"PostgreSQL from {bindir} did not start: {tail}")
        url = f"host={root} port={port} user=prime dbname=postgres"
        with psycopg.connect(url) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone():
                pytest.skip(f"PostgreSQL from {bindir} has no pgvector extension")
        yield url
    finally:
        if started:
            subprocess.run(  # noqa: S603 - pg_ctl, found above
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _sql(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def _corpus(n: int = N, prefix: str = "doc") -> tuple[list[str], list[str]]:
    ids = [f"{prefix}-{i}" for i in range(n)]
    # tabs, newlines, backslashes, quotes and non-ASCII survive the binary COPY
    texts = [f"text {i}\twith \\ 'quotes', a\nnewline and ü ✓" for i in range(n)]
    return ids, texts


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return unit_rows(N, D, seed=0)


@pytest.fixture(scope="module")
def exact(vectors: np.ndarray) -> RetrievalIndex:
    ids, texts = _corpus()
    return RetrievalIndex.build(
        ids, texts, vectors, encoder_name=ENCODER, config=IndexConfig(kind="exact")
    )


@pytest.fixture(scope="module")
def exported(dsn: str, vectors: np.ndarray) -> Iterator[PgVectorIndex]:
    ids, texts = _corpus()
    hnsw = RetrievalIndex.build(ids, texts, vectors, encoder_name=ENCODER)
    with export_index(hnsw, dsn, TABLE) as index:
        yield index


def test_hnsw_search_matches_exact_search(
    dsn: str, exported: PgVectorIndex, exact: RetrievalIndex
) -> None:
    with PgVectorIndex.connect(dsn, TABLE) as index:
        # 500 rows are few enough for the planner to scan them all (exactly); make it use the
        # HNSW graph, as it does on a real corpus, so the recall measured is the graph's
        conn = index._connection()
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            sql.SQL(
                "EXPLAIN SELECT id, text, embedding <#> %(q)s AS distance FROM {} "
                "ORDER BY distance LIMIT %(k)s"
            ).format(sql.Identifier(TABLE)),
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
    _sql(
        dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'prime' AND pid <> pg_backend_pid()",
    )
    assert exported.search(unit_rows(1, D, seed=5), 3) == before


def test_exact_export_without_hnsw(dsn: str, exact: RetrievalIndex) -> None:
    with export_index(exact, dsn, "prime_exact", hnsw=False) as index:
        assert not index.hnsw
        queries = unit_rows(20, D, seed=6)
        found = [[h.id for h in hits] for hits in index.search(queries, 10)]
        assert found == [[h.id for h in hits] for hits in exact.search(queries, 10)]
    indexes = _sql(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'prime_exact'")
    assert indexes == [("prime_exact_pkey",)]


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


def test_reexport_replaces_the_table_atomically(dsn: str) -> None:
    table = "prime_swap"
    ids_a, texts_a = _corpus(200, prefix="a")
    ids_b, texts_b = _corpus(300, prefix="b")
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
    tables = _sql(dsn, "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", f"{table}%")
    assert tables == [(table,)]  # no build table left behind
    indexes = _sql(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = %s", table)
    names = {row[0] for row in indexes}
    assert names == {f"{table}_pkey", f"{table}_hnsw"}


class _BrokenVectors(RetrievalIndex):
    """Claims 16-d but hands 8-d rows to COPY: the export fails inside its transaction."""

    def vectors(self) -> np.ndarray:
        return np.ascontiguousarray(super().vectors()[:, :8])


def test_a_failed_export_leaves_the_old_table(dsn: str, exported: PgVectorIndex) -> None:
    ids, texts = _corpus(10, prefix="broken")
    broken = _BrokenVectors.build(
        ids, texts, unit_rows(10, D, 10), encoder_name="e", config=IndexConfig(kind="exact")
    )
    with pytest.raises(RetrievalError, match=r"failed \(nothing changed\).*dimensions"):
        export_index(broken, dsn, TABLE)
    with PgVectorIndex.connect(dsn, TABLE) as index:
        assert (len(index), index.encoder_name) == (N, ENCODER)
        assert index.search(unit_rows(1, D, 11), 1)[0][0].id.startswith("doc-")


@pytest.mark.parametrize(
    "name", ["Robert'); DROP TABLE prime_corpus;--", "1abc", "Upper", "a" * 49, "", "a.b", 7]
)
def test_bad_table_names_are_refused_before_connecting(name: Any) -> None:
    message = "expected a lower-case SQL identifier"
    with pytest.raises(RetrievalError, match=message):
        check_table_name(name)
    with pytest.raises(RetrievalError, match=message):
        PgVectorIndex.connect("host=/nonexistent", name)
    index = RetrievalIndex.build(["x"], ["y"], unit_rows(1, D), encoder_name="e")
    with pytest.raises(RetrievalError, match=message):
        export_index(index, "host=/nonexistent", name)


def test_mismatches_are_refused_at_connect(dsn: str, exported: PgVectorIndex) -> None:
    with pytest.raises(RetrievalError, match="holds 16-d vectors, expected 32-d"):
        PgVectorIndex.connect(dsn, TABLE, dim=32)
    with pytest.raises(RetrievalError, match="encoded with 'test-encoder', expected 'other'"):
        PgVectorIndex.connect(dsn, TABLE, encoder_name="other")
    with pytest.raises(RetrievalError, match=r"expected B×16"):
        exported.search(unit_rows(2, 8), 3)
    with pytest.raises(RetrievalError, match="expected L2-normalised"):
        exported.search(np.ones((1, D)), 3)


def test_missing_table_and_foreign_tables(dsn: str, exported: PgVectorIndex) -> None:
    with pytest.raises(RetrievalError, match="no table 'no_such_table'; expected one export_"):
        PgVectorIndex.connect(dsn, "no_such_table")
    _sql(dsn, "CREATE TABLE IF NOT EXISTS users_table (id int)")
    with pytest.raises(RetrievalError, match="'users_table' is not a PRIME index"):
        PgVectorIndex.connect(dsn, "users_table")
    index = RetrievalIndex.build(["x"], ["y"], unit_rows(1, D), encoder_name="e")
    with pytest.raises(RetrievalError, match="refusing to replace it"):
        export_index(index, dsn, "users_table")
    assert _sql(dsn, "SELECT to_regclass('users_table') IS NOT NULL") == [(True,)]


def test_a_database_without_the_extension(dsn: str) -> None:
    _sql(dsn, "DROP DATABASE IF EXISTS prime_noext")
    _sql(dsn, "CREATE DATABASE prime_noext")
    other = dsn.replace("dbname=postgres", "dbname=prime_noext")
    with pytest.raises(RetrievalError, match="pgvector is available but not created"):
        PgVectorIndex.connect(other, TABLE)


def test_unreachable_and_malformed_dsns(dsn: str) -> None:
    port = _free_port()
    secret = f"host=127.0.0.1 port={port} user=prime password=hunter2 dbname=postgres"
    where = re.escape(f"cannot connect to PostgreSQL at 127.0.0.1 port {port}")
    with pytest.raises(RetrievalError, match=where) as caught:
        PgVectorIndex.connect(secret, TABLE, connect_timeout=2)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(RetrievalError, match="the DSN is malformed"):
        PgVectorIndex.connect("this is not = a dsn '", TABLE)
    with pytest.raises(RetrievalError, match='database "nope" does not exist'):
        PgVectorIndex.connect(dsn.replace("dbname=postgres", "dbname=nope"), TABLE)


def test_without_the_driver_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgvector_module, "_HAVE_DRIVER", False)
    with pytest.raises(RetrievalError, match=r"pip install 'prime-predictor\[pgvector\]'"):
        PgVectorIndex.connect("host=/nonexistent", TABLE)
    assert pgvector_module.describe_dsn("host=db password=x") == "PostgreSQL"


def test_nothing_else_in_prime_model_imports_it_at_import_time() -> None:
    """Serving from FAISS must not need the extra: only callers that ask for it (inside the
    function that does, like ``prime serve --pgvector``) import it."""
    root = Path(__file__).resolve().parents[3]
    importers = []
    for path in (root / "prime_model").rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            if "prime_model.retrieve.pgvector" in names:
                importers.append(str(path.relative_to(root)))
    assert importers == []


def test_the_module_imports_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh copy of the module, loaded with the extra's packages blocked."""
    for name in ("psycopg", "pgvector", "pgvector.psycopg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    origin = pgvector_module.__file__
    assert origin is not None
    spec = importlib.util.spec_from_file_location("_pgvector_without_driver", origin)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copy)  # dataclasses look it up
    spec.loader.exec_module(copy)
    assert not copy._HAVE_DRIVER
    with pytest.raises(RetrievalError, match=r"pip install 'prime-predictor\[pgvector\]'"):
        copy.PgVectorIndex.connect("host=/nonexistent")


def test_the_encoder_fingerprint_travels_with_the_table(dsn: str) -> None:
    """The server compares it with its request encoder's, as for an index directory."""
    ids, texts = _corpus(5, prefix="fp")
    index = RetrievalIndex.build(
        ids, texts, unit_rows(5, D, 12), encoder_name="e", encoder_fingerprint="weights-v1",
        config=IndexConfig(kind="exact"),
    )  # fmt: skip
    with export_index(index, dsn, "prime_fingerprinted", hnsw=False) as exported:
        assert exported.encoder_fingerprint == "weights-v1"
    with PgVectorIndex.connect(dsn, "prime_fingerprinted") as reopened:
        assert reopened.encoder_fingerprint == "weights-v1"
