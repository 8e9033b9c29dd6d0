"""Predictor checkpoints: ``model.safetensors`` + ``metadata.json``, written atomically.

No pickle anywhere: weights are safetensors, metadata is JSON validated by pydantic, and the
weights' size and sha256 recorded in the metadata are verified before a byte is deserialised.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save, save_file

from prime_model.atomic import atomic_directory, fsync_file, sha256_file, write_text_synced
from prime_model.checkpoint_tensors import (
    METADATA_FILE,
    WEIGHTS_FILE,
    check_finite,
    check_header,
    check_layer_count,
    check_savable,
    check_state,
    expected_tensors,
    read_header,
)
from prime_model.config import PredictorConfig, describe_validation_error
from prime_model.devices import check_device
from prime_model.errors import CheckpointError, CheckpointWriteError, PredictorError
from prime_model.files import check_regular_file, file_kind, read_text_file
from prime_model.model import EmbeddingPredictor
from prime_model.parsing import parse_json
from prime_model.text import shown

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "WEIGHTS_FILE",
    "CheckpointMetadata",
    "PredictorCheckpoint",
    "load_checkpoint",
    "make_checkpoint",
    "package_version",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_HEADER: Final = {"format": "prime-predictor"}


def package_version() -> str:
    try:
        return version("prime-predictor")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


class CheckpointMetadata(BaseModel):
    """Everything needed to rebuild and trust the weights, plus free-form training metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    predictor_config: PredictorConfig
    created_at: datetime
    package_version: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    weights_bytes: int = Field(ge=0)
    training: dict[str, Any] = Field(
        default_factory=dict, description="e.g. dataset fingerprint, metrics, training config"
    )


@dataclass(frozen=True)
class PredictorCheckpoint:
    """The model and the metadata that vouches for its weights: loaded (verified, eval mode) or
    just made by :func:`make_checkpoint` (not yet written)."""

    model: EmbeddingPredictor
    metadata: CheckpointMetadata


