"""Load test of the online endpoint: N concurrent clients for T seconds, loopback only.

    .venv/bin/python -m benchmarks.load_test [--items 10000,100000] [--clients 1,8]
        [--seconds 60] [--out outputs/load_test]
    .venv/bin/python -m benchmarks.load_test --model CKPT_DIR --items 100000 \\
        --conversations ../shared/data/doc2dial/doc2dial_rc_val.csv.zip --format doc2dial \\
        --order conversation,shuffled --clients 1,8 --seconds 30

By default it serves the production version of the ZenML store (its stored ONNX model and
retrieval_index, padded with synthetic filler items to each ``--items`` size) with ``prime serve``
in a subprocess, so the server's memory is its own. ``--model`` serves a checkpoint (exported
here) or an ``.onnx`` file over an index of real corpus texts (``--data-dir``) instead. ``--url``
tests an endpoint that is already running (``--path /invoke`` for a ZenML deployment's runs).

Requests are turns of sample conversations the model never saw, or of a public conversational
set (``--conversations``), histories cut to the model's turns. Every row runs on a fresh server;
each client's first time through its requests (``first``) is reported apart from the cycles after
it (``warm``, mostly cache hits), with the server's RSS after the warm-up against the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.index_data import DEFAULT_DATA
from benchmarks.load_clients import MemorySampler, rss_mb, run_clients
from benchmarks.load_report import (
    LoadResult,
    code_version,
    machine,
    markdown,
    memory_result,
    summarize,
)
from benchmarks.load_requests import (
    APIS,
    ORDERS,
    Step,
    TurnRequest,
    body_steps,
    client_orders,
    conversation_steps,
    dealt,
    frame_turns,
    fresh_queries,
    invoke_bodies,
    read_conversations,
    request_bodies,
    retrieve_steps,
    turn_text_stats,
)
from benchmarks.load_server import (
    cache_counts,
    exported_model,
    hit_rate,
    pad_index,
    prime_serve,
    production_files,
    real_index,
    served_recall,
    wait_for,
)
from prime_model.atomic import write_text_atomic
from prime_model.errors import ConfigError
from prime_model.retrieve.index import IndexConfig, RetrievalIndex

logger = logging.getLogger("benchmarks.load_test")


def plans_for(
    turns: Sequence[TurnRequest] | None,
    bodies: Sequence[bytes],
    order: str,
    clients: int,
    api: str = "retrieve",
) -> list[list[Step]]:
    """Each client's steps: a real set's turns dealt by ``order`` (``api``: the whole history
    per request, or the conversation API's register + retrieve); ready-made sample bodies
    cycled by every client from its own offset (the original load test's order)."""
    if api not in APIS:
        raise ConfigError(f"api {api!r}; expected one of {', '.join(APIS)}")
    if turns is None:
        if api != "retrieve":
            raise ConfigError("the conversation API needs --conversations (turns with roles)")
        return dealt(body_steps(bodies, "/retrieve"), clients)
    if api == "conversation" and order != "conversation":
        raise ConfigError(
            f"the conversation API replays conversations in order; got --order {order}"
        )
    build = conversation_steps if api == "conversation" else retrieve_steps
    return [build(part) for part in client_orders(turns, clients, order)]


def run_row(
    base: str, plans: Sequence[Sequence[Step]], *, seconds: float, warmup_s: float,
    pid: int | None, label: tuple[str, str, int],
) -> LoadResult:  # fmt: skip
    """One measured row against a healthy server: clients, RSS and the cache between."""
    target, order, items = label
    before = cache_counts(base)
    sampler = MemorySampler(pid)
    sampler.start()
    runs = run_clients(base, plans, seconds)
    sampler.stop()
    memory = memory_result(sampler.samples, warmup_s, rss_mb(pid)[1] if pid else None)
    result = summarize(
        target, items, seconds, runs, order=order, memory=memory,
        cache_hit_rate=hit_rate(before, cache_counts(base)), load_avg_1m=os.getloadavg()[0],
    )  # fmt: skip
    logger.info("%s", result)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--items", default="10000,100000", help="index sizes, comma-separated")
    parser.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="per row")
    parser.add_argument("--out", type=Path, default=Path("outputs/load_test"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint dir or .onnx file")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="with --model")
    parser.add_argument("--conversations", type=Path, default=None, help="a public turn file")
    parser.add_argument("--format", default=None, help="its format: doc2dial, canard, topiocqa")
    parser.add_argument("--target", default=None, help="its target (default: per format)")
    parser.add_argument("--max-conversations", type=int, default=None)
    parser.add_argument("--order", default="conversation", help=f"of {ORDERS}, comma-separated")
    parser.add_argument(
        "--api", default="retrieve",
        help=f"of {APIS}, comma-separated; retrieve: the whole history in each request; "
        "conversation: register the new turns, then retrieve by conversation id",
    )  # fmt: skip
    parser.add_argument("--warmup-s", type=float, default=None, help="RSS after this (s)")
    parser.add_argument("--url", default=None, help="a running endpoint (skips starting one)")
    parser.add_argument("--path", default="/retrieve", help="with --url: /retrieve or /invoke")
    parser.add_argument("--max-turns", type=int, default=10, help="with --url: the model's turns")
    parser.add_argument("--index-dir", type=Path, default=None, help="keep/reuse indexes here")
    parser.add_argument("--no-recall", action="store_true", help="skip the index recall check")
    parser.add_argument(
        "--fresh-queries", action="store_true", help="no query repeats: every one is encoded"
    )
    return parser


@dataclass
class Requests:
    """What the clients send: a real set's turns (None for the sample) and the bodies."""

    turns: list[TurnRequest] | None
    targets: list[str]
    bodies: list[bytes]
    header: list[str]


def load_requests(args: argparse.Namespace, max_turns: int) -> Requests:
    """The real set's turns (``--conversations``), else the sample's bodies."""
    if args.conversations is None:
        bodies = request_bodies(max_turns)
        header = [f"- {len(bodies)} distinct requests from unseen sample conversations"]
        if args.fresh_queries:  # enough for ~400 req/s for the whole run
            bodies = fresh_queries(bodies, repeats=max(1, int(args.seconds * 400 / len(bodies))))
            header.append("- fresh queries: every query is new to the server's cache")
        return Requests(None, [], bodies, header)
    fmt = args.format or "doc2dial"
    frame = read_conversations(args.conversations, fmt, args.target, args.max_conversations)
    turns = frame_turns(frame, max_turns)
    s = turn_text_stats(turns)
    header = [
        f"- requests: {s['turns']:.0f} turns of {s['conversations']:.0f} conversations from "
        f"{args.conversations} ({fmt}), history cut to {max_turns}; history entry p50 "
        f"{s['history_p50']:.0f} / p90 {s['history_p90']:.0f} chars, system turns p50 "
        f"{s['system_p50']:.0f} / p90 {s['system_p90']:.0f}, query p50 {s['query_p50']:.0f}"
    ]
    targets = [str(t) for t in frame["target"].dropna()]
    return Requests(turns, targets, [step[0].body for step in retrieve_steps(turns)], header)


def serve_rows(
    args: argparse.Namespace, model: Path, base: RetrievalIndex | None, requests: Requests,
    *, workdir: Path, header: list[str],
) -> tuple[list[LoadResult], dict[int, float]]:  # fmt: skip
    """For each index size: build (or pad) and save it, then one fresh server per row."""
    results, recalls = [], {}
    orders = args.order.split(",") if requests.turns is not None else ["cycled"]
    warmup_s = args.warmup_s if args.warmup_s is not None else min(60.0, args.seconds / 5)
    for size in [int(s) for s in args.items.split(",")]:
        index_dir = _index_dir(args, base, requests, size, workdir=workdir, header=header)
        if not args.no_recall:
            recalls[size] = served_recall(RetrievalIndex.load(index_dir), model, requests.bodies)
        rows = [
            (api, order, int(count))
            for api in args.api.split(",")
            for order in orders
            for count in args.clients.split(",")
        ]
        for api, order, count in rows:
            plans = plans_for(requests.turns, requests.bodies, order, count, api)
            with prime_serve(model, index_dir, args.port) as process:
                results.append(
                    run_row(
                        f"http://127.0.0.1:{args.port}", plans, seconds=args.seconds,
                        warmup_s=warmup_s, pid=process.pid,
                        label=(f"prime serve, {api} API", order, size),
                    )
                )  # fmt: skip
    return results, recalls


def _index_dir(
    args: argparse.Namespace, base: RetrievalIndex | None, requests: Requests, size: int,
    *, workdir: Path, header: list[str],
) -> Path:  # fmt: skip
    """The saved index of ``size`` items: padded production, or real texts; with
    ``--index-dir`` kept there and reused by the next run (a 100k build takes minutes)."""
    kept: Path | None = None if args.index_dir is None else args.index_dir / f"index-{size}"
    if kept is not None and kept.is_dir():
        header.append(f"- index at {size}: reused {kept}")
        return kept
    config = IndexConfig(kind="hnsw")
    if base is not None:
        index = pad_index(base, size, config)
    else:
        index, where = real_index(requests.targets, args.data_dir, size, config)
        header.append(f"- index at {size}: {where}")
    return index.save(kept or workdir / f"index-{size}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    header = [f"# Load test ({args.seconds:.0f} s per row, loopback)", "", f"- {machine()}"]
    header.append(f"- code: {code_version()}")
    recalls: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="prime-load-") as tmp:
        workdir = Path(tmp)
        production = None if args.url or args.model else production_files(workdir)  # ZenML
        # after ZenML's import, which adds its own root handler (each line would show twice)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True
        )
        model, base, max_turns = production or (None, None, args.max_turns)
        if args.model is not None and not args.url:
            model, max_turns = exported_model(args.model, workdir)
            header.append(f"- model: {args.model} ({max_turns} turns)")
        requests = load_requests(args, max_turns)
        header += requests.header
        if args.url or model is None:
            wait_for(args.url, None, timeout=10)
            sent = invoke_bodies(requests.bodies) if args.path == "/invoke" else requests.bodies
            warmup_s = args.warmup_s if args.warmup_s is not None else min(60.0, args.seconds / 5)
            results = [
                run_row(
                    args.url, dealt(body_steps(sent, args.path), int(count)),
                    seconds=args.seconds, warmup_s=warmup_s, pid=None,
                    label=(args.url + args.path, "cycled", 0),
                )
                for count in args.clients.split(",")
            ]  # fmt: skip
        else:
            results, recalls = serve_rows(
                args, model, base, requests, workdir=workdir, header=header
            )
    header += [f"- index recall@10 vs exact at {n} items: {r:.4f}" for n, r in recalls.items()]
    header.append("- every row on a fresh server; first = each client's first time through its "
                  "requests, warm = the cycles after it")  # fmt: skip
    write_reports(args.out, results, recalls, header, sys.argv[1:] if argv is None else argv)
    return 0


def write_reports(
    out: Path, results: Sequence[LoadResult], recalls: dict[int, float], header: list[str],
    argv: list[str],
) -> None:  # fmt: skip
    """load_test.md and load_test.json under ``out`` (atomic), the table on stdout."""
    report = markdown(results, header)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "load_test.md", report)
    payload = {
        "argv": argv,
        "results": [
            {**asdict(r), "memory_change": None if r.memory is None else r.memory.change}
            for r in results
        ],
        "recall_vs_exact": recalls,
    }
    write_text_atomic(out / "load_test.json", json.dumps(payload, indent=2) + "\n")
    sys.stdout.write(report)


if __name__ == "__main__":
    sys.exit(main())
