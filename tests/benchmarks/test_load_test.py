"""The load test's parts, against a real uvicorn server around the tiny retriever (loopback)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn

from benchmarks.load_test import (
    ClientRun,
    fresh_queries,
    invoke_bodies,
    markdown,
    pad_index,
    recall_vs_exact,
    request_bodies,
    rss_mb,
    run_clients,
    summarize,
)
from prime_model.http.app import create_app
from prime_model.retrieve.index import IndexConfig
from tests.prime_model.retrieve.support import tiny_index, tiny_retriever, unit_rows


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(tiny_retriever()), port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_clients_measure_every_request_and_count_errors(server_url: str) -> None:
    good = [json.dumps({"history": ["a"], "query": f"q{i}"}).encode() for i in range(5)]
    runs = run_clients(server_url + "/retrieve", good, clients=2, seconds=0.5)
    assert len(runs) == 2 and all(run.latencies_ms for run in runs)
    assert not any(run.errors for run in runs)
    bad = run_clients(server_url + "/retrieve", [b'{"query": ""}'], clients=1, seconds=0.2)
    assert bad[0].errors.get("HTTP 422", 0) > 0 and not bad[0].latencies_ms


def test_summary_percentiles_and_report() -> None:
    runs = [ClientRun(latencies_ms=[float(v) for v in range(1, 101)], errors={"HTTP 500": 2})]
    result = summarize("x", 10, 2.0, runs, memory=[100.0, 101.0], peak_mb=120.0)
    assert (result.requests, result.requests_per_s) == (100, 50.0)
    assert result.p50_ms == pytest.approx(50.5) and result.p99_ms == pytest.approx(99.01)
    assert result.errors == {"HTTP 500": 2}
    table = markdown([result], ["# t"])
    assert "| x | 10 | 1 | 50.0 | 50.5 |" in table and "100 → 101 (120)" in table


def test_padding_keeps_the_real_items_and_reaches_the_size() -> None:
    index = tiny_index(20)
    padded = pad_index(index, 500, IndexConfig(kind="hnsw"))
    assert len(padded) == 500 and padded.ids[:20] == index.ids
    assert padded.kind == "hnsw" and padded.ids[20] == "filler-0"
    assert recall_vs_exact(padded, index.vectors()[:10]) >= 0.9
    exact = pad_index(index, 500, IndexConfig(kind="exact"))
    assert recall_vs_exact(exact, unit_rows(10, 12, seed=5)) == 1.0


def test_request_bodies_are_unseen_turns_within_the_model_turns() -> None:
    bodies = request_bodies(max_turns=2, conversations=5)
    parsed = [json.loads(b) for b in bodies]
    assert parsed and all(len(p["history"]) <= 2 and p["query"] for p in parsed)
    assert json.loads(invoke_bodies(bodies[:1])[0]) == {"parameters": parsed[0]}


def test_rss_of_this_process() -> None:
    current, peak = rss_mb(os.getpid())
    assert 0 < current <= peak
    assert np.isfinite(current)


def test_fresh_queries_never_repeat_a_query() -> None:
    bodies = request_bodies(max_turns=2, conversations=5)
    fresh = [json.loads(b) for b in fresh_queries(bodies, repeats=3)]
    assert len(fresh) == 3 * len(bodies)
    assert len({f["query"] for f in fresh}) == len(fresh)
    assert [f["history"] for f in fresh[: len(bodies)]] == [
        json.loads(b)["history"] for b in bodies
    ]
