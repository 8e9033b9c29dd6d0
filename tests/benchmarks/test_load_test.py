"""The load test's clients, index and report against a real uvicorn server around the tiny
retriever (loopback); the request and report logic alone is in test_load_requests/_report."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import uvicorn

from benchmarks.load_clients import (
    FIRST,
    WARM,
    ClientRun,
    MemorySampler,
    Samples,
    rss_mb,
    run_clients,
)
from benchmarks.load_report import markdown, summarize
from benchmarks.load_requests import (
    Call,
    body_steps,
    dealt,
    frame_turns,
    fresh_queries,
    invoke_bodies,
    request_bodies,
)
from benchmarks.load_server import cache_counts, hit_rate, pad_index, recall_vs_exact
from benchmarks.load_test import plans_for, run_row
from prime_model.encode.memory_cache import LruEncoder
from prime_model.http.app import create_app
from prime_model.retrieve.index import IndexConfig
from tests.conftest import CountingEncoder
from tests.prime_model.retrieve.support import (
    TINY,
    tiny_index,
    tiny_retriever,
    unit_rows,
)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(tiny_retriever(LruEncoder(CountingEncoder(dim=TINY.input_dim)))),
        port=port,
        log_level="warning",
    )
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
    runs = run_clients(server_url, dealt(body_steps(good, "/retrieve"), 2), seconds=0.5)
    assert len(runs) == 2
    for run in runs:  # five requests are one pass: the rest are warm cycles
        assert len(run.at(FIRST, "retrieve").latencies_ms) == 5
        assert run.at(WARM, "retrieve").latencies_ms and run.seconds[FIRST] > 0
        assert not any(s.errors for s in run.samples.values())
    bad = run_clients(server_url, [body_steps([b'{"query": ""}'], "/retrieve")], seconds=0.2)
    first = bad[0].at(FIRST, "retrieve")
    assert first.errors == {"HTTP 422": 1} and not first.latencies_ms
    assert bad[0].at(WARM, "retrieve").errors.get("HTTP 422", 0) > 0


def test_a_client_without_steps_is_refused(server_url: str) -> None:
    with pytest.raises(ValueError, match="at least one step"):
        run_clients(server_url, [[]], seconds=0.1)


def test_connection_errors_are_counted_not_raised() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runs = run_clients(f"http://127.0.0.1:{port}", [body_steps([b"{}"], "/retrieve")], 0.2)
    errors = runs[0].at(FIRST, "retrieve").errors
    assert errors.get("ConnectionRefusedError", 0) >= 1


def test_a_row_on_a_running_server_reads_the_cache_and_memory(server_url: str) -> None:
    bodies = request_bodies(max_turns=2, conversations=3)
    before = cache_counts(server_url)
    assert before is not None
    result = run_row(
        server_url, plans_for(None, bodies, "cycled", 1), seconds=0.5, warmup_s=0.1,
        pid=os.getpid(), label=("x", "cycled", 7),
    )  # fmt: skip
    assert (result.target, result.order, result.items, result.clients) == ("x", "cycled", 7, 1)
    first = result.at(FIRST)
    assert first is not None and first.requests == len(bodies) and not first.errors
    assert result.cache_hit_rate is not None and 0 < result.cache_hit_rate < 1
    assert result.memory is not None and result.memory.start_mb > 0
    assert hit_rate(before, before) is None and hit_rate(None, before) is None
    assert hit_rate((1, 1), (4, 2)) == pytest.approx(0.75)


def test_summary_percentiles_and_report() -> None:
    run = ClientRun(
        samples={(FIRST, "retrieve"): Samples([float(v) for v in range(1, 101)], {"HTTP 500": 2})},
        seconds={FIRST: 2.0},
    )
    result = summarize("x", 10, 2.0, [run])
    first = result.at(FIRST)
    assert first is not None and (first.requests, first.requests_per_s) == (100, 50.0)
    assert first.p50_ms == pytest.approx(50.5) and first.p99_ms == pytest.approx(99.01)
    assert first.p90_ms == pytest.approx(90.1) and first.errors == {"HTTP 500": 2}
    assert result.at(WARM) is None
    table = markdown([result], ["# t"])
    assert "| x | cycled | 10 | 1 | first | retrieve | 100 | 50.0 | 50.5 | 90.1 | 99.0 |" in table


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
    sampler = MemorySampler(os.getpid(), every_s=0.01)
    sampler.start()
    time.sleep(0.1)
    sampler.stop()
    assert len(sampler.samples) >= 2 and sampler.samples[0][0] < sampler.samples[-1][0]
    gone = MemorySampler(2**22 + 12345, every_s=0.01)  # no such process: stops, no samples
    gone.start()
    time.sleep(0.05)
    gone.stop()
    assert gone.samples == []


def test_fresh_queries_never_repeat_a_query() -> None:
    bodies = request_bodies(max_turns=2, conversations=5)
    fresh = [json.loads(b) for b in fresh_queries(bodies, repeats=3)]
    assert len(fresh) == 3 * len(bodies)
    assert len({f["query"] for f in fresh}) == len(fresh)
    assert [f["history"] for f in fresh[: len(bodies)]] == [
        json.loads(b)["history"] for b in bodies
    ]


def test_the_conversation_api_replay_registers_then_retrieves_without_errors(
    server_url: str,
) -> None:
    frame = pd.DataFrame(
        {
            "conversation_id": ["c1"] * 3,
            "turn": [0, 1, 2],
            "history": [[], ["q0", "a0"], ["q0", "a0", "q1", "a1"]],
            "query": ["q0", "q1", "q2"],
            "target": ["t"] * 3,
            "target_id": [None] * 3,
            "history_roles": [[], ["user", "system"], ["user", "system"] * 2],
        }
    )
    turns = frame_turns(frame, max_turns=4)
    plans = plans_for(turns, [], "conversation", 1, "conversation")
    runs = run_clients(server_url, plans, seconds=0.5)
    first, registered = runs[0].at(FIRST, "retrieve"), runs[0].at(FIRST, "register")
    assert len(first.latencies_ms) == 3 and len(registered.latencies_ms) == 2
    assert not any(s.errors for s in runs[0].samples.values())
    warm = runs[0].at(WARM, "retrieve")  # later passes are new conversations: no 404s
    assert warm.latencies_ms and not any(s.errors for s in runs[0].samples.values())
    # a retrieval naming a conversation the server never saw is counted as an error
    unknown = [(Call("retrieve", "/retrieve", b'{"conversation_id": "nope", "query": "q"}'),)]
    missed = run_clients(server_url, [unknown], seconds=0.1)[0].at(FIRST, "retrieve")
    assert missed.errors == {"HTTP 404": 1}
