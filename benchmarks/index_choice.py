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
import importlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError
from safetensors.numpy import load_file

from prime_model.atomic import write_text_atomic
from prime_model.encode.cache import default_cache_dir, text_key
from prime_model.encode.encoders import DEFAULT_ENCODER_NAME
from prime_model.bench.timing import interleaved_seconds

logger = logging.getLogger("benchmarks.index_choice")

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
SearchFn = Callable[[FloatArray], IdArray]

K: Final = 10
MIN_RECALL: Final = 0.98
REQUEST_P99_BUDGET_MS: Final = 25.0  # the whole HTTP request, of which the search is a part
CANDIDATES: Final = ("exact-numpy", "faiss-flat", "faiss-hnsw", "usearch", "hnswlib")
HNSW: Final = frozenset({"faiss-hnsw", "usearch", "hnswlib"})
_KEY_BYTES: Final = 32
_PROBE: Final = 20  # queries compared before and after the save/load round trip
_CHUNK: Final = 256  # queries per exact-search matmul (1000 x 100k float32 would be 400 MB)
_DEFAULT_DATA: Final = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _optional(module: str) -> Any | None:
    """The module, or None where it is not installed (its candidate is then skipped)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """The vectors the benchmark draws its corpus and queries from, and where they came from."""

    vectors: FloatArray
    kind: str  # "real-cache", "real-encoded" or "synthetic"
    description: str


def dedupe_rows(vectors: FloatArray) -> FloatArray:
    """``vectors`` without repeated rows (byte-identical), first occurrences in input order."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(rows) == 0:
        return rows
    as_bytes = rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel()
    _, first = np.unique(as_bytes, return_index=True)
    return rows[np.sort(first)]


def read_cache_vectors(
    cache_dir: Path, encoder_name: str = DEFAULT_ENCODER_NAME
) -> tuple[FloatArray, set[bytes], list[Path]]:
    """Every vector in the ``<encoder_name>-*`` folders of an embedding cache, deduplicated;
    also the text keys found (to encode only new texts) and the shards read. Unreadable or
    odd-shaped shards are skipped with a warning, as the cache itself does."""
    shards = sorted(cache_dir.glob(f"{encoder_name}-*/*.safetensors"))
    parts: list[FloatArray] = []
    keys: set[bytes] = set()
    read: list[Path] = []
    dim: int | None = None
    for shard in shards:
        try:
            tensors = load_file(shard)
            shard_keys, vectors = tensors["keys"], tensors["vectors"]
        except (OSError, SafetensorError, KeyError) as exc:
            logger.warning("skipping unreadable shard %s (%s)", shard, exc)
            continue
        dim = dim if dim is not None else (vectors.shape[1] if vectors.ndim == 2 else None)
        if (
            vectors.ndim != 2
            or vectors.shape[1] != dim
            or shard_keys.shape != (len(vectors), _KEY_BYTES)
        ):
            logger.warning("skipping shard %s of shape %s", shard, vectors.shape)
            continue
        parts.append(vectors.astype(np.float32, copy=False))
        keys.update(bytes(k) for k in shard_keys)
        read.append(shard)
    if not parts:
        return np.zeros((0, dim or 0), dtype=np.float32), keys, read
    return dedupe_rows(np.concatenate(parts)), keys, read


