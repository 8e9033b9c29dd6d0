"""Load test of the online endpoint: N concurrent clients for T seconds, loopback only.

    .venv/bin/python -m benchmarks.load_test [--items 10000,100000] [--clients 1,8]
        [--seconds 60] [--out outputs/load_test]

By default it serves the production version of the ZenML store (its stored ONNX model and
retrieval_index, padded with synthetic filler items to each ``--items`` size) with ``prime serve``
in a subprocess, so the server's memory is its own. ``--url`` tests an endpoint that is already
running instead (``--path /invoke`` for a ZenML deployment's tracked runs). Requests are turns of
sample conversations the model never saw (history cut to the model's turns), cycled, so the first
pass encodes every text and later passes hit the server's per-text cache; the report gives both.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from prime_model.atomic import write_text_atomic
from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.data.schema import truncate_histories
from prime_model.retrieve.index import IndexConfig, RetrievalIndex

logger = logging.getLogger("benchmarks.load_test")

FILLER_SEED: Final = 7
REQUEST_SEED: Final = 11  # training uses seed 0: these conversations are new to the model
_SAMPLE_EVERY_S: Final = 0.25
_PRIME: Final = "import sys; from prime_model.cli.main import main; sys.exit(main())"


# ------------------------------------------------------------------------------------ requests


def request_bodies(max_turns: int, conversations: int = 300, top_k: int = 10) -> list[bytes]:
    """JSON bodies of unseen sample turns, histories cut to the ``max_turns`` most recent."""
    turns = truncate_histories(
        generate_sample(SampleConfig(num_conversations=conversations, seed=REQUEST_SEED)),
        max_turns,
    )
    return [
        json.dumps({"history": list(h), "query": q, "top_k": top_k}).encode()
        for h, q in zip(turns["history"], turns["query"], strict=True)
    ]


def fresh_queries(bodies: Sequence[bytes], repeats: int) -> list[bytes]:
    """``repeats`` copies of the requests, each query made unique (a numbered suffix), so no
    query is ever in the server's text cache: every request pays one encoder call or more."""
    out: list[bytes] = []
    for body in list(bodies) * repeats:
        request = json.loads(body)
        request["query"] = f"{request['query']} (#{len(out)})"
        out.append(json.dumps(request).encode())
    return out


def invoke_bodies(bodies: Sequence[bytes]) -> list[bytes]:
    """The same requests in a ZenML deployment's ``/invoke`` shape."""
    return [json.dumps({"parameters": json.loads(b)}).encode() for b in bodies]


# ------------------------------------------------------------------------------------- clients


