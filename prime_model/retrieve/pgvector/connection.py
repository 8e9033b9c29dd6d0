"""The PostgreSQL side of the pgvector index: the driver, connections and the table's metadata.

psycopg is optional (the ``pgvector`` extra): without it this package still imports and
:func:`require_driver` says what to install. The table's COMMENT (renamed with the table, so it
cannot drift from the rows) holds the encoder name and dim; :func:`read_meta` checks it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from prime_model.errors import RetrievalError
from prime_model.parsing import parse_json
from prime_model.text import shown

try:  # the pgvector extra; without it this package imports and every entry point says so
    import pgvector.psycopg  # noqa: F401 - the extra's other half, used by index and export
    import psycopg
    from psycopg import Connection
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError:
    _HAVE_DRIVER = False
else:
    _HAVE_DRIVER = True

FORMAT: Final = "prime-pgvector-index"
FORMAT_VERSION: Final = "1"
DEFAULT_TABLE: Final = "prime_corpus"
# Lower case only: an unquoted name then means the same table in every client and in
# to_regclass(); 48 characters leave room for the "__build_pkey" suffixes under Postgres's 63.
_TABLE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,47}")
_INSTALL_HINT: Final = "pip install 'prime-predictor[pgvector]' (psycopg 3 and pgvector)"


@dataclass(frozen=True)
class TableMeta:
    """What a table's COMMENT records: checked against the rows' column at every connect."""

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


def require_driver() -> None:
    """Fail with the install command, not a NameError, when the extra is missing."""
    if not _HAVE_DRIVER:
        raise RetrievalError(f"the pgvector index needs psycopg 3 and pgvector; {_INSTALL_HINT}")


def first_line(exc: BaseException) -> str:
    """A driver error's first line: the rest repeats the query."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_connection(dsn: str, connect_timeout: float) -> Connection[tuple[Any, ...]]:
    """An autocommit connection, every failure a :class:`RetrievalError` naming the server."""
    require_driver()
    if not isinstance(dsn, str):
        raise RetrievalError(f"DSN is {shown(dsn)}; expected a libpq connection string or URL")
    where = describe_dsn(dsn)
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise RetrievalError(
            f"the DSN is malformed ({first_line(exc)}); expected a libpq connection string "
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
            f"cannot connect to {where}: {first_line(exc)}; expected a reachable server that "
            "accepts this role"
        ) from None


def pg_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_extension(conn: Connection[tuple[Any, ...]], where: str, *, create: bool) -> str:
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
            f"{where}: cannot create the vector extension ({first_line(exc)}); expected a role "
            "allowed to, or an administrator to run CREATE EXTENSION vector in this database"
        ) from None
    return str(available[0])


def is_ours(comment: object) -> bool:
    try:
        meta = json.loads(comment) if isinstance(comment, str) else None
    except ValueError:
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_meta(conn: Connection[tuple[Any, ...]], table: str, where: str) -> TableMeta | None:
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
    if not is_ours(comment):
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
    return TableMeta(
        meta["encoder_name"],
        meta["dim"],
        meta["count"],
        meta["hnsw"],
        fingerprint if isinstance(fingerprint, str) else None,
    )


def refuse_foreign(conn: Connection[tuple[Any, ...]], table: str, where: str) -> None:
    """Replace only a table an earlier export wrote (of any format version), never a user's."""
    row = conn.execute(
        "SELECT to_regclass(%(t)s) IS NOT NULL, obj_description(to_regclass(%(t)s), 'pg_class')",
        {"t": table},
    ).fetchone()
    if row is not None and row[0] and not is_ours(row[1]):
        raise RetrievalError(
            f"{where}: table {table!r} exists and is not a PRIME index (no {FORMAT} COMMENT); "
            "expected a new name or a table export_index wrote: refusing to replace it"
        )
