"""The pgvector tests' server: a real, throwaway PostgreSQL + pgvector, started once per package.

The server comes from ``$PRIME_PG_BINDIR`` (when set, only from there), the ``pgserver`` wheel
(PostgreSQL 16 + pgvector) or Debian's ``/usr/lib/postgresql/<version>/bin``; it listens on a
Unix socket in its own temporary folder only (no TCP port), runs as an unprivileged user when
the tests run as root (initdb refuses root), and is stopped and removed at the end. Server tests
skip, with the reason, when no binaries, no pgvector or no psycopg can be found; the rest run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.retrieve.pgvector import PgVectorIndex, export_index
from tests.prime_model.retrieve.pgvector.support import (
    ENCODER,
    HAVE_PSYCOPG,
    TABLE,
    D,
    N,
    bindirs,
    corpus,
    free_port,
    has_vector,
    server_user,
)
from tests.prime_model.retrieve.support import unit_rows

with contextlib.suppress(ImportError):  # without it the server fixture skips
    import psycopg


@pytest.fixture(scope="package")
def dsn() -> Iterator[str]:
    if not HAVE_PSYCOPG:
        pytest.skip("psycopg is not installed: pip install 'prime-predictor[pgvector]'")
    candidates = bindirs()
    if not candidates:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl); install the pgserver wheel")
    bindir = next((d for d in candidates if has_vector(d)), candidates[0])
    user = server_user()
    root = Path(tempfile.mkdtemp(prefix="prime-pg-"))
    data, log = root / "data", root / "server.log"
    prefix = ["runuser", "-u", user.pw_name, "--"] if user else []
    if user:
        os.chown(root, user.pw_uid, user.pw_gid)
    env = {**os.environ, "LC_ALL": "C"}
    port, started = free_port(), False

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


@pytest.fixture(scope="package")
def vectors() -> np.ndarray:
    return unit_rows(N, D, seed=0)


@pytest.fixture(scope="package")
def exact(vectors: np.ndarray) -> RetrievalIndex:
    ids, texts = corpus()
    return RetrievalIndex.build(
        ids, texts, vectors, encoder_name=ENCODER, config=IndexConfig(kind="exact")
    )


@pytest.fixture(scope="package")
def exported(dsn: str, vectors: np.ndarray) -> Iterator[PgVectorIndex]:
    ids, texts = corpus()
    hnsw = RetrievalIndex.build(ids, texts, vectors, encoder_name=ENCODER)
    with export_index(hnsw, dsn, TABLE) as index:
        yield index
