"""Which nearest-neighbour index serves the predictor's embeddings, chosen by measurement.

The predictor outputs 384-d unit vectors (all-MiniLM-L6-v2 space, inner product = cosine); the
product needs recall@10 >= 0.98 of exact search and a single-query search cheap enough that a
whole HTTP request (encode, predict, search) stays under 25 ms at p99 on 2 cores at 100k items.
Every candidate is built, saved and loaded again through its library's own file format (the
search runs on the loaded copy), then judged against exact numpy search on held-out queries:
recall@10, batch-1 latency (all candidates timed in one block-interleaved run, see
:mod:`prime_model.bench.timing`, so load spikes on a shared machine hit them alike), batch-32
throughput, build time, file size and the resident memory the load added. HNSW candidates sweep
their search breadth; the choice is computed from the numbers, never written in.

Data: real all-MiniLM-L6-v2 vectors from the embedding cache (``prime_model.encode.cache``),
deduplicated and shuffled with a fixed seed, the corpus and the queries disjoint. Short of that,
texts from ``../shared/data`` are encoded (and cached); as a last resort synthetic clustered unit
vectors are used, and the report says so.

    .venv/bin/python -m benchmarks.index_choice [--sizes 10000,100000] [--queries 1000] \
        [--out outputs/index_choice]

faiss-cpu is a dependency of the project; usearch and hnswlib are compared only where installed
(``.venv/bin/pip install usearch hnswlib``; hnswlib builds from source), else skipped.

Builds dominate the run time: at 100k vectors with M=32, efConstruction=200 on 2 busy cores one
HNSW build took 75 s (usearch i8) to 465 s (usearch f32), and the whole default run 26 minutes.
For a quicker look pass fewer candidates or dtypes (``--candidates exact-numpy,faiss-hnsw,hnswlib``,
``--usearch-dtypes f16``) or one thread setting (``--threads 1``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from benchmarks.index_candidates import (
    CANDIDATES,
    MIN_RECALL,
    Settings,
    build_all,
    optional_module,
)
from benchmarks.index_data import (
    DEFAULT_DATA,
    Dataset,
    FloatArray,
    K,
    exact_search,
    load_vectors,
    recall_at_k,
    search_all,
    split_corpus_queries,
)
from prime_model.atomic import write_text_atomic
from prime_model.bench.timing import interleaved_seconds
from prime_model.encode.cache import default_cache_dir

logger = logging.getLogger("benchmarks.index_choice")

REQUEST_P99_BUDGET_MS: Final = 25.0  # the whole HTTP request, of which the search is a part
_PROBE: Final = 20  # queries compared before and after the save/load round trip


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class Row:
    size: int
    candidate: str
    params: dict[str, int | str]
    threads: int
    recall_at_10: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    batch_qps: float
    build_s: float
    disk_mb: float
    rss_mb: float | None
    roundtrip_identical: bool
    timed_queries: int

    @property
    def label(self) -> str:
        shown = {k: v for k, v in self.params.items() if k != "simd"}
        return " ".join(f"{k}={v}" for k, v in shown.items()) or "-"


class _Cycle:
    """A zero-argument call that searches the next item each time (same order per variant)."""

    def __init__(self, search: Callable[[FloatArray], object], items: Sequence[FloatArray]) -> None:
        self.search, self.items, self.next = search, items, 0

    def __call__(self) -> object:
        item = self.items[self.next]
        self.next = (self.next + 1) % len(self.items)
        return self.search(item)


def _percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds), q)) * 1e3


def measure_size(
    corpus: FloatArray, queries: FloatArray, settings: Settings, workdir: Path
) -> tuple[list[Row], list[str]]:
    """Every candidate variant at this corpus size, as table rows; also the skipped names."""
    size = len(corpus)
    truth = search_all(lambda q: exact_search(corpus, q), queries)
    built, skipped = build_all(corpus, settings, workdir, queries[:_PROBE])
    pairs = [(b, v) for b in built for v in b.variants]
    recalls: dict[tuple[str, str], float] = {}
    for b, v in pairs:  # threads do not change results: one recall per index and breadth
        key = (b.candidate, json.dumps(v.search_params))
        if key not in recalls:
            recalls[key] = recall_at_k(search_all(v.batch, queries), truth)
    singles = [queries[i : i + 1] for i in range(len(queries))]
    started = time.perf_counter()
    one = interleaved_seconds(
        [_Cycle(v.one, singles) for _, v in pairs], len(queries), budget_s=settings.budget_s
    )
    batches = [
        queries[i : i + settings.batch]
        for i in range(0, len(queries) - settings.batch + 1, settings.batch)
    ] or [queries]
    many = interleaved_seconds(
        [_Cycle(v.batch, batches) for _, v in pairs],
        min(max(5, len(batches)), settings.batch_repeats),
        budget_s=settings.budget_s,
    )
    logger.info(
        "size %d: %d variants timed in %.0f s", size, len(pairs), time.perf_counter() - started
    )
    rows = []
    for (b, v), times, batch_times in zip(pairs, one, many, strict=True):
        rows.append(
            Row(
                size=size, candidate=b.candidate, params={**b.build_params, **v.search_params},
                threads=v.threads,
                recall_at_10=recalls[(b.candidate, json.dumps(v.search_params))],
                p50_ms=_percentile_ms(times, 50), p95_ms=_percentile_ms(times, 95),
                p99_ms=_percentile_ms(times, 99),
                batch_qps=len(batches[0]) / float(np.median(batch_times)),
                build_s=b.build_s, disk_mb=b.disk_bytes / 1e6,
                rss_mb=None if b.rss_bytes is None else b.rss_bytes / 1e6,
                roundtrip_identical=b.roundtrip_identical, timed_queries=len(times),
            )
        )  # fmt: skip
    return rows, skipped


# ------------------------------------------------------------------------------------- choosing


def choose(rows: Sequence[Row], size: int, min_recall: float = MIN_RECALL) -> Row | None:
    """The fastest row at ``size`` (single-query p99, then p50) whose recall@10 passes."""
    passing = [r for r in rows if r.size == size and r.recall_at_10 >= min_recall]
    return min(passing, key=lambda r: (r.p99_ms, r.p50_ms), default=None)


def smallest_passing_breadth(rows: Sequence[Row], min_recall: float = MIN_RECALL) -> list[Row]:
    """Per size, HNSW candidate and thread setting: the row of the smallest ``efSearch``
    that reaches ``min_recall``."""
    best: dict[tuple[int, str, int], Row] = {}
    for row in rows:
        ef = row.params.get("efSearch")
        if not isinstance(ef, int) or row.recall_at_10 < min_recall:
            continue
        key = (row.size, row.candidate, row.threads)
        current = best.get(key)
        if current is None or ef < int(current.params["efSearch"]):
            best[key] = row
    return [best[k] for k in sorted(best)]


def _threads(threads: int) -> str:
    return "default" if threads == 0 else str(threads)


def choice_text(rows: Sequence[Row], min_recall: float = MIN_RECALL, batch: int = 32) -> str:
    """One paragraph, computed from the rows: the pick at the largest size and its margins."""
    if not rows:
        return "No candidate was measured."
    size = max(r.size for r in rows)
    pick = choose(rows, size, min_recall)
    if pick is None:
        return f"No candidate reached recall@10 >= {min_recall} at {size:,} vectors."
    exact = [r for r in rows if r.size == size and r.candidate == "exact-numpy"]
    others = sorted(
        (
            r
            for r in rows
            if r.size == size and r.recall_at_10 >= min_recall and r.candidate != pick.candidate
        ),
        key=lambda r: (r.p99_ms, r.p50_ms),
    )
    runners: list[str] = []
    for r in others:
        if all(r.candidate not in text for text in runners) and len(runners) < 3:
            runners.append(
                f"{r.candidate} ({r.label}, threads {_threads(r.threads)}: p99 {r.p99_ms:.3f} ms, "
                f"recall {r.recall_at_10:.4f})"
            )
    text = (
        f"Choice at {size:,} vectors: {pick.candidate} ({pick.label}, threads "
        f"{_threads(pick.threads)}) is the fastest candidate with recall@10 >= {min_recall}: "
        f"recall@10 {pick.recall_at_10:.4f}, single-query p50/p95/p99 {pick.p50_ms:.3f}/"
        f"{pick.p95_ms:.3f}/{pick.p99_ms:.3f} ms ({pick.p99_ms / REQUEST_P99_BUDGET_MS:.1%} of "
        f"the {REQUEST_P99_BUDGET_MS:.0f} ms request p99 budget), batch-{batch} "
        f"{pick.batch_qps:,.0f} queries/s, built in {pick.build_s:.1f} s, "
        f"{pick.disk_mb:.1f} MB on disk."
    )
    if exact:
        fastest_exact = min(exact, key=lambda r: r.p99_ms)
        text += (
            f" Exact numpy search (threads {_threads(fastest_exact.threads)}) takes p99 "
            f"{fastest_exact.p99_ms:.3f} ms, {fastest_exact.p99_ms / pick.p99_ms:.1f}x the pick."
        )
    if runners:
        text += " Next fastest passing: " + "; ".join(runners) + "."
    return text


# ------------------------------------------------------------------------------------- reporting


def _row_cells(r: Row) -> list[str]:
    rss = "-" if r.rss_mb is None else f"{r.rss_mb:.1f}"
    return [
        f"{r.size:,}", r.candidate, r.label, _threads(r.threads), f"{r.recall_at_10:.4f}",
        f"{r.p50_ms:.3f}", f"{r.p95_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.batch_qps:,.0f}",
        f"{r.build_s:.1f}", f"{r.disk_mb:.1f}", rss, "yes" if r.roundtrip_identical else "NO",
    ]  # fmt: skip


def _timed(rows: Sequence[Row]) -> str:
    sizes = sorted({r.size for r in rows})
    return ", ".join(
        f"{min(r.timed_queries for r in rows if r.size == size)} at {size:,}" for size in sizes
    )


def to_markdown(report: dict[str, Any], rows: Sequence[Row]) -> str:
    machine, data, settings = report["machine"], report["data"], report["settings"]
    libraries = ", ".join(f"{k} {v}" for k, v in report["libraries"].items() if v)
    lines = [
        "# Index choice: recall@10 and single-query latency, side by side",
        "",
        f"- CPU: {machine['processor']} ({machine['instruction_set']}; "
        f"{', '.join(machine['cpu_features'])}), {machine['cpus']} CPUs",
        f"- faiss compile options: {machine.get('faiss_compile_options') or '-'}",
        f"- libraries: {libraries}",
        f"- data: **{data['kind']}**: {data['description']}; corpus and {data['queries']} "
        f"queries disjoint, shuffled with seed {settings['seed']}",
        f"- HNSW: M={settings['m']}, efConstruction={settings['ef_construction']}, efSearch "
        f"swept over {settings['ef_search']}; builds on {settings['build_threads']} threads",
        f"- latency: batch 1, block-interleaved, timed calls per variant: {_timed(rows)} (of "
        f"{data['queries']}; fewer where the {settings['budget_s']} s budget ran out); throughput: "
        f"batch {settings['batch']}, queries/s at the median of up to "
        f"{settings['batch_repeats']} batches",
        "",
        "| size | candidate | params | threads | recall@10 | p50 ms | p95 ms | p99 ms | "
        "batch-32 q/s | build s | disk MB | load RSS MB | round-trip |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in rows]
    if report["skipped"]:
        lines += ["", f"Skipped (not installed): {', '.join(sorted(set(report['skipped'])))}"]
    smallest = smallest_passing_breadth(rows, settings["min_recall"])
    lines += [
        "",
        f"Smallest search breadth reaching recall@10 >= {settings['min_recall']}:",
        "",
        "| size | candidate | threads | efSearch | recall@10 | p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.size:,} | {r.candidate} | {_threads(r.threads)} | {r.params['efSearch']} | "
        f"{r.recall_at_10:.4f} | {r.p50_ms:.3f} | {r.p99_ms:.3f} |"
        for r in smallest
    ]
    lines += ["", report["choice_text"], ""]
    return "\n".join(lines)


def describe_cpu() -> dict[str, Any]:
    import torch  # noqa: PLC0415 - describe_machine needs a device

    from prime_model.bench.machine import describe_machine  # noqa: PLC0415 - imports torch

    machine = describe_machine(torch.device("cpu"))
    faiss = optional_module("faiss")
    return {
        "processor": machine.processor,
        "instruction_set": machine.instruction_set,
        "cpu_features": list(machine.cpu_features),
        "avx512": "avx512f" in machine.cpu_features,
        "avx2": "avx2" in machine.cpu_features,
        "cpus": os.cpu_count(),
        "faiss_compile_options": None if faiss is None else faiss.get_compile_options().strip(),
    }


def run(
    dataset: Dataset, sizes: Sequence[int], n_queries: int, settings: Settings
) -> tuple[dict[str, Any], list[Row]]:
    started = time.perf_counter()
    rows: list[Row] = []
    skipped: list[str] = []
    corpus, queries = split_corpus_queries(dataset.vectors, max(sizes), n_queries, settings.seed)
    with tempfile.TemporaryDirectory(prefix="index_choice-") as tmp:
        for size in sorted(sizes):
            workdir = Path(tmp) / str(size)
            workdir.mkdir()
            size_rows, size_skipped = measure_size(corpus[:size], queries, settings, workdir)
            rows += size_rows
            skipped += size_skipped
            gc.collect()
    pick = choose(rows, max(sizes), settings.min_recall)
    report: dict[str, Any] = {
        "machine": describe_cpu(),
        "libraries": {
            name: _version(name) for name in ("numpy", "faiss-cpu", "usearch", "hnswlib")
        },
        "data": {
            "kind": dataset.kind,
            "description": dataset.description,
            "vectors": len(dataset.vectors),
            "dim": int(dataset.vectors.shape[1]),
            "queries": n_queries,
        },
        "settings": {**dataclasses.asdict(settings), "k": K},
        "rows": [{**dataclasses.asdict(r), "label": r.label} for r in rows],
        "skipped": skipped,
        "smallest_passing_breadth": [
            dataclasses.asdict(r) for r in smallest_passing_breadth(rows, settings.min_recall)
        ],
        "choice": None if pick is None else dataclasses.asdict(pick),
        "choice_text": choice_text(rows, settings.min_recall, settings.batch),
        "seconds": time.perf_counter() - started,
    }
    return report, rows


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_ints, default=(10_000, 100_000), help="corpus sizes")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries")
    parser.add_argument("--out", type=Path, default=Path("outputs/index_choice"))
    parser.add_argument(
        "--data", choices=("auto", "synthetic"), default="auto",
        help="auto: embedding cache, else encode ../shared/data, else synthetic",
    )  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the encoder's")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="for encoding")
    parser.add_argument("--m", type=int, default=32, help="HNSW M (usearch connectivity)")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", type=_ints, default=(32, 64, 128, 256))
    parser.add_argument("--threads", type=_ints, default=(1, 2), help="search thread settings")
    parser.add_argument("--usearch-dtypes", type=_names, default=("f32", "f16", "i8"))
    parser.add_argument("--candidates", type=_names, default=CANDIDATES)
    parser.add_argument("--min-recall", type=float, default=MIN_RECALL)
    parser.add_argument("--budget-s", type=float, default=180.0, help="per size and timing run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # "could not load AVX512 ..."
    unknown = set(args.candidates) - set(CANDIDATES)
    if unknown:
        parser.error(f"unknown candidates {sorted(unknown)}; expected some of {CANDIDATES}")
    settings = Settings(
        m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search,
        threads=args.threads, usearch_dtypes=args.usearch_dtypes, candidates=args.candidates,
        min_recall=args.min_recall, budget_s=args.budget_s, seed=args.seed,
    )  # fmt: skip
    needed = max(args.sizes) + args.queries
    dataset = load_vectors(
        needed, args.data, args.cache_dir or default_cache_dir(), args.data_dir, args.seed
    )
    logger.info("data: %s (%s)", dataset.kind, dataset.description)
    report, rows = run(dataset, args.sizes, args.queries, settings)
    write_text_atomic(args.out / "index_choice.json", json.dumps(report, indent=2) + "\n")
    table = to_markdown(report, rows)
    write_text_atomic(args.out / "index_choice.md", table)
    logger.info("%s", report["choice_text"])
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
