"""Hostile index directories and encoder identities: an index whose files disagree, or that was
made by another encoder, is refused with a :class:`RetrievalError` before anything is served.

Every tampering case re-signs what it changed (each file's sha256 in ``index.json`` and
``index.json``'s own checksum), as an attacker or a buggy tool would: the per-file hashes then
match, and only the consistency check between the files can catch it. Loads run with a deadline:
a length field of 2^36 must be refused, not allocated.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from safetensors.numpy import save_file

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.atomic import sha256_file
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.encode.identity import encoder_fingerprint, model_fingerprint
from prime_model.errors import RetrievalError
from prime_model.http.service import Retriever
from prime_model.retrieve.corpus import build_index
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.retrieve.index_files import (
    CHECKSUM_KEY,
    DATA_FILES,
    ITEMS_FILE,
    META_FILE,
    meta_checksum,
)
from prime_model.runtime.inference import EagerPredictor
from tests.conftest import CountingEncoder
from tests.prime_model.retrieve.support import unit_rows

DEADLINE_S = 20.0
N, D = 40, 12


def _load_with_deadline(directory: Path) -> object:
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(RetrievalIndex.load(directory))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        pytest.fail(f"loading did not return within {DEADLINE_S} s")
    return outcome[0]


def _saved(tmp_path: Path, kind: str, n: int = N, name: str = "index") -> Path:
    index = RetrievalIndex.build(
        [f"doc-{i}" for i in range(n)],
        [f"text {i}" for i in range(n)],
        unit_rows(n, D),
        encoder_name="counting-stub",
        config=IndexConfig(kind=kind, m=8),
    )
    return index.save(tmp_path / name)


def _resign(directory: Path, **meta_changes: Any) -> None:
    """Recompute every hash ``index.json`` holds, after ``meta_changes``: a consistent forgery."""
    meta = json.loads((directory / META_FILE).read_text())
    meta.update(meta_changes)
    meta["sha256"] = {name: sha256_file(directory / name) for name in meta["sha256"]}
    meta[CHECKSUM_KEY] = meta_checksum(meta)
    (directory / META_FILE).write_text(json.dumps(meta))


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _fewer_vector_rows(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "exact")
    save_file({"vectors": unit_rows(N - 1, D)}, str(directory / DATA_FILES["exact"]))
    _resign(directory)
    return directory


def _nan_vector(kind: str) -> Callable[[Path], Path]:
    def arrange(tmp_path: Path) -> Path:
        directory = _saved(tmp_path, kind)
        data = directory / DATA_FILES[kind]
        nan = struct.pack("<f", float("nan"))
        _patch(data, data.stat().st_size - 4 * D, nan)  # the last item's first value
        _resign(directory)
        return directory

    return arrange


def _dim_edited(kind: str) -> Callable[[Path], Path]:
    def arrange(tmp_path: Path) -> Path:
        directory = _saved(tmp_path, kind)
        _resign(directory, dim=D + 4)
        return directory

    return arrange


def _meta_edited_unsigned(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "hnsw")
    meta = json.loads((directory / META_FILE).read_text())
    (directory / META_FILE).write_text(json.dumps({**meta, "dim": 3}))
    return directory


def _graph_with_more_vectors(tmp_path: Path) -> Path:
    bigger = _saved(tmp_path, "hnsw", n=N + 5, name="bigger")
    directory = _saved(tmp_path, "hnsw")
    hnsw = DATA_FILES["hnsw"]
    (directory / hnsw).write_bytes((bigger / hnsw).read_bytes())
    _resign(directory)
    return directory


def _items_without_id(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "exact")
    items = pd.read_parquet(directory / ITEMS_FILE).rename(columns={"id": "key"})
    items.to_parquet(directory / ITEMS_FILE, index=False)
    _resign(directory)
    return directory


def _items_with_repeated_ids(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "exact")
    items = pd.read_parquet(directory / ITEMS_FILE)
    items.loc[1, "id"] = items.loc[0, "id"]
    items.to_parquet(directory / ITEMS_FILE, index=False)
    _resign(directory)
    return directory


def _huge_length_field(tmp_path: Path) -> Path:
    """The storage's vector count in a ~7 KB file set to 2^36 (FAISS would allocate 256 GB)."""
    directory = _saved(tmp_path, "hnsw", n=20)
    data = directory / DATA_FILES["hnsw"]
    size_at = data.stat().st_size - 4 * 20 * D - 8
    assert struct.unpack("<Q", data.read_bytes()[size_at : size_at + 8])[0] == 20 * D
    _patch(data, size_at, struct.pack("<Q", 1 << 36))
    _resign(directory)
    return directory


def _neighbour_out_of_range(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "hnsw")
    data = directory / DATA_FILES["hnsw"]
    raw = data.read_bytes()
    # the first neighbour id: after the header (37 bytes) and four length-prefixed arrays
    at = 37
    for itemsize in (8, 4, 4, 8):
        at += 8 + struct.unpack("<Q", raw[at : at + 8])[0] * itemsize
    _patch(data, at + 8, struct.pack("<i", N + 7))
    _resign(directory)
    return directory


def _config_edited(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "hnsw")
    meta = json.loads((directory / META_FILE).read_text())
    _resign(directory, config={**meta["config"], "m": 16})  # the graph was built with m=8
    return directory


