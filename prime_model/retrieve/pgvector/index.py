"""Searching a corpus table :func:`~prime_model.retrieve.pgvector.export.export_index` wrote.

One connection per calling thread, opened lazily and reopened once if the server dropped it;
:meth:`PgVectorIndex.connect` checks the table's metadata at start-up, not at the first request.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from prime_model.errors import RetrievalError
from prime_model.retrieve.index import Hit, query_matrix
from prime_model.retrieve.pgvector.connection import (
    DEFAULT_TABLE,
    TableMeta,
    check_extension,
    check_table_name,
    describe_dsn,
    first_line,
    open_connection,
    read_meta,
)
from prime_model.text import shown

with contextlib.suppress(ImportError):  # the extra: open_connection says what to install
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg import Connection, sql

logger = logging.getLogger(__name__)

KIND: Final = "pgvector"
# pgvector's own limit on hnsw.ef_search
MAX_EF_SEARCH: Final = 1000


class PgVectorIndex:
    """A corpus table searched by pgvector's inner product; a :class:`SearchIndex` for serving.

    One connection per calling thread (the service answers on a thread pool), opened lazily and
    reopened once if the server dropped it. Build it with :meth:`connect` or :func:`export_index`.
    """

    def __init__(
        self, dsn: str, table: str, meta: TableMeta, *, ef_search: int, connect_timeout: float
    ) -> None:
        self._dsn, self.table, self._meta = dsn, table, meta
        self.ef_search, self._connect_timeout = ef_search, connect_timeout
        self._where = describe_dsn(dsn)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection[tuple[Any, ...]]] = []

    @classmethod
    def connect(
        cls,
        dsn: str,
        table: str = DEFAULT_TABLE,
        *,
        ef_search: int = 128,
        dim: int | None = None,
        encoder_name: str | None = None,
        connect_timeout: float = 10.0,
    ) -> PgVectorIndex:
        """Open a table :func:`export_index` wrote, checking its metadata (and ``dim`` /
        ``encoder_name`` when given) now rather than at the first request.

        ``ef_search``: pgvector's ``hnsw.ef_search`` (1..1000), raised per search to ``k``.
        """
        table = check_table_name(table)
        if isinstance(ef_search, bool) or not isinstance(ef_search, int):
            raise RetrievalError(f"ef_search is {shown(ef_search)}; expected an integer")
        if not 1 <= ef_search <= MAX_EF_SEARCH:
            raise RetrievalError(
                f"ef_search is {ef_search}; expected 1..{MAX_EF_SEARCH} (pgvector's range)"
            )
        where = describe_dsn(dsn)
        with open_connection(dsn, connect_timeout) as conn:
            try:
                check_extension(conn, where, create=False)
                meta = read_meta(conn, table, where)
            except psycopg.Error as exc:
                raise RetrievalError(
                    f"{where}: cannot read table {table!r}: {first_line(exc)}"
                ) from None
        if meta is None:
            raise RetrievalError(
                f"{where}: no table {table!r}; expected one export_index wrote (check the table "
                "name and the database in the DSN)"
            )
        problems = []
        if dim is not None and dim != meta.dim:
            problems.append(f"it holds {meta.dim}-d vectors, expected {dim}-d")
        if encoder_name is not None and encoder_name != meta.encoder_name:
            problems.append(f"it was encoded with {meta.encoder_name!r}, expected {encoder_name!r}")
        if problems:
            raise RetrievalError(f"{where}: table {table!r} does not fit: " + "; ".join(problems))
        index = cls(dsn, table, meta, ef_search=ef_search, connect_timeout=connect_timeout)
        logger.info(
            "connected to %s table %s: %d items, dim %d, %s",
            where,
            table,
            meta.count,
            meta.dim,
            "HNSW" if meta.hnsw else "exact scan",
        )
        return index

    @property
    def dim(self) -> int:
        return self._meta.dim

    @property
    def encoder_name(self) -> str:
        return self._meta.encoder_name

    @property
    def encoder_fingerprint(self) -> str | None:
        return self._meta.encoder_fingerprint

    @property
    def kind(self) -> str:
        return KIND

    @property
    def hnsw(self) -> bool:
        return self._meta.hnsw

    def __len__(self) -> int:
        """Items at export (from the metadata: ``count(*)`` scans a big table every call)."""
        return self._meta.count

    def search(self, queries: npt.ArrayLike, k: int = 10) -> list[list[Hit]]:
        """The ``k`` best items per query row by inner product, best first."""
        matrix = query_matrix(queries, self.dim)
        k = max(1, min(k, len(self)))
        if self.hnsw and k > MAX_EF_SEARCH:
            raise RetrievalError(
                f"k is {k}; expected at most {MAX_EF_SEARCH}: pgvector's HNSW scan returns at "
                "most hnsw.ef_search rows"
            )
        for attempt in (1, 2):
            try:
                rows = self._run(matrix, k)
            except psycopg.OperationalError as exc:
                self._drop_connection()
                if attempt == 2:
                    raise RetrievalError(
                        f"searching {self.table!r} on {self._where} failed: {first_line(exc)}; "
                        "expected a reachable server"
                    ) from None
                logger.warning("lost the connection to %s; reconnecting once", self._where)
            except psycopg.Error as exc:
                raise RetrievalError(
                    f"searching {self.table!r} on {self._where} failed: {first_line(exc)}"
                ) from None
            else:
                return [[Hit(i, t, -float(d)) for i, t, d in hits] for hits in rows]
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, matrix: npt.NDArray[np.float32], k: int) -> list[list[tuple[Any, ...]]]:
        conn = self._connection()
        # `<#>` is the NEGATIVE inner product, so ascending order is best first; ordering by
        # the bare operator expression is what lets the planner use the HNSW index.
        query = sql.SQL(
            "SELECT id, text, embedding <#> %(q)s AS distance FROM {} ORDER BY distance LIMIT %(k)s"
        ).format(sql.Identifier(self.table))
        ef = max(self.ef_search, k)
        with conn.pipeline(), self._ef_raised(conn, ef):
            cursors = [conn.execute(query, {"q": row, "k": k}) for row in matrix]
        return [cursor.fetchall() for cursor in cursors]

    @contextmanager
    def _ef_raised(self, conn: Connection[tuple[Any, ...]], ef: int) -> Iterator[None]:
        """An HNSW scan yields at most ef_search rows: raise it for this search when k is more."""
        if ef == self.ef_search or not self.hnsw:
            yield
            return
        with conn.transaction():
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
            yield

    def _connection(self) -> Connection[tuple[Any, ...]]:
        conn: Connection[tuple[Any, ...]] | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        conn = open_connection(self._dsn, self._connect_timeout)
        try:
            register_vector(conn)
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(self.ef_search),))
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock:
                self._connections = [c for c in self._connections if c is not conn]

    def close(self) -> None:
        """Close every thread's connection (searching afterwards opens new ones)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> PgVectorIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgVectorIndex({self.table!r} on {self._where}, {len(self)} items, dim {self.dim})"
