"""The index-choice benchmark's data: real (or, short of that, synthetic) unit vectors, and the
exact search every candidate's recall is judged against.

Real all-MiniLM-L6-v2 vectors come from the embedding cache (``prime_model.encode.cache``),
deduplicated; short of enough, texts from ``../shared/data`` are encoded (and cached); as a last
resort synthetic clustered unit vectors are used, and the dataset says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError
from safetensors.numpy import load_file

from prime_model.encode.cache import text_key
from prime_model.encode.encoders import DEFAULT_ENCODER_NAME

logger = logging.getLogger("benchmarks.index_choice")

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
SearchFn = Callable[[FloatArray], IdArray]

K: Final = 10
_KEY_BYTES: Final = 32
_CHUNK: Final = 256  # queries per exact-search matmul (1000 x 100k float32 would be 400 MB)
DEFAULT_DATA: Final = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415
    from prime_model.encode.progress import ProgressEncoder  # noqa: PLC0415

    fresh = [t for t in public_texts(data_dir) if text_key(t) not in known][:needed]
    logger.warning(
        "encoding %d texts from %s (slow on a CPU; cached for next time)", len(fresh), data_dir
    )
    loaded = load_encoder(EncoderConfig(engine="onnx"))  # the batch fast path, same vectors
    return cached(ProgressEncoder(loaded), cache_dir, loaded.identity).encode(fresh)


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
