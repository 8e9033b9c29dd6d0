"""The corpus in PostgreSQL + pgvector, for when it outgrows one machine's embedded index.

:class:`~prime_model.retrieve.index.RetrievalIndex` keeps every vector in the serving process;
a server lets many replicas share one corpus, hold more than one machine's RAM and swap it in
one transaction. :func:`export_index` builds the new table inside a single transaction and
renames it over the old one, so a reader sees the old corpus or the whole new one, never a
half-filled table. The table's COMMENT (renamed with it, so it cannot drift from the rows) holds
the encoder name and dim, so :meth:`PgVectorIndex.connect` refuses a mismatch at start-up
instead of serving wrong hits. psycopg is optional (the ``pgvector`` extra): without it this
module still imports and says what to install, and nothing else in ``prime_model`` imports it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from prime_model.errors import RetrievalError
from prime_model.parsing import parse_json
from prime_model.retrieve.index import Hit, RetrievalIndex, query_matrix
from prime_model.text import shown

try:  # the pgvector extra; without it this module imports and every entry point says so
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg import Connection, sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError:
    _HAVE_DRIVER = False
else:
    _HAVE_DRIVER = True

logger = logging.getLogger(__name__)

FORMAT: Final = "prime-pgvector-index"
FORMAT_VERSION: Final = "1"
DEFAULT_TABLE: Final = "prime_corpus"
KIND: Final = "pgvector"
# Lower case only: an unquoted name then means the same table in every client and in
# to_regclass(); 48 characters leave room for the "__build_pkey" suffixes under Postgres's 63.
_TABLE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,47}")
# pgvector's own limits (hnsw.ef_search, the index options, indexed dimensions).
MAX_EF_SEARCH: Final = 1000
_HNSW_M: Final = (2, 100)
_HNSW_EF_CONSTRUCTION: Final = (4, 1000)
_HNSW_MAX_DIM: Final = 2000
_HNSW_MIN_VERSION: Final = (0, 5, 0)
_INSTALL_HINT: Final = "pip install 'prime-predictor[pgvector]' (psycopg 3 and pgvector)"


@dataclass(frozen=True)
class _Meta:
    encoder_name: str
    dim: int
    count: int
    hnsw: bool
    encoder_fingerprint: str | None = None


def check_table_name(table: object) -> str:
    """Refuse anything but a plain lower-case identifier: it is composed into SQL."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise RetrievalError(
            f"table name {shown(table)} is not allowed; expected a lower-case SQL identifier "
            "(letters a-z, digits, _; not starting with a digit; at most 48 characters)"
        )
    return table


def describe_dsn(dsn: str) -> str:
    """Where a DSN points, for messages: host, port and database, never the password."""
    if not _HAVE_DRIVER:
        return "PostgreSQL"
    try:
        params = conninfo_to_dict(dsn) if isinstance(dsn, str) else {}
    except psycopg.ProgrammingError:
        return "PostgreSQL (malformed DSN)"
    host = params.get("host") or params.get("hostaddr") or "the default socket"
    port = params.get("port") or "5432"
    database = params.get("dbname") or params.get("user") or "the default database"
    return f"PostgreSQL at {host} port {port}, database {database}"


