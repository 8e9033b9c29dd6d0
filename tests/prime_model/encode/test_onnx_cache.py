"""The exported Y-Encoder cache on its own: keys, folders, and what a damaged folder returns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from prime_model.encode.onnx_cache import (
    ONNX_FILE,
    SIDECAR_FILE,
    cache_folder,
    cache_key,
    read_cached,
    write_cached,
)

INPUTS = ("input_ids", "attention_mask")
DATA = b"graph bytes"


@pytest.fixture
def key() -> dict[str, str]:
    return cache_key("minilm@abc", "weights-1", INPUTS, opset=20)


def test_the_key_names_what_the_graph_depends_on(key: dict[str, str]) -> None:
    assert key["identity"] == "minilm@abc" and key["weights"] == "weights-1"
    assert key["inputs"] == "input_ids,attention_mask" and key["opset"] == "20"
    assert {"torch", "onnx", "transformers", "sentence-transformers"} <= set(key)
    assert cache_key("minilm@abc", None, INPUTS, opset=20)["weights"] == "unknown"


def test_folders_are_safe_names_and_differ_by_key(tmp_path: Path, key: dict[str, str]) -> None:
    folder = cache_folder(tmp_path, "org/model name", key)
    assert folder.parent == tmp_path and folder.name.startswith("org_model_name-")
    assert cache_folder(tmp_path, "org/model name", {**key, "opset": "21"}) != folder


def test_a_written_folder_reads_back(tmp_path: Path, key: dict[str, str]) -> None:
    folder = cache_folder(tmp_path, "m", key)
    assert read_cached(folder, key, INPUTS) is None  # nothing there yet: no warning either
    write_cached(folder, DATA, key, INPUTS, dim=8)
    assert read_cached(folder, key, INPUTS) == DATA
    sidecar = json.loads((folder / SIDECAR_FILE).read_text(encoding="utf-8"))
    assert sidecar["sha256"] == hashlib.sha256(DATA).hexdigest() and sidecar["dim"] == 8


def test_damaged_or_foreign_folders_are_not_trusted(
    tmp_path: Path, key: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder = cache_folder(tmp_path, "m", key)
    write_cached(folder, DATA, key, INPUTS, dim=8)
    assert read_cached(folder, {**key, "torch": "0.0"}, INPUTS) is None
    assert "another encoder or library versions" in caplog.text
    assert read_cached(folder, key, ["input_ids"]) is None
    (folder / ONNX_FILE).write_bytes(b"graph bytez")
    assert read_cached(folder, key, INPUTS) is None
    assert "does not match its recorded sha256" in caplog.text
    (folder / SIDECAR_FILE).write_text("{not json", encoding="utf-8")
    assert read_cached(folder, key, INPUTS) is None
    assert "is unreadable" in caplog.text


def test_an_unwritable_cache_only_warns(
    tmp_path: Path, key: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    write_cached(blocker / "m", DATA, key, INPUTS, dim=8)
    assert "could not cache the ONNX Y-Encoder" in caplog.text
