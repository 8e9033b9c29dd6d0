"""ONNX files PRIME can trust: the format, its signed metadata and the check before a file runs.

Every exported file carries ``prime.*`` entries in its ``metadata_props``: the predictor config,
the sha256 of the source weights (the checkpoint's ``weights_sha256``), the package version and
a sha256 over the graph (nodes and initialisers) and those entries. A file is only run after
that hash matches, so a truncated, edited or foreign file fails with :class:`ExportError` instead of
producing plausible-looking embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import onnx
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prime_model.config import PredictorConfig, describe_validation_error
from prime_model.errors import ConfigError, ExportError
from prime_model.files import check_regular_file
from prime_model.parsing import parse_json
from prime_model.text import shown

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
INPUT_NAMES: Final = ("context", "query", "context_mask")
ROLES_INPUT: Final = "context_roles"  # int64 B×N, only with PredictorConfig.role_embedding
CONCAT_INPUT: Final = "concat"  # float32 B×D, only with PredictorConfig.concat_input
OUTPUT_NAME: Final = "embedding"
PREFIX: Final = "prime."
SHA256_KEY: Final = "prime.sha256"
_JSON_KEYS: Final = ("predictor_config", "quantization")


def input_names(config: PredictorConfig) -> tuple[str, ...]:
    """The graph's inputs, in order: a model without role/concat inputs keeps the original three,
    so files exported before those existed still run."""
    extra = ((ROLES_INPUT,) if config.role_embedding else ()) + (
        (CONCAT_INPUT,) if config.concat_input else ()
    )
    return (*INPUT_NAMES, *extra)


class OnnxMetadata(BaseModel):
    """What a PRIME ONNX file says about itself (stored as ``prime.<field>`` metadata_props)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    kind: Literal["fp32", "int8"]
    predictor_config: PredictorConfig
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the source weights")
    package_version: str
    opset: int = Field(gt=0)
    quantization: dict[str, Any] | None = Field(None, description="int8: the options used")


class VerifiedOnnx(BaseModel):
    """A serialised model whose content hash matched its metadata."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    data: bytes = Field(repr=False)
    metadata: OnnxMetadata
    sha256: str = Field(description="over the graph and the prime.* metadata")
    weight_bytes: int = Field(ge=0, description="bytes of all initialisers")


def content_sha256(model: onnx.ModelProto, entries: dict[str, str]) -> str:
    """sha256 of the graph (nodes + initialisers) and the ``prime.*`` entries but the hash
    itself, so neither the weights nor the recorded config can change unnoticed."""
    digest = hashlib.sha256(model.graph.SerializeToString(deterministic=True))
    digest.update(json.dumps(entries, sort_keys=True).encode())
    return digest.hexdigest()


def embed_metadata(model: onnx.ModelProto, metadata: OnnxMetadata) -> None:
    """Replace the model's ``prime.*`` metadata_props with ``metadata`` and the content hash."""
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    values = metadata.model_dump(mode="json")
    entries = {
        f"{PREFIX}{key}": json.dumps(value) if key in _JSON_KEYS else str(value)
        for key, value in values.items()
        if value is not None
    }
    entries[SHA256_KEY] = content_sha256(model, entries)
    del model.metadata_props[:]
    for key, value in [*kept, *sorted(entries.items())]:
        model.metadata_props.add(key=key, value=value)


def read_metadata(model: onnx.ModelProto, where: str) -> tuple[OnnxMetadata, str]:
    """The model's PRIME metadata and content hash, after checking that the hash matches."""
    props = {p.key: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
    if SHA256_KEY not in props:
        raise ExportError(
            f"{where}: no PRIME metadata ({SHA256_KEY} missing); only ONNX files written by "
            "prime_model.export.export / quantize are loaded"
        )
    expected = props.pop(SHA256_KEY)
    actual = content_sha256(model, props)
    if actual != expected:
        raise ExportError(
            f"{where}: checksum mismatch: sha256 {actual}, metadata says {expected}; the file "
            "is corrupted or was modified after export"
        )
    raw: dict[str, Any] = {}
    for key, value in props.items():
        name = key.removeprefix(PREFIX)
        # bounded: a signed file can still carry a nesting bomb or a 10**5-digit integer
        if name in _JSON_KEYS:
            raw[name] = parse_json(value, f"{where}: metadata {key}", ExportError)
        else:
            raw[name] = value
    if str(raw.get("format_version")) != str(FORMAT_VERSION):
        raise ExportError(
            f"{where}: unknown PRIME ONNX format version {shown(raw.get('format_version'))}; "
            f"expected {FORMAT_VERSION}"
        )
    try:
        metadata = OnnxMetadata.model_validate(raw)
    except ValidationError as exc:
        raise ExportError(f"{where}: invalid metadata:\n{describe_validation_error(exc)}") from None
    except ConfigError as exc:
        raise ExportError(f"{where}: invalid predictor_config in metadata: {exc}") from None
    return metadata, actual


def check_signature(model: onnx.ModelProto, config: PredictorConfig, where: str) -> None:
    """The graph's inputs and output must be the ones ``config`` describes: an intact hash only
    proves the file is unchanged since it was signed, not that its metadata tells the truth."""
    D, D_out = config.input_dim, config.output_dim
    expected = {
        "context": (None, None, D),
        "query": (None, D),
        "context_mask": (None, None),
        OUTPUT_NAME: (None, D_out),
    }
    found = {
        value.name: tuple(
            dim.dim_value if dim.HasField("dim_value") else None
            for dim in value.type.tensor_type.shape.dim
        )
        for value in (*model.graph.input, *model.graph.output)
    }
    wrong = [
        f"{name}: {found.get(name, 'missing')} in the graph, {shape} expected"
        for name, shape in expected.items()
        if not _shape_fits(found.get(name), shape)
    ]
    if wrong:
        raise ExportError(
            f"{where}: the graph does not fit its predictor_config (input_dim={D}, "
            f"output_dim={D_out}; None = any size): {'; '.join(wrong)}"
        )


def _shape_fits(found: tuple[int | None, ...] | None, expected: tuple[int | None, ...]) -> bool:
    if found is None or len(found) != len(expected):
        return False
    return all(e is None or f is None or e == f for e, f in zip(expected, found, strict=True))


def initializer_bytes(model: onnx.ModelProto) -> int:
    total = 0
    for init in model.graph.initializer:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
        total += int(np.prod(init.dims, dtype=np.int64)) * itemsize
    return total


def verify_onnx(data: bytes, where: str) -> VerifiedOnnx:
    """Parse, refuse external data, check the metadata and content hash."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise ExportError(f"{where}: not an ONNX model (protobuf parse failed: {exc})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ExportError(f"{where}: not an ONNX model (no graph); expected a .onnx export")
    external = [
        init.name
        for init in model.graph.initializer
        if init.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise ExportError(
            f"{where}: initialisers stored as external data ({external[:3]}...); PRIME exports "
            "are single files: re-export with prime_model.export.export.export_onnx"
        )
    metadata, digest = read_metadata(model, where)
    check_signature(model, metadata.predictor_config, where)
    return VerifiedOnnx(
        data=data, metadata=metadata, sha256=digest, weight_bytes=initializer_bytes(model)
    )


def load_onnx(path: str | Path) -> VerifiedOnnx:
    """Read and verify a PRIME ONNX file (:class:`ExportError` when it cannot be trusted)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ExportError(f"{path}: no such ONNX file")
    check_regular_file(path, "ONNX file", ExportError)  # a FIFO would block read_bytes forever
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExportError(f"{path}: no such ONNX file") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return verify_onnx(data, str(path))
