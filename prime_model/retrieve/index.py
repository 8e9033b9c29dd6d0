"""The retrieval index: corpus ids, texts and Y-Encoder vectors, searchable by inner product.

Saved as one directory (``index.json`` + ``items.parquet`` + the vectors or the HNSW graph) that
loads without ZenML; loading checks the files against each other before the search library
parses them (:mod:`.index_files`), so a tampered, truncated or inconsistent index is refused;
the search structures themselves (exact, HNSW) are in :mod:`.search_backends`.
``index.json`` records the Y-Encoder's fingerprint (:mod:`prime_model.encode.identity`), so an
index is served only with the encoder that made it. HNSW (FAISS) is the default: exact search
over 100k × 384 floats streams 150 MB per query.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field

from prime_model.atomic import atomic_directory, check_replaceable, sha256_file, write_error
from prime_model.config import FrozenConfig
from prime_model.errors import RetrievalError
from prime_model.retrieve.index_files import (
    CHECKSUM_KEY,
    DATA_FILES,
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILES,
    ITEMS_FILE,
    META_FILE,
    check_unit_rows,
    meta_checksum,
    read_index_files,
)
from prime_model.retrieve.search_backends import (
    Backend,
    ExactBackend,
    Floats,
    HnswBackend,
    load_backend,
)
from prime_model.text import shown
from prime_model.unicode_checks import has_lone_surrogate

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "FORMAT_VERSION", "ITEMS_FILE", "META_FILE", "IndexConfig", "RetrievalIndex"]


class IndexConfig(FrozenConfig):
    """Which index and how broad its search; the defaults hold recall@10 ≥ 0.98 of exact."""

    kind: Literal["hnsw", "exact"] = Field("hnsw", description="hnsw (FAISS) or exact search")
    m: int = Field(32, ge=4, le=256, description="HNSW links per node")
    ef_construction: int = Field(200, ge=8, le=4096, description="HNSW breadth while building")
    ef_search: int = Field(128, ge=1, le=4096, description="HNSW breadth per query")
    threads: int = Field(1, ge=1, le=256, description="search threads (1: no OpenMP spin)")


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    score: float


class SearchIndex(Protocol):
    """What the online service needs of an index: this module's, or a vector database's."""

    @property
    def dim(self) -> int: ...

    @property
    def encoder_name(self) -> str: ...

    @property
    def encoder_fingerprint(self) -> str | None: ...

    @property
    def kind(self) -> str: ...

    def __len__(self) -> int: ...

    def search(self, queries: npt.ArrayLike, k: int = 10) -> list[list[Hit]]: ...


class RetrievalIndex:
    """Corpus items and their vectors; :meth:`search` maps predicted embeddings to hits."""

    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        backend: Backend,
        *,
        dim: int,
        encoder_name: str,
        config: IndexConfig,
        encoder_fingerprint: str | None = None,
    ) -> None:
        self.ids, self.texts = list(ids), list(texts)
        self._backend, self.dim, self.encoder_name, self.config = backend, dim, encoder_name, config
        self.encoder_fingerprint = encoder_fingerprint

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        return self.config.kind

    def vectors(self) -> Floats:
        """Every item's vector, in item order (to export the corpus to a vector database)."""
        return self._backend.vectors()

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: npt.ArrayLike,
        *,
        encoder_name: str,
        encoder_fingerprint: str | None = None,
        config: IndexConfig | None = None,
    ) -> RetrievalIndex:
        """Index ``vectors`` (one L2-normalised Y-Encoder row per id, as the encoder gives);
        ``encoder_fingerprint`` (see :func:`~prime_model.encode.identity.encoder_fingerprint`)
        lets a server refuse an encoder that would not reproduce them."""
        config = config or IndexConfig()
        matrix = _check_items(ids, texts, vectors)
        backend: Backend = (
            ExactBackend(matrix) if config.kind == "exact" else HnswBackend.build(matrix, config)
        )
        logger.info("indexed %d items (%s, dim %d)", len(ids), config.kind, matrix.shape[1])
        return cls(
            ids, texts, backend, dim=matrix.shape[1], encoder_name=encoder_name, config=config,
            encoder_fingerprint=encoder_fingerprint,
        )  # fmt: skip

    def search(self, queries: npt.ArrayLike, k: int = 10) -> list[list[Hit]]:
        """The ``k`` best items per query row, best first (fewer if the corpus is smaller)."""
        matrix = query_matrix(queries, self.dim)
        k = max(1, min(k, len(self)))
        scores, rows = self._backend.search(matrix, k)
        return [
            [
                Hit(self.ids[r], self.texts[r], float(s))
                for s, r in zip(score_row, row, strict=True)
                if r >= 0  # FAISS pads with -1 when the graph yields fewer than k
            ]
            for score_row, row in zip(scores, rows, strict=True)
        ]

    def save(self, directory: str | Path) -> Path:
        """Write the directory atomically: a reader sees the old index or the whole new one.

        An existing ``directory`` is replaced only if it holds nothing but index files."""
        directory = Path(directory)
        check_replaceable(directory, INDEX_FILES)
        try:
            self._write(directory)
        except OSError as exc:  # a full disk, no permission, a file where a folder goes
            raise write_error(directory, exc) from None
        return directory

    def _write(self, directory: Path) -> None:
        data_name = DATA_FILES[self.config.kind]
        with atomic_directory(directory, INDEX_FILES) as staging:
            pd.DataFrame({"id": self.ids, "text": self.texts}).to_parquet(
                staging / ITEMS_FILE, index=False
            )
            self._backend.save(staging / data_name)
            meta: dict[str, Any] = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "encoder_name": self.encoder_name,
                "encoder_fingerprint": self.encoder_fingerprint,
                "dim": self.dim,
                "count": len(self),
                "config": self.config.model_dump(),
                "sha256": {name: sha256_file(staging / name) for name in (ITEMS_FILE, data_name)},
            }
            meta[CHECKSUM_KEY] = meta_checksum(meta)
            (staging / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, config: IndexConfig | None = None) -> RetrievalIndex:
        """Read a directory :meth:`save` wrote, once its files are consistent (see
        :func:`~prime_model.retrieve.index_files.read_index_files`).

        ``config`` may change the search settings (``ef_search``, ``threads``), not the kind.
        """
        directory = Path(directory)
        files = read_index_files(directory, IndexConfig)
        stored = IndexConfig(**files.config)
        if config is not None and config.kind != stored.kind:
            raise RetrievalError(
                f"{directory}: the index is {stored.kind!r}; cannot search it as {config.kind!r}"
            )
        config = config or stored
        backend = load_backend(files, config)
        return cls(
            files.ids,
            files.texts,
            backend,
            dim=int(files.meta["dim"]),
            encoder_name=str(files.meta["encoder_name"]),
            config=config,
            encoder_fingerprint=files.meta.get("encoder_fingerprint"),
        )