def clustered_unit_vectors(
    n: int, dim: int = 384, clusters: int = 64, spread: float = 0.6, seed: int = 0
) -> FloatArray:
    """Synthetic unit vectors around random centres: a stand-in with some of real embeddings'
    structure (isotropic random vectors are a worst case real sentence embeddings are not)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * np.float32(spread / np.sqrt(dim))
    points = centres[rng.integers(0, clusters, n)] + noise
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return np.asarray(points, dtype=np.float32)


def public_texts(data_dir: Path) -> list[str]:
    """Unique texts (queries, rewrites, answers, history turns) of CANARD and TopiOCQA."""
    from prime_model.data import read_turns  # noqa: PLC0415 - only for the encoding fallback

    frames = [
        read_turns(data_dir / "canard" / "train.question.tsv", "canard", target="rewrite"),
        read_turns(data_dir / "canard" / "dev.json", "canard", target="answer"),
        read_turns(data_dir / "topiocqa" / "topiocqa_train.json.gz", "topiocqa", target="answer"),
    ]
    texts: dict[str, None] = {}
    for frame in frames:
        for query, target, history in zip(
            frame["query"], frame["target"], frame["history"], strict=True
        ):
            for text in (query, target, *history):
                if isinstance(text, str) and text.strip() and text != "UNANSWERABLE":
                    texts.setdefault(text, None)
    return list(texts)


def _encode_public(data_dir: Path, cache_dir: Path, needed: int, known: set[bytes]) -> FloatArray:
    from prime_model.encode.cache import cached  # noqa: PLC0415 - loads the encoder stack
    from prime_model.encode.encoders import SentenceTransformerEncoder  # noqa: PLC0415

    fresh = [t for t in public_texts(data_dir) if text_key(t) not in known][:needed]
    logger.warning(
        "encoding %d texts from %s (slow on a CPU; cached for next time)", len(fresh), data_dir
    )
    loaded = SentenceTransformerEncoder()
    return cached(loaded, cache_dir, loaded.identity).encode(fresh)


def load_vectors(needed: int, mode: str, cache_dir: Path, data_dir: Path, seed: int = 0) -> Dataset:
    """At least ``needed`` vectors: from the cache, else topped up by encoding public texts,
    else synthetic (``mode="synthetic"`` goes straight there)."""
    if mode == "auto":
        vectors, keys, shards = read_cache_vectors(cache_dir)
        folders = sorted({s.parent.name for s in shards})
        where = f"{len(shards)} shards in {cache_dir} ({', '.join(folders) or 'none'})"
        if len(vectors) >= needed:
            return Dataset(vectors, "real-cache", f"{len(vectors)} unique cached vectors, {where}")
        logger.warning(
            "the embedding cache holds %d unique vectors, %d needed", len(vectors), needed
        )
        if (data_dir / "canard" / "train.question.tsv").is_file():
            extra = _encode_public(data_dir, cache_dir, needed - len(vectors), keys)
            merged = dedupe_rows(np.concatenate([vectors.reshape(-1, extra.shape[1]), extra]))
            if len(merged) >= needed:
                return Dataset(
                    merged, "real-encoded",
                    f"{len(vectors)} cached + {len(extra)} newly encoded texts from {data_dir}",
                )  # fmt: skip
            logger.warning("only %d real vectors even after encoding %s", len(merged), data_dir)
        else:
            logger.warning("no public data at %s to encode", data_dir)
        logger.warning("FALLING BACK TO SYNTHETIC VECTORS: the numbers are not real-data numbers")
    vectors = clustered_unit_vectors(needed, seed=seed)
    return Dataset(vectors, "synthetic", f"{needed} SYNTHETIC clustered unit vectors (384-d)")


def split_corpus_queries(
    vectors: FloatArray, corpus_size: int, n_queries: int, seed: int
) -> tuple[FloatArray, FloatArray]:
    """A seeded shuffle; the first ``corpus_size`` rows are the corpus, the next ``n_queries``
    the (disjoint) queries. Smaller corpora are prefixes of this one."""
    if corpus_size + n_queries > len(vectors):
        raise ValueError(f"{corpus_size} + {n_queries} vectors needed, {len(vectors)} available")
    order = np.random.default_rng(seed).permutation(len(vectors))
    corpus = np.ascontiguousarray(vectors[order[:corpus_size]], dtype=np.float32)
    queries = np.ascontiguousarray(
        vectors[order[corpus_size : corpus_size + n_queries]], dtype=np.float32
    )
    return corpus, queries


# ------------------------------------------------------------------------------ exact and recall


def exact_search(corpus: FloatArray, queries: FloatArray, k: int = K) -> IdArray:
    """Top-``k`` ids by inner product, best first: float32 matmul + argpartition."""
    scores = queries @ corpus.T
    top = np.argpartition(scores, len(corpus) - k, axis=1)[:, len(corpus) - k :]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.int64)


def search_all(search: SearchFn, queries: FloatArray, chunk: int = _CHUNK) -> IdArray:
    parts = [search(queries[i : i + chunk]) for i in range(0, len(queries), chunk)]
    return np.concatenate(parts).astype(np.int64)


def recall_at_k(found: IdArray, truth: IdArray) -> float:
    """Mean fraction of each query's true top-k ids among the k found (order ignored)."""
    if found.shape != truth.shape:
        raise ValueError(f"found {found.shape} vs truth {truth.shape}")
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


# ------------------------------------------------------------------------------------ candidates


@dataclass(frozen=True)
class Settings:
    m: int = 32
    ef_construction: int = 200
    ef_search: tuple[int, ...] = (32, 64, 128, 256)
    threads: tuple[int, ...] = (1, 2)
    build_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    usearch_dtypes: tuple[str, ...] = ("f32", "f16", "i8")
    candidates: tuple[str, ...] = CANDIDATES
    min_recall: float = MIN_RECALL
    batch: int = 32
    batch_repeats: int = 10  # timed batches per variant (throughput is the secondary number)
    budget_s: float | None = 180.0  # per size, for each of the two timing runs
    seed: int = 0


@dataclass(frozen=True)
class Variant:
    """One way of searching a built index: breadth and threads fixed."""

    search_params: dict[str, int]
    threads: int  # 0: the library's default
    batch: SearchFn  # (n, d) -> (n, K)
    one: Callable[[FloatArray], object]  # (1, d): the single-query call a server would make


