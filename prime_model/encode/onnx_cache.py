"""The on-disk cache of exported Y-Encoders: one folder per encoder identity and library versions.

Under :func:`default_onnx_cache_dir` (``$PRIME_CACHE_DIR/onnx-encoders/<name>-<key>/``) each
folder holds ``model.onnx`` and a ``model.json`` sidecar recording its key and sha256, written as
one atomic directory. A file whose bytes do not match the sidecar, or whose key is another's,
is not returned (with a warning), so the caller exports it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prime_model.atomic import atomic_directory, write_text_synced
from prime_model.encode.cache import default_cache_dir
from prime_model.errors import OnnxEncoderError, PrimeError
from prime_model.files import check_regular_file
from prime_model.parsing import parse_json

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
ONNX_FILE: Final = "model.onnx"
SIDECAR_FILE: Final = "model.json"
# what the graph is traced from: a new release may trace to a different graph
_VERSIONED: Final = ("torch", "onnx", "onnxscript", "transformers", "sentence-transformers")


class Sidecar(BaseModel):
    """What ``model.json`` records about the ``model.onnx`` beside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    key: dict[str, str] = Field(description="encoder identity, library versions, opset")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    inputs: list[str]
    dim: int = Field(gt=0)


def default_onnx_cache_dir() -> Path:
    """``onnx-encoders/`` inside the embedding cache root, so it follows ``$PRIME_CACHE_DIR``
    and is removed with it; the embedding cache's own folders are ``<name>-<hex>`` and never
    collide with it."""
    return default_cache_dir() / "onnx-encoders"


def cache_key(
    identity: str, fingerprint: str | None, input_names: Sequence[str], opset: int
) -> dict[str, str]:
    """Everything the exported graph depends on: a different value means a different folder."""
    key = {"format": str(FORMAT_VERSION), "identity": identity, "opset": str(opset)}
    key["weights"] = fingerprint or "unknown"
    key["inputs"] = ",".join(input_names)
    key.update({name: _package_version(name) for name in _VERSIONED})
    return key


def cache_folder(root: Path, name: str, key: dict[str, str]) -> Path:
    """``<root>/<name>-<first 16 hex of the key's sha256>``."""
    return Path(root) / f"{_safe(name)}-{_digest(key)[:16]}"


def read_cached(directory: Path, key: dict[str, str], inputs: Sequence[str]) -> bytes | None:
    """The cached file's bytes when its sidecar vouches for them; None (warned) otherwise."""
    path, sidecar_path = directory / ONNX_FILE, directory / SIDECAR_FILE
    if not path.exists() and not sidecar_path.exists():
        return None
    try:
        check_regular_file(sidecar_path, "ONNX encoder sidecar", OnnxEncoderError)
        check_regular_file(path, "ONNX encoder file", OnnxEncoderError)
        raw = parse_json(sidecar_path.read_text(encoding="utf-8"), str(sidecar_path))
        sidecar = Sidecar.model_validate(raw)
        data = path.read_bytes()
    except (OSError, UnicodeDecodeError, PrimeError, ValidationError) as exc:
        logger.warning(
            "cached ONNX Y-Encoder %s is unreadable (%s); exporting it again",
            directory,
            str(exc).splitlines()[0],
        )
        return None
    if sidecar.key != key or sidecar.inputs != list(inputs):
        logger.warning(
            "cached ONNX Y-Encoder %s was made for another encoder or library "
            "versions; exporting it again",
            directory,
        )
        return None
    found = hashlib.sha256(data).hexdigest()
    if found != sidecar.sha256 or len(data) != sidecar.bytes:
        logger.warning(
            "cached ONNX Y-Encoder %s does not match its recorded sha256 (expected %s, "
            "found %s): corrupt or tampered with; exporting it again",
            path,
            sidecar.sha256[:12],
            found[:12],
        )
        return None
    return data


def write_cached(
    directory: Path, data: bytes, key: dict[str, str], inputs: Sequence[str], dim: int
) -> None:
    """Both files in one atomic rename; a cache that cannot be written only costs time."""
    sidecar = Sidecar(
        format_version=FORMAT_VERSION,
        key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        inputs=list(inputs),
        dim=dim,
    )
    try:
        with atomic_directory(directory) as staging:
            with (staging / ONNX_FILE).open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            write_text_synced(staging / SIDECAR_FILE, sidecar.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        logger.warning("could not cache the ONNX Y-Encoder in %s (%s)", directory, exc)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - all are dependencies
        return "absent"


def _digest(key: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


def _safe(name: str) -> str:
    """A model name as a folder name: anything but letters, digits, ``.``, ``_``, ``-`` -> ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64] or "encoder"
