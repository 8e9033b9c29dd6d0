"""Copying a :class:`~prime_model.retrieve.index.RetrievalIndex` into a pgvector table.

The new table is built inside a single transaction and renamed over the old one, so a reader
sees the old corpus or the whole new one, never a half-filled table.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Final

import numpy as np

from prime_model.errors import RetrievalError
from prime_model.retrieve.index import RetrievalIndex
from prime_model.retrieve.pgvector.connection import (
    DEFAULT_TABLE,
    FORMAT,
    FORMAT_VERSION,
    check_extension,
    check_table_name,
    describe_dsn,
    first_line,
    open_connection,
    pg_version,
    refuse_foreign,
    require_driver,
)
from prime_model.retrieve.pgvector.index import MAX_EF_SEARCH, PgVectorIndex
from prime_model.text import shown

with contextlib.suppress(ImportError):  # the extra: require_driver says what to install
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg import sql

logger = logging.getLogger(__name__)

# pgvector's own limits (the index options, indexed dimensions)
_HNSW_M: Final = (2, 100)
_HNSW_EF_CONSTRUCTION: Final = (4, 1000)
_HNSW_MAX_DIM: Final = 2000
_HNSW_MIN_VERSION: Final = (0, 5, 0)


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
    require_driver()
    with open_connection(dsn, connect_timeout) as conn:
        version = check_extension(conn, where, create=True)
        if hnsw and pg_version(version) < _HNSW_MIN_VERSION:
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
                refuse_foreign(conn, table, where)
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
                f"changed): {first_line(exc)}"
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