@dataclass
class Built:
    candidate: str
    build_params: dict[str, int | str]
    build_s: float
    disk_bytes: int
    rss_bytes: int | None  # resident memory the load added (approximate: allocator caches)
    roundtrip_identical: bool
    variants: list[Variant]
    index: Any = None  # kept alive for the variants' closures


def _rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _disk_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _round_trip(
    make: Callable[[], Any],
    save: Callable[[Any, Path], None],
    load: Callable[[Path], Any],
    *,
    probe_search: Callable[[Any, FloatArray], IdArray],
    path: Path,
    probe: FloatArray,
) -> tuple[Any, float, int, int | None, bool]:
    """Build (timed), save, drop, load: (loaded index, build s, bytes on disk, RSS the load
    added, whether the loaded index answers the probe queries exactly as the built one)."""
    start = time.perf_counter()
    built = make()
    build_s = time.perf_counter() - start
    before = probe_search(built, probe)
    save(built, path)
    disk = _disk_bytes(path)
    rss = _rss_bytes()  # the built index stays alive: the load cannot reuse its memory
    loaded = load(path)
    after_rss = _rss_bytes()
    del built
    grown = None if rss is None or after_rss is None else max(0, after_rss - rss)
    identical = bool(np.array_equal(before, probe_search(loaded, probe)))
    return loaded, build_s, disk, grown, identical


def build_exact(corpus: FloatArray, settings: Settings, workdir: Path, probe: FloatArray) -> Built:
    threadpoolctl = _optional("threadpoolctl")
    index, build_s, disk, rss, same = _round_trip(
        lambda: np.ascontiguousarray(corpus.copy()),
        lambda x, p: np.save(p, x),
        lambda p: np.ascontiguousarray(np.load(p)),
        probe_search=exact_search,
        path=workdir / "exact.npy",
        probe=probe,
    )

    def limited(threads: int) -> SearchFn:
        if threadpoolctl is None or threads == 0:
            return lambda q: exact_search(index, q)
        controller = threadpoolctl.ThreadpoolController()

        def search(q: FloatArray) -> IdArray:
            with controller.limit(limits=threads, user_api="blas"):
                return exact_search(index, q)

        return search

    thread_options = settings.threads if threadpoolctl is not None else (0,)
    variants = [Variant({}, t, limited(t), limited(t)) for t in thread_options]
    return Built("exact-numpy", {}, build_s, disk, rss, same, variants, index)