def make_checkpoint(
    model: EmbeddingPredictor, metadata: dict[str, Any] | None = None
) -> PredictorCheckpoint:
    """``model`` and its metadata in memory, nothing written: the sha256 and size recorded are
    those of the exact bytes :func:`write_checkpoint` will write, so whoever writes it (the CLI's
    output folder or a pipeline's materializer) writes it once. ``metadata`` must be plain JSON."""
    training = dict(metadata or {})
    try:
        json.dumps(training, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata must be plain JSON: {exc}") from None
    check_savable(model)
    state = _state(model)
    check_finite(state, "model to save (did training diverge?)")
    blob = save(state, metadata=_HEADER)
    return PredictorCheckpoint(
        model=model,
        metadata=CheckpointMetadata(
            format_version=FORMAT_VERSION,
            predictor_config=model.config,
            created_at=datetime.now(UTC),
            package_version=package_version(),
            weights_sha256=hashlib.sha256(blob).hexdigest(),
            weights_bytes=len(blob),
            training=training,
        ),
    )


def save_checkpoint(
    model: EmbeddingPredictor,
    directory: str | Path,
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to ``directory`` atomically; ``metadata`` must be JSON-serialisable."""
    _check_target(Path(directory), overwrite=overwrite)  # before any work
    return write_checkpoint(make_checkpoint(model, metadata), directory, overwrite=overwrite)


def write_checkpoint(
    checkpoint: PredictorCheckpoint, directory: str | Path, *, overwrite: bool = False
) -> Path:
    """The one writer: an atomic directory whose weights are checked against the metadata's
    sha256 before it appears, so a model changed after :func:`make_checkpoint` is refused."""
    directory = Path(directory)
    _check_target(directory, overwrite=overwrite)
    existed = directory.exists()
    try:
        _write(checkpoint, directory)
    except (OSError, SafetensorError) as exc:  # SafetensorError: safetensors' own I/O failures
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if full else f"{type(exc).__name__}: {shown(str(exc))}"
        kept = (
            "the previous checkpoint there is unchanged" if existed else "nothing was written there"
        )
        error = CheckpointWriteError(
            f"cannot write checkpoint {directory}: {reason}; {kept}. Free space or choose "
            "another directory, then save again"
        )
        error.errno = exc.errno if isinstance(exc, OSError) else None
        raise error from None
    return directory


def _check_target(directory: Path, *, overwrite: bool) -> None:
    if directory.exists() and not overwrite:
        raise CheckpointError(f"{directory} already exists; pass overwrite=True to replace it")
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(
            f"{directory} is a file; a checkpoint is a directory, so it is not replaced"
        )


def _state(model: EmbeddingPredictor) -> dict[str, torch.Tensor]:
    return {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}


def _write(checkpoint: PredictorCheckpoint, directory: Path) -> None:
    expected = checkpoint.metadata
    with atomic_directory(directory) as staging:
        weights = staging / WEIGHTS_FILE
        save_file(_state(checkpoint.model), str(weights), metadata=_HEADER)
        fsync_file(weights)
        digest = sha256_file(weights)
        if digest != expected.weights_sha256 or weights.stat().st_size != expected.weights_bytes:
            raise CheckpointError(
                f"cannot write checkpoint {directory}: the weights (sha256 {digest}) are not "
                f"the ones its metadata records ({expected.weights_sha256}); the model changed "
                "after its checkpoint was made. Make the checkpoint again from the model"
            )
        write_text_synced(staging / METADATA_FILE, expected.model_dump_json(indent=2))


def read_checkpoint_metadata(directory: str | Path) -> CheckpointMetadata:
    """Read and validate ``metadata.json`` without touching the weights."""
    directory = _checkpoint_dir(directory)
    path = directory / METADATA_FILE
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{directory}: missing {METADATA_FILE}; not a PRIME checkpoint")
    text = read_text_file(path, METADATA_FILE, CheckpointError)  # refuses a FIFO unopened
    try:
        raw = parse_json(text, str(path), CheckpointError)
    except CheckpointError as exc:  # nesting bombs, huge integers, duplicate keys, bad syntax
        detail = str(exc).removeprefix(f"{path}: ")
        raise CheckpointError(f"{path}: not valid JSON for a checkpoint ({detail})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    found = raw.get("format_version")
    if found != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unknown checkpoint format version {shown(found)}; "
            f"prime_model {package_version()} reads version {FORMAT_VERSION}"
        )
    try:
        return CheckpointMetadata.model_validate(raw)
    except ValidationError as exc:
        raise CheckpointError(
            f"{path}: invalid metadata:\n{describe_validation_error(exc)}"
        ) from None


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> PredictorCheckpoint:
    """Verify size, sha256, tensor names, shapes and dtypes, then rebuild the predictor.

    Shapes and dtypes are read from the safetensors header and compared with what the config
    implies (computed on the meta device) before any tensor or model is allocated, so metadata
    declaring ``hidden_dim: 10**9`` fails in microseconds instead of exhausting memory.
    """
    target = check_device(device, PredictorError)
    metadata = read_checkpoint_metadata(directory)
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.exists() and not weights.is_symlink():
        raise CheckpointError(f"{directory}: missing {WEIGHTS_FILE}")
    check_regular_file(weights, "the weights file", CheckpointError)  # a FIFO would block
    size = weights.stat().st_size
    if size != metadata.weights_bytes:
        state_word = "truncated" if size < metadata.weights_bytes else "the wrong size"
        raise CheckpointError(
            f"{weights} is {state_word}: {size} bytes, expected {metadata.weights_bytes}"
        )
    digest = sha256_file(weights)
    if digest != metadata.weights_sha256:
        raise CheckpointError(
            f"{weights}: checksum mismatch: sha256 {digest}, metadata says "
            f"{metadata.weights_sha256}; the file is corrupted or was modified"
        )
    found = read_header(weights)
    check_layer_count(metadata.predictor_config, found, directory)
    check_header(weights, found, expected_tensors(metadata.predictor_config, directory), directory)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    model = EmbeddingPredictor(metadata.predictor_config)
    check_state(model, state, directory)
    check_finite(state, str(weights))
    model.load_state_dict(state, strict=True)
    return PredictorCheckpoint(model=model.to(target).eval(), metadata=metadata)


def _checkpoint_dir(directory: str | Path) -> Path:
    directory = Path(directory)
    if not directory.exists():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    kind = None if directory.is_dir() else file_kind(directory.stat().st_mode)
    if kind:  # a FIFO, socket or device: never opened, a FIFO would block forever
        raise CheckpointError(
            f"{directory} {kind}; expected a checkpoint directory holding {WEIGHTS_FILE} and "
            f"{METADATA_FILE}"
        )
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory} is a file; expected a checkpoint directory holding {WEIGHTS_FILE} and "
            f"{METADATA_FILE} (pickled .ckpt/.pt/.pkl files are never loaded)"
        )
    return directory
