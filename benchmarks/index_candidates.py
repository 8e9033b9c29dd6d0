"""The index-choice candidates: each library's index built, saved, loaded again and searchable.

Every candidate goes through its library's own file format (the search runs on the loaded copy)
and reports its build time, file size, the resident memory the load added and whether the loaded
copy answers exactly as the built one. Libraries that are not installed are skipped.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np

from benchmarks.index_data import FloatArray, IdArray, K, SearchFn, exact_search

logger = logging.getLogger("benchmarks.index_choice")

MIN_RECALL: Final = 0.98
CANDIDATES: Final = ("exact-numpy", "faiss-flat", "faiss-hnsw", "usearch", "hnswlib")
HNSW: Final = frozenset({"faiss-hnsw", "usearch", "hnswlib"})


def optional_module(module: str) -> Any | None:
    """The module, or None where it is not installed (its candidate is then skipped)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


@dataclass(frozen=True)
class Settings:
    """What is built and how it is searched and timed (the CLI's flags)."""

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
    threadpoolctl = optional_module("threadpoolctl")
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
    faiss = optional_module("faiss")
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
    usearch = optional_module("usearch.index")
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
    hnswlib = optional_module("hnswlib")
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