@dataclass
class ClientRun:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def _client(
    url: urllib.parse.SplitResult, bodies: Sequence[bytes], offset: int, stop: float, out: ClientRun
) -> None:
    """One keep-alive connection sending requests back to back until ``stop``."""
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    i = offset
    while time.perf_counter() < stop:
        body = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        try:
            connection.request("POST", url.path, body, headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            out.errors[type(exc).__name__] = out.errors.get(type(exc).__name__, 0) + 1
            connection.close()
            connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
            continue
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200 or b'"success":false' in payload:
            key = f"HTTP {response.status}"
            out.errors[key] = out.errors.get(key, 0) + 1
        else:
            out.latencies_ms.append(elapsed)
    connection.close()


def run_clients(url: str, bodies: Sequence[bytes], clients: int, seconds: float) -> list[ClientRun]:
    """``clients`` threads for ``seconds``, each starting at its own place in ``bodies``."""
    parsed = urllib.parse.urlsplit(url)
    stop = time.perf_counter() + seconds
    runs = [ClientRun() for _ in range(clients)]
    threads = [
        threading.Thread(
            target=_client, args=(parsed, bodies, i * len(bodies) // clients, stop, run)
        )
        for i, run in enumerate(runs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


# -------------------------------------------------------------------------------------- memory


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


class MemorySampler(threading.Thread):
    """The server's RSS every quarter second while the clients run: flat or growing."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self._done = pid, list[float](), threading.Event()

    def run(self) -> None:
        while self.pid is not None and not self._done.wait(_SAMPLE_EVERY_S):
            self.samples.append(rss_mb(self.pid)[0])

    def stop(self) -> None:
        self._done.set()
        self.join()


# -------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class LoadResult:
    target: str
    items: int
    clients: int
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    rss_start_mb: float | None
    rss_end_mb: float | None
    rss_peak_mb: float | None
    cache_hit_rate: float | None = None


def summarize(
    target: str,
    items: int,
    seconds: float,
    runs: Sequence[ClientRun],
    *,
    memory: Sequence[float] = (),
    peak_mb: float | None = None,
    cache_hit_rate: float | None = None,
) -> LoadResult:
    latencies = np.asarray([v for run in runs for v in run.latencies_ms], dtype=np.float64)
    errors: dict[str, int] = {}
    for run in runs:
        for key, count in run.errors.items():
            errors[key] = errors.get(key, 0) + count
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies.size else (np.nan,) * 3
    return LoadResult(
        target=target,
        items=items,
        clients=len(runs),
        seconds=seconds,
        requests=int(latencies.size),
        requests_per_s=latencies.size / seconds,
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        errors=errors,
        rss_start_mb=memory[0] if memory else None,
        rss_end_mb=memory[-1] if memory else None,
        rss_peak_mb=peak_mb,
        cache_hit_rate=cache_hit_rate,
    )


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown(results: Sequence[LoadResult], header: Sequence[str] = ()) -> str:
    lines = [*header, "", "| target | items | clients | req/s | p50 ms | p95 ms | p99 ms | errors "
             "| server RSS start → end (peak) MB | cache hits |", "|---|---:|---:|---:|---:|---:|"
             "---:|---|---|---:|"]  # fmt: skip
    for r in results:
        hits = "-" if r.cache_hit_rate is None else f"{r.cache_hit_rate:.0%}"
        lines.append(
            f"| {r.target} | {r.items} | {r.clients} | {r.requests_per_s:.1f} | {r.p50_ms:.1f} | "
            f"{r.p95_ms:.1f} | {r.p99_ms:.1f} | {sum(r.errors.values())} {r.errors or ''} | "
            f"{_mb(r.rss_start_mb)} → {_mb(r.rss_end_mb)} ({_mb(r.rss_peak_mb)}) | {hits} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- index padding


def pad_index(index: RetrievalIndex, items: int, config: IndexConfig) -> RetrievalIndex:
    """The index plus synthetic filler (random unit vectors, ids ``filler-N``) up to ``items``.

    Filler makes the search as big as a real corpus of that size; it is not real content, so
    retrieval quality is judged by :func:`recall_vs_exact` and by the evaluation, not here."""
    vectors = index.vectors()
    extra = max(0, items - len(index))
    filler = np.random.default_rng(FILLER_SEED).normal(size=(extra, index.dim)).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    return RetrievalIndex.build(
        [*index.ids, *(f"filler-{i}" for i in range(extra))],
        [*index.texts, *(f"filler item {i}" for i in range(extra))],
        np.vstack([vectors, filler]),
        encoder_name=index.encoder_name,
        config=config,
    )


def recall_vs_exact(index: RetrievalIndex, queries: np.ndarray, k: int = 10) -> float:
    """Recall@k of ``index`` against exact inner-product search over the same vectors."""
    vectors = index.vectors()
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    found = index.search(queries, k)
    position = {item_id: row for row, item_id in enumerate(index.ids)}
    overlap = [
        len({position[h.id] for h in hits} & set(truth_row.tolist()))
        for hits, truth_row in zip(found, truth, strict=True)
    ]
    return sum(overlap) / (k * len(queries))


# --------------------------------------------------------------------------------- the servers


def _wait_for(url: str, process: subprocess.Popen[bytes] | None, timeout: float = 180) -> None:
    parsed = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=2)
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer /health within {timeout:.0f} s")


def _cache_hit_rate(base: str) -> float | None:
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=5)
    try:
        connection.request("GET", "/info")
        cache = json.loads(connection.getresponse().read()).get("encoder_cache")
    finally:
        connection.close()
    if not cache or not cache.get("hits", 0) + cache.get("misses", 0):
        return None
    return float(cache["hits"] / (cache["hits"] + cache["misses"]))


def _production_files(workdir: Path) -> tuple[Path, RetrievalIndex, int]:
    """The production version's serving model (as ``prime serve`` would pick it) and index."""
    from pipelines.registry import production_version, serving_artifacts  # noqa: PLC0415
    from prime_model.runtime.loader import int8_holds_here  # noqa: PLC0415

    artifacts = serving_artifacts(production_version())
    chosen = artifacts.onnx_fp32
    if artifacts.onnx_int8 is not None and (
        chosen is None or int8_holds_here(artifacts.onnx_int8, chosen)
    ):
        chosen = artifacts.onnx_int8
    if chosen is None:
        raise RuntimeError("the production version has no stored ONNX model to serve")
    path = workdir / "model.onnx"
    path.write_bytes(chosen.data)
    return path, artifacts.index, chosen.metadata.predictor_config.max_context_length


def serve_and_load(
    model: Path, index: RetrievalIndex, *, sizes: Sequence[int], clients: Sequence[int],
    seconds: float, bodies: Sequence[bytes], workdir: Path, port: int,
) -> tuple[list[LoadResult], dict[int, float]]:  # fmt: skip
    """For each size: pad, save, start ``prime serve`` on it, run every client count."""
    results, recalls = [], {}
    for size in sizes:
        padded = pad_index(index, size, index.config)
        recalls[size] = _padded_recall(padded, model, bodies)
        index_dir = padded.save(workdir / f"index-{size}")
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-c", _PRIME, "serve", "--model", str(model),
                   "--index", str(index_dir), "--port", str(port), "--quiet"]  # fmt: skip
        process = subprocess.Popen(command)  # noqa: S603 - our own interpreter and arguments
        try:
            _wait_for(url, process)
            for count in clients:
                sampler = MemorySampler(process.pid)
                sampler.start()
                runs = run_clients(url + "/retrieve", bodies, count, seconds)
                sampler.stop()
                result = summarize(
                    "prime serve", size, seconds, runs, memory=sampler.samples,
                    peak_mb=rss_mb(process.pid)[1], cache_hit_rate=_cache_hit_rate(url),
                )  # fmt: skip
                logger.info("%s", result)
                results.append(result)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return results, recalls


def _padded_recall(padded: RetrievalIndex, model: Path, bodies: Sequence[bytes]) -> float:
    """Recall@10 vs exact for the predicted embeddings of the load test's own requests."""
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.http.request import parse_request  # noqa: PLC0415
    from prime_model.http.service import Retriever, serving_encoder  # noqa: PLC0415
    from prime_model.runtime.onnx_runtime import OnnxPredictor  # noqa: PLC0415

    predictor, encoder = OnnxPredictor.from_file(model), serving_encoder(EncoderConfig())
    retriever = Retriever(predictor, encoder, padded, model_version="load-test")  # as served
    queries = [retriever.predict(parse_request(body))[0] for body in bodies[:300]]
    return recall_vs_exact(padded, np.stack(queries))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="10000,100000", help="index sizes, comma-separated")
    parser.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("outputs/load_test"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--url", default=None, help="a running endpoint (skips starting one)")
    parser.add_argument("--path", default="/retrieve", help="with --url: /retrieve or /invoke")
    parser.add_argument("--max-turns", type=int, default=10, help="with --url: the model's turns")
    parser.add_argument(
        "--fresh-queries", action="store_true", help="no query repeats: every one is encoded"
    )
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    header = [f"# Load test ({args.seconds:.0f} s per row, loopback)", "", f"- {_machine()}"]
    with tempfile.TemporaryDirectory(prefix="prime-load-") as tmp:
        served = None if args.url else _production_files(Path(tmp))  # imports ZenML
        # after ZenML's import, which adds its own root handler (each line would show twice)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True
        )
        if served is None:
            bodies = request_bodies(args.max_turns)
            if args.path == "/invoke":
                bodies = invoke_bodies(bodies)
            _wait_for(args.url, None, timeout=10)
            results = [
                summarize(args.url + args.path, 0, args.seconds,
                          run_clients(args.url + args.path, bodies, count, args.seconds))
                for count in clients
            ]  # fmt: skip
            recalls: dict[int, float] = {}
        else:
            model, index, max_turns = served
            bodies = request_bodies(max_turns)
            header.append(f"- {len(bodies)} distinct requests from unseen sample conversations")
            if args.fresh_queries:  # enough for ~400 req/s for the whole run
                bodies = fresh_queries(
                    bodies, repeats=max(1, int(args.seconds * 400 / len(bodies)))
                )
                header.append("- fresh queries: every query is new to the server's cache")
            sizes = [int(s) for s in args.items.split(",")]
            results, recalls = serve_and_load(
                model, index, sizes=sizes, clients=clients, seconds=args.seconds,
                bodies=bodies, workdir=Path(tmp), port=args.port,
            )  # fmt: skip
    header += [f"- index recall@10 vs exact at {n} items: {r:.4f}" for n, r in recalls.items()]
    report = markdown(results, header)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "load_test.md", report)
    payload = {"results": [asdict(r) for r in results], "recall_vs_exact": recalls}
    write_text_atomic(args.out / "load_test.json", json.dumps(payload, indent=2) + "\n")
    sys.stdout.write(report)
    return 0


def _machine() -> str:
    import torch  # noqa: PLC0415

    from prime_model.bench.machine import describe_machine  # noqa: PLC0415

    machine = describe_machine(torch.device("cpu"))
    cores = len(os.sched_getaffinity(0))
    return f"CPU: {machine.processor}, {cores} cores, {machine.instruction_set}"


if __name__ == "__main__":
    sys.exit(main())