def build_faiss(
    corpus: FloatArray, settings: Settings, workdir: Path, probe: FloatArray, *, hnsw: bool
) -> Built | None:
    faiss = _optional("faiss")
    if faiss is None:
        return None
    dim = corpus.shape[1]

    def make() -> Any:
        faiss.omp_set_num_threads(settings.build_threads)
        if hnsw:
            index = faiss.IndexHNSWFlat(dim, settings.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = settings.ef_construction
        else:
            index = faiss.IndexFlatIP(dim)
        index.add(corpus)
        return index

    def params(ef: int) -> Any:
        return faiss.SearchParametersHNSW(efSearch=ef) if hnsw else None

    def searcher(index: Any, ef: int, threads: int) -> SearchFn:
        search_params = params(ef)

        def search(q: FloatArray) -> IdArray:
            faiss.omp_set_num_threads(threads)
            ids: IdArray = index.search(q, K, params=search_params)[1]
            return ids

        return search

    top_ef = max(settings.ef_search)
    index, build_s, disk, rss, same = _round_trip(
        make,
        lambda x, p: faiss.write_index(x, str(p)),  # the SWIG binding takes str, not a Path
        lambda p: faiss.read_index(str(p)),
        probe_search=lambda x, q: searcher(x, top_ef, settings.build_threads)(q),
        path=workdir / ("hnsw.faiss" if hnsw else "flat.faiss"),
        probe=probe,
    )
    breadths = settings.ef_search if hnsw else (0,)
    variants = [
        Variant({"efSearch": ef} if hnsw else {}, t, searcher(index, ef, t), searcher(index, ef, t))
        for ef in breadths
        for t in settings.threads
    ]
    build: dict[str, int | str] = (
        {"M": settings.m, "efConstruction": settings.ef_construction} if hnsw else {}
    )
    return Built(
        "faiss-hnsw" if hnsw else "faiss-flat", build, build_s, disk, rss, same, variants, index
    )


def build_usearch(
    corpus: FloatArray, settings: Settings, workdir: Path, probe: FloatArray, dtype: str
) -> Built | None:
    usearch = _optional("usearch.index")
    if usearch is None:
        return None

    def make() -> Any:
        index = usearch.Index(
            ndim=corpus.shape[1], metric="ip", dtype=dtype, connectivity=settings.m,
            expansion_add=settings.ef_construction,
        )  # fmt: skip
        index.add(np.arange(len(corpus), dtype=np.uint64), corpus, threads=settings.build_threads)
        return index

    def searcher(index: Any, ef: int, threads: int) -> SearchFn:
        def search(q: FloatArray) -> IdArray:
            index.expansion_search = ef
            return np.asarray(index.search(q, K, threads=threads).keys, dtype=np.int64)

        return search

    def single(index: Any, ef: int, threads: int) -> Callable[[FloatArray], object]:
        def search(q: FloatArray) -> object:
            index.expansion_search = ef
            return index.search(q[0], K, threads=threads).keys

        return search

    top_ef = max(settings.ef_search)
    index, build_s, disk, rss, same = _round_trip(
        make,
        lambda x, p: x.save(str(p)),
        lambda p: usearch.Index.restore(str(p)),
        probe_search=lambda x, q: searcher(x, top_ef, settings.build_threads)(q),
        path=workdir / f"usearch-{dtype}.usearch",
        probe=probe,
    )
    variants = [
        Variant({"efSearch": ef}, t, searcher(index, ef, t), single(index, ef, t))
        for ef in settings.ef_search
        for t in settings.threads
    ]
    build: dict[str, int | str] = {
        "M": settings.m, "efConstruction": settings.ef_construction, "dtype": dtype,
        "simd": str(index.hardware_acceleration),
    }  # fmt: skip
    return Built(f"usearch-{dtype}", build, build_s, disk, rss, same, variants, index)


def build_hnswlib(
    corpus: FloatArray, settings: Settings, workdir: Path, probe: FloatArray
) -> Built | None:
    hnswlib = _optional("hnswlib")
    if hnswlib is None:
        return None
    n, dim = corpus.shape

    def make() -> Any:
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(
            max_elements=n, ef_construction=settings.ef_construction, M=settings.m,
            random_seed=settings.seed,
        )  # fmt: skip
        index.add_items(corpus, np.arange(n), num_threads=settings.build_threads)
        return index

    def load(path: Path) -> Any:
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), max_elements=n)  # ef is not saved: set before each search
        return index

    def searcher(index: Any, ef: int, threads: int) -> SearchFn:
        def search(q: FloatArray) -> IdArray:
            index.set_ef(ef)
            return np.asarray(index.knn_query(q, k=K, num_threads=threads)[0], dtype=np.int64)

        return search

    top_ef = max(settings.ef_search)
    index, build_s, disk, rss, same = _round_trip(
        make,
        lambda x, p: x.save_index(str(p)),
        load,
        probe_search=lambda x, q: searcher(x, top_ef, settings.build_threads)(q),
        path=workdir / "hnswlib.bin",
        probe=probe,
    )
    variants = [
        Variant({"efSearch": ef}, t, searcher(index, ef, t), searcher(index, ef, t))
        for ef in settings.ef_search
        for t in settings.threads
    ]
    build: dict[str, int | str] = {"M": settings.m, "efConstruction": settings.ef_construction}
    return Built("hnswlib", build, build_s, disk, rss, same, variants, index)


def build_all(
    corpus: FloatArray, settings: Settings, workdir: Path, probe: FloatArray
) -> tuple[list[Built], list[str]]:
    """Every selected candidate built and reloaded; also the names skipped (not installed)."""
    chosen = set(settings.candidates)
    args = (corpus, settings, workdir, probe)
    builders: list[tuple[str, Callable[[], Built | None]]] = []
    if "exact-numpy" in chosen:
        builders.append(("exact-numpy", partial(build_exact, *args)))
    if "faiss-flat" in chosen:
        builders.append(("faiss-flat", partial(build_faiss, *args, hnsw=False)))
    if "faiss-hnsw" in chosen:
        builders.append(("faiss-hnsw", partial(build_faiss, *args, hnsw=True)))
    if "usearch" in chosen:
        builders += [
            (f"usearch-{d}", partial(build_usearch, *args, d)) for d in settings.usearch_dtypes
        ]
    if "hnswlib" in chosen:
        builders.append(("hnswlib", partial(build_hnswlib, *args)))
    built: list[Built] = []
    skipped: list[str] = []
    for name, build in builders:
        result = build()
        if result is None:
            logger.warning("%s: library not installed, skipped", name)
            skipped.append(name)
            continue
        logger.info(
            "%s at %d: built in %.1f s, %.1f MB on disk", name, len(corpus), result.build_s,
            result.disk_bytes / 1e6,
        )  # fmt: skip
        built.append(result)
    return built, skipped


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
    faiss = _optional("faiss")
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
    parser.add_argument("--data-dir", type=Path, default=_DEFAULT_DATA, help="for encoding")
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
