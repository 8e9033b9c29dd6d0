"""Walk a FAISS ``IndexHNSWFlat`` file with numpy before FAISS parses it.

``faiss.read_index`` trusts every length field (a size of 2^36 in a 7 KB file asks for 256 GB)
and every neighbour id (an id past the vector count reads out of bounds at search time). This
reader checks the layout FAISS writes for an HNSW flat index field by field: each array fits in
the bytes that are left, the graph's ids and offsets point inside it, and the file ends exactly
where the vectors do. It returns the vectors (a view of the file) so the caller can check them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from prime_model.errors import RetrievalError

_HNSW_FLAT: Final = b"IHNf"
_FLAT: Final = (b"IxFI", b"IxF2")  # inner product, L2
_METRIC_INNER_PRODUCT: Final = 0
_MAX_LEVELS: Final = 64


@dataclass(frozen=True)
class HnswLayout:
    dim: int
    count: int
    links: int  # neighbours per node on the upper levels (the HNSW ``M``)
    vectors: npt.NDArray[np.float32]


class _Reader:
    def __init__(self, data: npt.NDArray[np.uint8], path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def fail(self, what: str) -> RetrievalError:
        return RetrievalError(
            f"{self.path}: not a consistent FAISS HNSW flat index ({what} at byte {self.at}); "
            "rebuild the index"
        )

    def take(self, size: int, what: str) -> npt.NDArray[np.uint8]:
        if size < 0 or size > len(self.data) - self.at:
            raise self.fail(f"{what} needs {size} bytes, {len(self.data) - self.at} are left")
        out = self.data[self.at : self.at + size]
        self.at += size
        return out

    def scalar(self, dtype: str, what: str) -> int:
        kind = np.dtype(dtype)
        return int(self.take(kind.itemsize, what).view(kind)[0])

    def array(self, dtype: str, what: str, per_count: int = 1) -> npt.NDArray[Any]:
        """A FAISS vector: a uint64 length (``per_count`` items each), then its items."""
        count = self.scalar("<u8", f"{what} length")
        kind = np.dtype(dtype)
        if count > (len(self.data) - self.at) // (kind.itemsize * per_count):
            raise self.fail(f"{what} claims {count} items, more than the file holds")
        return self.take(count * per_count * kind.itemsize, what).view(kind)

    def header(self, what: str) -> tuple[int, int]:
        dim = self.scalar("<i4", f"{what} dimension")
        count = self.scalar("<i8", f"{what} vector count")
        self.take(16 + 1, f"{what} header")  # two unused int64 fields, is_trained
        if self.scalar("<i4", f"{what} metric") != _METRIC_INNER_PRODUCT:
            raise self.fail(f"{what} metric is not inner product")
        return dim, count


def read_hnsw_layout(path: Path, dim: int, count: int) -> HnswLayout:
    """The checked layout of an HNSW flat file that must hold ``count`` vectors of ``dim``."""
    data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, "u1")
    reader = _Reader(data, path)
    if reader.take(4, "type tag").tobytes() != _HNSW_FLAT:
        raise reader.fail("type tag is not IHNf")
    if reader.header("index") != (dim, count):
        raise reader.fail(f"header does not hold {count} vectors of {dim} (as index.json says)")
    reader.array("<f8", "level probabilities")
    per_level = reader.array("<i4", "neighbours per level").astype(np.int64)
    levels = reader.array("<i4", "node levels").astype(np.int64)
    offsets = reader.array("<u8", "neighbour offsets")
    neighbours = reader.array("<i4", "neighbour lists")
    entry, max_level = reader.scalar("<i4", "entry point"), reader.scalar("<i4", "max level")
    reader.take(12, "search parameters")  # efConstruction, efSearch, an unused int
    _check_graph(
        reader, count, per_level=per_level, levels=levels, offsets=offsets,
        neighbours=neighbours, entry=entry, max_level=max_level,
    )  # fmt: skip
    if reader.take(4, "storage type tag").tobytes() not in _FLAT:
        raise reader.fail("storage is not a flat index")
    if reader.header("storage") != (dim, count):
        raise reader.fail(f"storage does not hold {count} vectors of {dim}")
    vectors = reader.array("<f4", "vectors")
    if vectors.size != count * dim:
        raise reader.fail(f"{vectors.size} vector values, expected {count} x {dim}")
    if reader.at != len(data):
        raise reader.fail(f"{len(data) - reader.at} unexpected trailing bytes")
    links = int(per_level[2] - per_level[1]) if per_level.size > 2 else 0
    return HnswLayout(dim, count, links, vectors.reshape(count, dim).astype(np.float32, copy=False))


def _check_graph(
    reader: _Reader,
    count: int,
    *,
    per_level: npt.NDArray[np.int64],
    levels: npt.NDArray[np.int64],
    offsets: npt.NDArray[Any],
    neighbours: npt.NDArray[Any],
    entry: int,
    max_level: int,
) -> None:
    """Every id and offset the search will follow points inside the file's own arrays."""
    if levels.size != count or offsets.size != count + 1:
        raise reader.fail(f"{levels.size} node levels and {offsets.size} offsets for {count} nodes")
    if not 2 <= per_level.size <= _MAX_LEVELS + 1 or (np.diff(per_level) < 0).any():
        raise reader.fail("neighbours per level are not a cumulative count")
    if count < 1 or ((levels < 1) | (levels >= per_level.size)).any():
        raise reader.fail("a node level is outside the graph's levels")
    span = np.diff(offsets.astype(np.int64))
    if offsets[0] != 0 or (span != per_level[levels]).any():
        raise reader.fail("neighbour offsets do not match the node levels")
    if int(offsets[-1]) != neighbours.size:
        raise reader.fail(f"offsets end at {int(offsets[-1])}, {neighbours.size} neighbours")
    if neighbours.size and ((neighbours < -1) | (neighbours >= count)).any():
        raise reader.fail(f"a neighbour id is outside 0..{count - 1}")
    if not 0 <= entry < count or max_level != levels.max() - 1 or levels[entry] - 1 != max_level:
        raise reader.fail(f"entry point {entry} / max level {max_level} do not fit the graph")
