"""Connecting: table names, DSNs, the extension, foreign tables, and life without the driver."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import prime_model.retrieve
import prime_model.retrieve.pgvector as pgvector_module
import prime_model.retrieve.pgvector.connection as connection_module
from prime_model.errors import RetrievalError
from prime_model.retrieve.index import RetrievalIndex
from prime_model.retrieve.pgvector import PgVectorIndex, check_table_name, export_index
from tests.prime_model.retrieve.pgvector.support import TABLE, D, free_port, sql
from tests.prime_model.retrieve.support import unit_rows

pytestmark = pytest.mark.slow  # a real PostgreSQL server (pgserver), started per package

PACKAGE = "prime_model.retrieve.pgvector"


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


def test_missing_table_and_foreign_tables(dsn: str, exported: PgVectorIndex) -> None:
    with pytest.raises(RetrievalError, match="no table 'no_such_table'; expected one export_"):
        PgVectorIndex.connect(dsn, "no_such_table")
    sql(dsn, "CREATE TABLE IF NOT EXISTS users_table (id int)")
    with pytest.raises(RetrievalError, match="'users_table' is not a PRIME index"):
        PgVectorIndex.connect(dsn, "users_table")
    index = RetrievalIndex.build(["x"], ["y"], unit_rows(1, D), encoder_name="e")
    with pytest.raises(RetrievalError, match="refusing to replace it"):
        export_index(index, dsn, "users_table")
    assert sql(dsn, "SELECT to_regclass('users_table') IS NOT NULL") == [(True,)]


def test_a_database_without_the_extension(dsn: str) -> None:
    sql(dsn, "DROP DATABASE IF EXISTS prime_noext")
    sql(dsn, "CREATE DATABASE prime_noext")
    other = dsn.replace("dbname=postgres", "dbname=prime_noext")
    with pytest.raises(RetrievalError, match="pgvector is available but not created"):
        PgVectorIndex.connect(other, TABLE)


def test_unreachable_and_malformed_dsns(dsn: str) -> None:
    port = free_port()
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
    monkeypatch.setattr(connection_module, "_HAVE_DRIVER", False)
    with pytest.raises(RetrievalError, match=r"pip install 'prime-predictor\[pgvector\]'"):
        PgVectorIndex.connect("host=/nonexistent", TABLE)
    assert pgvector_module.describe_dsn("host=db password=x") == "PostgreSQL"


def test_nothing_else_in_prime_model_imports_it_at_import_time() -> None:
    """Serving from FAISS must not need the extra: only callers that ask for it (inside the
    function that does, like ``prime serve --pgvector``) import it."""
    root = Path(__file__).resolve().parents[4]
    package = root / "prime_model" / "retrieve" / "pgvector"
    importers = []
    for path in (root / "prime_model").rglob("*.py"):
        if path.is_relative_to(package):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            if any(name.startswith(PACKAGE) for name in names):
                importers.append(str(path.relative_to(root)))
    assert importers == []


def test_the_package_imports_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh copy of the package, imported with the extra's packages blocked; monkeypatch puts
    the real modules back afterwards."""
    for name in ("psycopg", "pgvector", "pgvector.psycopg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(prime_model.retrieve, "pgvector", pgvector_module)
    copy = importlib.import_module(PACKAGE)
    assert copy is not pgvector_module
    assert not importlib.import_module(f"{PACKAGE}.connection")._HAVE_DRIVER
    with pytest.raises(RetrievalError, match=r"pip install 'prime-predictor\[pgvector\]'"):
        copy.PgVectorIndex.connect("host=/nonexistent")
    index = RetrievalIndex.build(["x"], ["y"], unit_rows(1, D), encoder_name="e")
    with pytest.raises(RetrievalError, match=r"pip install 'prime-predictor\[pgvector\]'"):
        copy.export_index(index, "host=/nonexistent")