def _check_items(ids: Sequence[str], texts: Sequence[str], vectors: npt.ArrayLike) -> Floats:
    try:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise RetrievalError(
            f"corpus vectors are {shown(vectors)}; expected an N×D array of floats"
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise RetrievalError(
            f"corpus vectors have shape {matrix.shape}; expected N×D with N, D ≥ 1"
        )
    if not len(ids) == len(texts) == matrix.shape[0]:
        raise RetrievalError(
            f"{len(ids)} ids, {len(texts)} texts and {matrix.shape[0]} vectors; expected one of "
            "each per corpus item"
        )
    if not all(isinstance(i, str) and i for i in ids) or not all(isinstance(t, str) for t in texts):
        raise RetrievalError("corpus ids must be non-empty strings and texts strings")
    if any(has_lone_surrogate(i) for i in ids) or any(has_lone_surrogate(t) for t in texts):
        raise RetrievalError(
            "a corpus id or text holds a lone surrogate (such as \\ud800), which has no UTF-8 "
            "form; expected valid Unicode text"
        )
    duplicated = pd.Index(ids)[pd.Index(ids).duplicated()].unique().tolist()
    if duplicated:
        raise RetrievalError(
            f"corpus ids {shown(duplicated[:5])} occur more than once; expected unique ids"
        )
    check_unit_rows(matrix, "corpus vectors")
    return matrix


def query_matrix(queries: npt.ArrayLike, dim: int) -> Floats:
    try:
        matrix = np.ascontiguousarray(queries, dtype=np.float32)
    except (TypeError, ValueError):
        raise RetrievalError(f"queries are {shown(queries)}; expected a B×{dim} array") from None
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise RetrievalError(f"queries have shape {matrix.shape}; expected B×{dim}")
    check_unit_rows(matrix, "queries")
    return matrix