def _require_driver() -> None:
    """Fail with the install command, not a NameError, when the extra is missing."""
    if not _HAVE_DRIVER:
        raise RetrievalError(f"the pgvector index needs psycopg 3 and pgvector; {_INSTALL_HINT}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open(dsn: str, connect_timeout: float) -> Connection[tuple[Any, ...]]:
    """An autocommit connection, every failure a :class:`RetrievalError` naming the server."""
    _require_driver()
    if not isinstance(dsn, str):
        raise RetrievalError(f"DSN is {shown(dsn)}; expected a libpq connection string or URL")
    where = describe_dsn(dsn)
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise RetrievalError(
            f"the DSN is malformed ({_first_line(exc)}); expected a libpq connection string "
            "('host=... dbname=...') or URL ('postgresql://user@host:port/db')"
        ) from None
    defaults = {
        "connect_timeout": str(max(1, round(connect_timeout))),
        "application_name": "prime",
        "client_encoding": "UTF8",  # else a SQL_ASCII database hands psycopg bytes, not str
    }
    extra = {key: value for key, value in defaults.items() if key not in given}
    try:
        return psycopg.connect(make_conninfo(dsn, **extra), autocommit=True)
    except psycopg.Error as exc:
        raise RetrievalError(
            f"cannot connect to {where}: {_first_line(exc)}; expected a reachable server that "
            "accepts this role"
        ) from None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _check_extension(conn: Connection[tuple[Any, ...]], where: str, *, create: bool) -> str:
    """The installed pgvector version; created first when ``create`` and the role may."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is not None:
        return str(row[0])
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    if available is None:
        raise RetrievalError(
            f"{where} has no pgvector extension (pg_available_extensions lacks 'vector'); "
            "expected a server with pgvector installed (Debian: postgresql-<version>-pgvector)"
        )
    if not create:
        raise RetrievalError(
            f"{where}: pgvector is available but not created in this database; expected a "
            "database export_index wrote to (it runs CREATE EXTENSION vector)"
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise RetrievalError(
            f"{where}: cannot create the vector extension ({_first_line(exc)}); expected a role "
            "allowed to, or an administrator to run CREATE EXTENSION vector in this database"
        ) from None
    return str(available[0])


def _is_ours(comment: object) -> bool:
    try:
        meta = json.loads(comment) if isinstance(comment, str) else None
    except ValueError:
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _read_meta(conn: Connection[tuple[Any, ...]], table: str, where: str) -> _Meta | None:
    """The table's PRIME metadata; None when no such table; an error for a foreign table."""
    row = conn.execute(
        "SELECT to_regclass(%(t)s) IS NOT NULL, obj_description(to_regclass(%(t)s), 'pg_class'),"
        " (SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%(t)s)"
        "  AND attname = 'embedding' AND NOT attisdropped)",
        {"t": table},
    ).fetchone()
    if row is None or not row[0]:
        return None
    comment, column_dim = row[1], row[2]
    if not _is_ours(comment):
        raise RetrievalError(
            f"{where}: table {table!r} is not a PRIME index (its COMMENT is not {FORMAT} "
            "metadata); expected a table export_index wrote: use another name or drop this one"
        )
    meta = parse_json(comment, f"{where}: table {table!r} COMMENT", RetrievalError)
    if meta.get("format_version") != FORMAT_VERSION:
        raise RetrievalError(
            f"{where}: table {table!r} has format version {shown(meta.get('format_version'))}; "
            f"expected {FORMAT_VERSION}: export it again"
        )
    fields = {"encoder_name": str, "dim": int, "count": int, "hnsw": bool}
    wrong = [key for key, kind in fields.items() if not isinstance(meta.get(key), kind)]
    if wrong:
        raise RetrievalError(f"{where}: table {table!r} metadata lacks or mangles {wrong}")
    if column_dim != meta["dim"]:
        raise RetrievalError(
            f"{where}: table {table!r} stores vector({shown(column_dim)}) but its metadata says "
            f"dim {meta['dim']}; the table was altered: export it again"
        )
    fingerprint = meta.get("encoder_fingerprint")
    return _Meta(
        meta["encoder_name"],
        meta["dim"],
        meta["count"],
        meta["hnsw"],
        fingerprint if isinstance(fingerprint, str) else None,
    )


class PgVectorIndex:
    """A corpus table searched by pgvector's inner product; a :class:`SearchIndex` for serving.

    One connection per calling thread (the service answers on a thread pool), opened lazily and
    reopened once if the server dropped it. Build it with :meth:`connect` or :func:`export_index`.
    """

    def __init__(
        self, dsn: str, table: str, meta: _Meta, *, ef_search: int, connect_timeout: float
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
        with _open(dsn, connect_timeout) as conn:
            try:
                _check_extension(conn, where, create=False)
                meta = _read_meta(conn, table, where)
            except psycopg.Error as exc:
                raise RetrievalError(
                    f"{where}: cannot read table {table!r}: {_first_line(exc)}"
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
                        f"searching {self.table!r} on {self._where} failed: {_first_line(exc)}; "
                        "expected a reachable server"
                    ) from None
                logger.warning("lost the connection to %s; reconnecting once", self._where)
            except psycopg.Error as exc:
                raise RetrievalError(
                    f"searching {self.table!r} on {self._where} failed: {_first_line(exc)}"
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
        conn = _open(self._dsn, self._connect_timeout)
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


def _check_export(index: RetrievalIndex, hnsw: bool) -> None:
    if not isinstance(index, RetrievalIndex):
        raise RetrievalError(f"index is {shown(index)}; expected a RetrievalIndex to export")
    if len(index) == 0:
        raise RetrievalError("the index is empty; expected at least one corpus item to export")
    if any("\x00" in s for s in (*index.ids, *index.texts)):
        raise RetrievalError(
            "a corpus id or text contains a NUL character; PostgreSQL text cannot hold one"
        )
    if not hnsw:
        return
    m, ef_construction = index.config.m, index.config.ef_construction
    if not _HNSW_M[0] <= m <= _HNSW_M[1]:
        raise RetrievalError(f"HNSW m is {m}; expected {_HNSW_M[0]}..{_HNSW_M[1]} for pgvector")
    low, high = max(_HNSW_EF_CONSTRUCTION[0], 2 * m), _HNSW_EF_CONSTRUCTION[1]
    if not low <= ef_construction <= high:
        raise RetrievalError(
            f"HNSW ef_construction is {ef_construction}; expected {low}..{high} for pgvector "
            "(at least 2·m)"
        )
    if index.dim > _HNSW_MAX_DIM:
        raise RetrievalError(
            f"the index holds {index.dim}-d vectors; pgvector's HNSW indexes at most "
            f"{_HNSW_MAX_DIM} dimensions: export with hnsw=False (exact scan)"
        )


def _refuse_foreign(conn: Connection[tuple[Any, ...]], table: str, where: str) -> None:
    """Replace only a table an earlier export wrote (of any format version), never a user's."""
    row = conn.execute(
        "SELECT to_regclass(%(t)s) IS NOT NULL, obj_description(to_regclass(%(t)s), 'pg_class')",
        {"t": table},
    ).fetchone()
    if row is not None and row[0] and not _is_ours(row[1]):
        raise RetrievalError(
            f"{where}: table {table!r} exists and is not a PRIME index (no {FORMAT} COMMENT); "
            "expected a new name or a table export_index wrote: refusing to replace it"
        )


def export_index(
    index: RetrievalIndex,
    dsn: str,
    table: str = DEFAULT_TABLE,
    *,
    hnsw: bool = True,
    maintenance_work_mem: str | None = None,
    connect_timeout: float = 10.0,
) -> PgVectorIndex:
    """Copy ``index`` into ``table`` (replacing an earlier export atomically) and open it.

    Creates the vector extension if missing, loads the rows with binary COPY into a fresh table
    and builds ``USING hnsw (embedding vector_ip_ops)`` with the index's ``m`` and
    ``ef_construction`` (``hnsw=False``: no index, exact scans), all in one transaction that
    ends by renaming the new table over the old. Refuses to replace a table it did not write.
    ``maintenance_work_mem`` (e.g. ``"2GB"``), for this export only: pgvector builds HNSW far
    faster while the graph fits in it.
    """
    table = check_table_name(table)
    _check_export(index, hnsw)
    vectors = np.ascontiguousarray(index.vectors(), dtype=np.float32)
    where = describe_dsn(dsn)
    _require_driver()
    with _open(dsn, connect_timeout) as conn:
        version = _check_extension(conn, where, create=True)
        if hnsw and _version(version) < _HNSW_MIN_VERSION:
            raise RetrievalError(
                f"{where} has pgvector {version}; HNSW needs 0.5.0 or newer: upgrade it or "
                "export with hnsw=False"
            )
        register_vector(conn)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder_name": index.encoder_name,
            "encoder_fingerprint": index.encoder_fingerprint,
            "dim": index.dim,
            "count": len(index),
            "hnsw": hnsw,
            "m": index.config.m,
            "ef_construction": index.config.ef_construction,
        }
        build = f"{table}__build"
        names = {
            "table": sql.Identifier(table),
            "build": sql.Identifier(build),
            "build_pkey": sql.Identifier(f"{build}_pkey"),
            "build_hnsw": sql.Identifier(f"{build}_hnsw"),
            "pkey": sql.Identifier(f"{table}_pkey"),
            "hnsw": sql.Identifier(f"{table}_hnsw"),
        }
        try:
            with conn.transaction():
                # one export per table at a time; concurrent readers keep the old table
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"prime_model:{table}",)
                )
                _refuse_foreign(conn, table, where)
                if maintenance_work_mem is not None:
                    conn.execute(
                        "SELECT set_config('maintenance_work_mem', %s, true)",
                        (str(maintenance_work_mem),),
                    )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {build} (id text CONSTRAINT {build_pkey} PRIMARY KEY, "
                        "text text NOT NULL, embedding vector({dim}) NOT NULL)"
                    ).format(dim=sql.Literal(index.dim), **names)
                )
                with (
                    conn.cursor() as cursor,
                    cursor.copy(
                        sql.SQL(
                            "COPY {build} (id, text, embedding) FROM STDIN WITH (FORMAT BINARY)"
                        ).format(**names)
                    ) as copy,
                ):
                    copy.set_types(["text", "text", "vector"])
                    for row in zip(index.ids, index.texts, vectors, strict=True):
                        copy.write_row(row)
                if hnsw:
                    conn.execute(
                        sql.SQL(
                            "CREATE INDEX {build_hnsw} ON {build} USING hnsw "
                            "(embedding vector_ip_ops) WITH (m = {m}, ef_construction = {ef})"
                        ).format(
                            m=sql.Literal(index.config.m),
                            ef=sql.Literal(index.config.ef_construction),
                            **names,
                        )
                    )
                conn.execute(sql.SQL("ANALYZE {build}").format(**names))
                conn.execute(
                    sql.SQL("COMMENT ON TABLE {build} IS {meta}").format(
                        meta=sql.Literal(json.dumps(meta)), **names
                    )
                )
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {table}").format(**names))
                conn.execute(sql.SQL("ALTER TABLE {build} RENAME TO {table}").format(**names))
                conn.execute(sql.SQL("ALTER INDEX {build_pkey} RENAME TO {pkey}").format(**names))
                if hnsw:
                    conn.execute(
                        sql.SQL("ALTER INDEX {build_hnsw} RENAME TO {hnsw}").format(**names)
                    )
        except psycopg.Error as exc:
            raise RetrievalError(
                f"exporting {len(index)} items to {where} table {table!r} failed (nothing "
                f"changed): {_first_line(exc)}"
            ) from None
    logger.info(
        "exported %d items (dim %d, %s) to %s table %s",
        len(index),
        index.dim,
        "HNSW" if hnsw else "no index",
        where,
        table,
    )
    return PgVectorIndex.connect(
        dsn,
        table,
        ef_search=min(index.config.ef_search, MAX_EF_SEARCH),
        connect_timeout=connect_timeout,
    )
