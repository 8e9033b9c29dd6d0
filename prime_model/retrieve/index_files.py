"""Reading a saved index directory: one consistency check before any parser sees the files.

Each file's sha256 only proves a file is the one ``index.json`` names; nothing tied the files to
each other, nor ``index.json`` to anything. Here ``index.json`` carries a checksum of itself, and
its ``dim`` and ``count`` must match the items (one row per id, unique, strings) and the vectors
(a safetensors header or a FAISS file walked with numpy, see :mod:`.faiss_file`), which must be
finite unit rows. Only then are the vectors handed to safetensors or FAISS.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from pydantic import ValidationError

from prime_model.atomic import sha256_file
from prime_model.config import FrozenConfig
from prime_model.errors import ConfigError, RetrievalError
from prime_model.files import check_regular_file, read_text_file
from prime_model.parsing import parse_json
from prime_model.retrieve.faiss_file import read_hnsw_layout
from prime_model.text import shown

FORMAT: Final = "prime-retrieval-index"
FORMAT_VERSION: Final = "2"
META_FILE: Final = "index.json"
ITEMS_FILE: Final = "items.parquet"
DATA_FILES: Final = {"exact": "vectors.safetensors", "hnsw": "hnsw.faiss"}
INDEX_FILES: Final = frozenset({META_FILE, ITEMS_FILE, *DATA_FILES.values()})
CHECKSUM_KEY: Final = "meta_sha256"
NORM_TOLERANCE: Final = 1e-3
_MAX_HEADER_BYTES: Final = 1 << 16

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class IndexFiles:
    """What a consistent index directory holds, read and checked."""

    meta: dict[str, Any]
    config: dict[str, Any]
    ids: list[str]
    texts: list[str]
    data: Path
    exact_vectors: Floats | None  # the vectors of an exact index; FAISS reads its own file


def meta_checksum(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def read_index_files(directory: Path, config_type: type[FrozenConfig]) -> IndexFiles:
    """Everything in ``directory``, checked against each other; a :class:`RetrievalError` names
    the first inconsistency."""
    meta = _read_meta(directory)
    try:
        config = config_type(**meta["config"]).model_dump()
    except (ValidationError, ConfigError, TypeError) as exc:
        raise RetrievalError(
            f"{directory / META_FILE}: config {shown(meta['config'])} is invalid "
            f"({shown(str(exc), 300)})"
        ) from None
    data = directory / DATA_FILES[config["kind"]]
    for path in (directory / ITEMS_FILE, data):
        _verify(path, meta["sha256"].get(path.name))
    ids, texts = _read_items(directory / ITEMS_FILE, meta["count"])
    exact = None
    if config["kind"] == "exact":
        vectors = exact = _exact_vectors(data, meta["dim"], meta["count"])
    else:
        layout = read_hnsw_layout(data, meta["dim"], meta["count"])
        if layout.links != config["m"]:
            raise RetrievalError(
                f"{data}: a graph of {layout.links} links per node; index.json says m={config['m']}"
            )
        vectors = layout.vectors
    check_unit_rows(vectors, f"{data}: stored vectors")
    return IndexFiles(meta, config, ids, texts, data, exact)


def check_unit_rows(matrix: Floats, what: str) -> None:
    """Inner product ranks like cosine only for unit vectors: refuse others, never mis-rank."""
    if not np.isfinite(matrix).all():
        raise RetrievalError(f"{what} contain NaN or infinite values; expected finite unit vectors")
    norms = np.linalg.norm(matrix, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1) > NORM_TOLERANCE)
    if bad.size:
        raise RetrievalError(
            f"{what}: row {int(bad[0])} has norm {norms[bad[0]]:.4f}; expected L2-normalised "
            "rows (norm 1), as the Y-Encoder and the predictor output"
        )


def _read_meta(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise RetrievalError(f"{directory}: not a directory; expected a saved retrieval index")
    path = directory / META_FILE
    text = read_text_file(path, "retrieval index metadata", RetrievalError)
    meta = parse_json(text, str(path), RetrievalError)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RetrievalError(f"{path}: not a {FORMAT} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise RetrievalError(
            f"{path}: format version {shown(meta.get('format_version'))}; expected "
            f"{FORMAT_VERSION} (an index from an older release: rebuild it with prime index)"
        )
    fields = {"dim": int, "count": int, "encoder_name": str, "config": dict, "sha256": dict}
    wrong = [k for k, kind in fields.items() if not isinstance(meta.get(k), kind)]
    wrong += [
        k
        for k in ("dim", "count")
        if k not in wrong and (isinstance(meta[k], bool) or not 0 < meta[k] < 1 << 40)
    ]
    fingerprint = meta.get("encoder_fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        wrong.append("encoder_fingerprint")
    if wrong:
        raise RetrievalError(f"{path}: missing or malformed field(s) {wrong}")
    if meta.get(CHECKSUM_KEY) != meta_checksum(meta):
        raise RetrievalError(
            f"{path}: its {CHECKSUM_KEY} does not match its content; index.json was edited or "
            "damaged: rebuild the index"
        )
    return meta


def _verify(path: Path, expected: object) -> None:
    check_regular_file(path, "retrieval index file", RetrievalError)
    actual = sha256_file(path)
    if actual != expected:
        raise RetrievalError(
            f"{path}: sha256 {actual[:12]}… does not match index.json ({shown(expected)}); the "
            "index was modified or truncated: rebuild it"
        )


def _read_items(path: Path, count: int) -> tuple[list[str], list[str]]:
    """``id`` and ``text``, both strings, ``count`` rows, unique non-empty ids."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise RetrievalError(f"{path}: unreadable items ({shown(str(exc))})") from None
    columns = {field.name: field.type for field in table.schema}
    for name in ("id", "text"):
        if name not in columns or (
            not pa.types.is_string(columns[name]) and not (pa.types.is_large_string(columns[name]))
        ):
            raise RetrievalError(
                f"{path}: columns {shown(sorted(columns))} ({shown(str(table.schema))}); "
                "expected string columns 'id' and 'text'"
            )
    if table.num_rows != count:
        raise RetrievalError(f"{path}: {table.num_rows} items but index.json says {count}")
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    if any(not isinstance(i, str) or not i for i in ids) or any(t is None for t in texts):
        raise RetrievalError(f"{path}: an id is null or empty, or a text is null")
    if len(set(ids)) != len(ids):
        raise RetrievalError(f"{path}: ids repeat; expected one row per unique id")
    return ids, texts


def _exact_vectors(path: Path, dim: int, count: int) -> Floats:
    """The safetensors file's one tensor, its header checked against ``dim`` x ``count`` first."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < length <= min(_MAX_HEADER_BYTES, size - 8):
            raise RetrievalError(f"{path}: not a safetensors file (header length {length})")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise RetrievalError(f"{path}: not a safetensors file (unreadable header)") from None
    entry = header.get("vectors") if isinstance(header, dict) else None
    expected = {"dtype": "F32", "shape": [count, dim], "data_offsets": [0, count * dim * 4]}
    others = set(header) - {"vectors", "__metadata__"} if isinstance(header, dict) else set()
    if entry != expected or others or size != 8 + length + count * dim * 4:
        raise RetrievalError(
            f"{path}: holds {shown(entry)}; expected exactly one float32 tensor 'vectors' of "
            f"{count} x {dim} (as index.json says) and nothing else"
        )
    vectors = np.fromfile(path, dtype="<f4", count=count * dim, offset=8 + length)
    return vectors.reshape(count, dim).astype(np.float32, copy=False)
