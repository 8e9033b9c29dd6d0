"""Helpers for the pgvector tests: where PostgreSQL is, SQL on the side, a test corpus."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

try:
    import psycopg
except ImportError:
    HAVE_PSYCOPG = False
else:
    HAVE_PSYCOPG = True

N, D, ENCODER = 500, 16, "test-encoder"
TABLE = "prime_corpus"


def bindirs() -> list[Path]:
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


def has_vector(bindir: Path) -> bool:
    prefix = bindir.parent
    return any(
        (share / "vector.control").is_file()
        for share in (
            prefix / "share" / "postgresql" / "extension",
            prefix / "share" / "extension",
            Path("/usr/share/postgresql") / prefix.name / "extension",  # Debian's layout
        )
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_user() -> pwd.struct_passwd | None:
    """None: run as ourselves; else the unprivileged account to run PostgreSQL as (root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists")


def sql(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def corpus(n: int = N, prefix: str = "doc") -> tuple[list[str], list[str]]:
    ids = [f"{prefix}-{i}" for i in range(n)]
    # tabs, newlines, backslashes, quotes and non-ASCII survive the binary COPY
    texts = [f"text {i}\twith \\ 'quotes', a\nnewline and ü ✓" for i in range(n)]
    return ids, texts