def _unknown_kind(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "exact")
    meta = json.loads((directory / META_FILE).read_text())
    _resign(directory, config={**meta["config"], "kind": "ivf" * 500})
    return directory


def _older_format(tmp_path: Path) -> Path:
    directory = _saved(tmp_path, "exact")
    _resign(directory, format_version="1")
    return directory


CASES = [
    ("exact-fewer-vector-rows", _fewer_vector_rows, "expected exactly one float32 tensor"),
    ("exact-nan-vector", _nan_vector("exact"), "contain NaN or infinite values"),
    ("hnsw-nan-vector", _nan_vector("hnsw"), "contain NaN or infinite values"),
    ("exact-dim-edited", _dim_edited("exact"), f"of {N} x {D + 4} (as index.json says)"),
    ("hnsw-dim-edited", _dim_edited("hnsw"), f"header does not hold {N} vectors of {D + 4}"),
    ("meta-edited-unsigned", _meta_edited_unsigned, "meta_sha256 does not match its content"),
    ("hnsw-more-vectors-than-items", _graph_with_more_vectors, f"does not hold {N} vectors"),
    ("items-without-id", _items_without_id, "expected string columns 'id' and 'text'"),
    ("items-repeated-ids", _items_with_repeated_ids, "ids repeat"),
    ("faiss-length-2-pow-36", _huge_length_field, "more than the file holds"),
    ("hnsw-neighbour-out-of-range", _neighbour_out_of_range, "a neighbour id is outside"),
    ("format-version-1", _older_format, "rebuild it with prime index"),
    ("hnsw-links-edited", _config_edited, "a graph of 8 links per node; index.json says m=16"),
    ("unknown-kind", _unknown_kind, "is invalid"),
]


@pytest.mark.parametrize(("arrange", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_inconsistent_index_is_refused_before_it_is_searched(
    tmp_path: Path, arrange: Callable[[Path], Path], match: str
) -> None:
    directory = arrange(tmp_path)
    start = time.perf_counter()
    raised = _load_with_deadline(directory)
    assert isinstance(raised, RetrievalError), f"not refused: {raised!r}"
    assert match in str(raised), str(raised)
    assert len(str(raised)) < 1_000
    assert time.perf_counter() - start < 5, "refusing took too long (parsed too much?)"


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_a_consistent_index_still_loads_and_finds_every_item(tmp_path: Path, kind: str) -> None:
    index = RetrievalIndex.load(_saved(tmp_path, kind))
    hits = index.search(unit_rows(N, D), k=1)
    assert [h[0].id for h in hits] == [f"doc-{i}" for i in range(N)]


# ---------------------------------------------------------------------- encoder identity


class _Fingerprinted(CountingEncoder):
    def __init__(self, fingerprint: str, dim: int = D) -> None:
        super().__init__(dim=dim)
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


def _predictor(dim: int) -> EagerPredictor:
    torch.manual_seed(0)
    config = PredictorConfig(
        input_dim=dim, output_dim=dim, hidden_dim=32, num_layers=1, num_heads=4,
        max_context_length=4, dropout=0.0, max_batch_size=8,
    )  # fmt: skip
    return EagerPredictor(EmbeddingPredictor(config).eval())


def test_the_server_refuses_an_index_made_by_other_weights_of_the_same_name(
    tmp_path: Path,
) -> None:
    corpus = pd.DataFrame({"id": ["a", "b"], "text": ["alpha", "beta"]})
    index = build_index(corpus, _Fingerprinted("weights-v1"), IndexConfig(kind="exact"))
    reloaded = RetrievalIndex.load(index.save(tmp_path / "index"))
    assert reloaded.encoder_fingerprint == "weights-v1"
    with pytest.raises(RetrievalError, match="weights/settings weights-v1, the request encoder"):
        Retriever(_predictor(D), _Fingerprinted("weights-v2"), reloaded, model_version="x")
    Retriever(_predictor(D), _Fingerprinted("weights-v1"), reloaded, model_version="x")


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(EncoderConfig(device="cpu"))


def test_another_max_seq_length_or_retrained_weights_change_the_fingerprint(
    minilm: SentenceTransformerEncoder,
) -> None:
    default = encoder_fingerprint(minilm)
    assert default is not None and default == encoder_fingerprint(minilm)
    model = minilm._model
    limit = model.max_seq_length
    try:
        model.max_seq_length = 8
        assert model_fingerprint(model, minilm.dim) != default
    finally:
        model.max_seq_length = limit
    weight = next(model.parameters())
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight[0, 0] += 1e-3  # "retrained in place": same path, same name
        assert model_fingerprint(model, minilm.dim) != default
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert model_fingerprint(model, minilm.dim) == default


def test_an_index_built_with_max_seq_length_8_is_not_served_by_the_default_encoder(
    minilm: SentenceTransformerEncoder,
) -> None:
    short = SentenceTransformerEncoder(EncoderConfig(device="cpu", max_seq_length=8))
    corpus = pd.DataFrame({"id": ["a"], "text": ["a text longer than eight tokens, clearly so"]})
    index = build_index(corpus, short, IndexConfig(kind="exact"))
    assert short.name == minilm.name  # the old check compared only this
    with pytest.raises(RetrievalError, match="another max_seq_length, or retrained weights"):
        Retriever(_predictor(minilm.dim), minilm, index, model_version="x")
