"""The search structures behind a :class:`~prime_model.retrieve.index.RetrievalIndex`.

Exact inner-product search (numpy) and an HNSW graph (FAISS), behind one small protocol so the
index does not care which it holds; each saves itself in its own file format.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from safetensors.numpy import save_file

from prime_model.errors import RetrievalError
from prime_model.retrieve._faiss import faiss
from prime_model.retrieve.index_files import IndexFiles
from prime_model.text import shown

Floats = npt.NDArray[np.float32]
Rows = npt.NDArray[np.int64]


class HnswSettings(Protocol):
    """The HNSW settings a backend reads (:class:`~prime_model.retrieve.index.IndexConfig`)."""

    @property
    def m(self) -> int: ...
    @property
    def ef_construction(self) -> int: ...
    @property
    def ef_search(self) -> int: ...
    @property
    def threads(self) -> int: ...


class Backend(Protocol):
    """What the index needs of a search structure: top-k scores and rows, its vectors, a file."""

    def search(self, queries: Floats, k: int) -> tuple[Floats, Rows]: ...

    def vectors(self) -> Floats: ...

    def save(self, path: Path) -> None: ...


class ExactBackend:
    """Every vector scored per query: exact, and fast enough for small corpora."""

    def __init__(self, vectors: Floats) -> None:
        self.matrix = vectors

    def search(self, queries: Floats, k: int) -> tuple[Floats, Rows]:
        scores = queries @ self.matrix.T
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        return np.take_along_axis(picked, order, 1), np.take_along_axis(top, order, 1)

    def vectors(self) -> Floats:
        return self.matrix

    def save(self, path: Path) -> None:
        save_file({"vectors": self.matrix}, str(path))


class HnswBackend:
    """A FAISS HNSW graph: approximate, sub-linear; ``threads`` caps OpenMP per search."""

    def __init__(self, index: faiss.IndexHNSWFlat, config: HnswSettings) -> None:
        index.hnsw.efSearch = config.ef_search
        self.index, self.threads = index, config.threads

    @classmethod
    def build(cls, vectors: Floats, config: HnswSettings) -> HnswBackend:
        index = faiss.IndexHNSWFlat(vectors.shape[1], config.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
        index.add(vectors)  # every core: building is the slow part
        return cls(index, config)

    def search(self, queries: Floats, k: int) -> tuple[Floats, Rows]:
        faiss.omp_set_num_threads(self.threads)
        scores, rows = self.index.search(queries, min(k, self.index.ntotal))
        return scores, rows.astype(np.int64, copy=False)

    def vectors(self) -> Floats:
        out: Floats = self.index.reconstruct_n(0, self.index.ntotal)
        return out

    def save(self, path: Path) -> None:
        try:
            faiss.write_index(self.index, str(path))
        except RuntimeError as exc:  # FAISS reports a failed write (full disk) this way
            # "... 4331 != 68568 (File too large)": keep the OS's reason for atomic_directory
            reason = re.search(r"\(([^()]+)\)\W*$", str(exc))
            raise OSError(
                errno.EIO, f"FAISS could not write the index ({reason[1] if reason else exc})"
            ) from None


def load_backend(files: IndexFiles, config: HnswSettings) -> Backend:
    """The search structure over files :func:`read_index_files` has already checked."""
    if files.exact_vectors is not None:
        return ExactBackend(files.exact_vectors)
    path = files.data
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise RetrievalError(f"{path}: unreadable HNSW index ({shown(str(exc))})") from None
    if not isinstance(index, faiss.IndexHNSWFlat):
        raise RetrievalError(f"{path}: a {type(index).__name__}; expected an HNSW flat index")
    return HnswBackend(index, config)
