"""What the load test serves: the model (the production version's ONNX file, or a checkpoint
exported here), the index (real corpus texts from the embedding cache, or the production index
padded with filler), and ``prime serve`` in a subprocess so the server's memory is its own."""

from __future__ import annotations

import http.client
import json
import logging
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import numpy as np

from prime_model.retrieve.index import IndexConfig, RetrievalIndex

logger = logging.getLogger("benchmarks.load_test")

FILLER_SEED: Final = 7
_PRIME: Final = "import sys; from prime_model.cli.main import main; sys.exit(main())"


# -------------------------------------------------------------------------------------- model


def production_files(workdir: Path) -> tuple[Path, RetrievalIndex, int]:
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


def exported_model(model: Path, workdir: Path) -> tuple[Path, int]:
    """A checkpoint directory exported (verified fp32, the library's export) into ``workdir``,
    or an ``.onnx`` file as it is; with the number of turns the model reads."""
    if model.suffix == ".onnx":
        from prime_model.runtime.onnx_runtime import OnnxPredictor  # noqa: PLC0415

        return model, OnnxPredictor.from_file(model).config.max_context_length
    from prime_model.checkpoint import load_checkpoint  # noqa: PLC0415
    from prime_model.export.export import export_onnx  # noqa: PLC0415

    checkpoint = load_checkpoint(model)
    result = export_onnx(checkpoint, workdir / "model.onnx")
    return result.path, checkpoint.metadata.predictor_config.max_context_length


# -------------------------------------------------------------------------------------- index


def cached_first(candidates: Sequence[str], cached: set[bytes], items: int) -> list[str]:
    """Up to ``items`` distinct non-blank texts, those already in the embedding cache first
    (each group in input order), so a 100k index costs no encoding when the cache holds it."""
    from prime_model.encode.cache import text_key  # noqa: PLC0415

    unique = [t for t in dict.fromkeys(candidates) if t.strip()]
    hit = [t for t in unique if text_key(t) in cached]
    miss = [t for t in unique if text_key(t) not in cached]
    return [*hit, *miss][:items]


def real_index(
    first: Sequence[str], data_dir: Path, items: int, config: IndexConfig
) -> tuple[RetrievalIndex, str]:
    """An index of ``items`` real texts: ``first`` (the request set's targets), then the public
    corpus texts (:func:`benchmarks.index_data.public_texts`), encoded by the Y-Encoder behind
    the embedding cache (cached texts chosen first); filler tops it up only if they run out."""
    from benchmarks.index_data import public_texts, read_cache_vectors  # noqa: PLC0415
    from prime_model.encode.cache import cached, default_cache_dir  # noqa: PLC0415
    from prime_model.encode.encoders import SentenceTransformerEncoder  # noqa: PLC0415
    from prime_model.encode.identity import encoder_fingerprint  # noqa: PLC0415

    loaded = SentenceTransformerEncoder()
    _, keys, _ = read_cache_vectors(default_cache_dir(), loaded.name)
    texts = cached_first([*first, *public_texts(data_dir)], keys, items)
    encoder = cached(loaded, default_cache_dir(), loaded.identity)
    vectors = encoder.encode(texts)
    index = RetrievalIndex.build(
        [f"text-{i}" for i in range(len(texts))], texts, vectors, encoder_name=encoder.name,
        encoder_fingerprint=encoder_fingerprint(encoder), config=config,
    )  # fmt: skip
    where = (
        f"{len(texts)} real texts ({len(set(first))} distinct request targets, then {data_dir}; "
        "embedding-cached texts first)"
    )
    if len(texts) < items:
        logger.warning("only %d real texts; %d filler items added", len(texts), items - len(texts))
        where += f" + {items - len(texts)} random filler"
        index = pad_index(index, items, config)
    return index, where


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
        encoder_fingerprint=index.encoder_fingerprint,
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


def served_recall(index: RetrievalIndex, model: Path, bodies: Sequence[bytes]) -> float:
    """Recall@10 vs exact for the predicted embeddings of the load test's own requests."""
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.http.request import parse_request  # noqa: PLC0415
    from prime_model.http.service import Retriever, serving_encoder  # noqa: PLC0415
    from prime_model.runtime.onnx_runtime import OnnxPredictor  # noqa: PLC0415

    predictor, encoder = OnnxPredictor.from_file(model), serving_encoder(EncoderConfig())
    retriever = Retriever(predictor, encoder, index, model_version="load-test")  # as served
    queries = [retriever.predict(parse_request(body))[0] for body in bodies[:300]]
    return recall_vs_exact(index, np.stack(queries))


# ------------------------------------------------------------------------------------- server


def wait_for(url: str, process: subprocess.Popen[bytes] | None, timeout: float = 300) -> None:
    """Until ``GET /health`` answers 200; a server that exits or never answers is an error."""
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


def cache_counts(base: str) -> tuple[int, int] | None:
    """(hits, misses) of the server's text cache from ``GET /info``; None if it has none."""
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=10)
    try:
        connection.request("GET", "/info")
        cache = json.loads(connection.getresponse().read()).get("encoder_cache")
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
    if not isinstance(cache, dict):
        return None
    return int(cache.get("hits", 0)), int(cache.get("misses", 0))


def hit_rate(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The cache's hit rate between two ``/info`` readings; None without texts in between."""
    if before is None or after is None:
        return None
    hits, misses = after[0] - before[0], after[1] - before[1]
    return hits / (hits + misses) if hits + misses > 0 else None


@contextmanager
def prime_serve(model: Path, index_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``prime serve`` on loopback in a subprocess, healthy on entry, stopped on exit."""
    command = [sys.executable, "-c", _PRIME, "serve", "--model", str(model),
               "--index", str(index_dir), "--port", str(port), "--quiet"]  # fmt: skip
    process = subprocess.Popen(command)  # noqa: S603 - our own interpreter and arguments
    try:
        wait_for(f"http://127.0.0.1:{port}", process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
