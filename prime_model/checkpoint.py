"""Predictor checkpoints: ``model.safetensors`` + ``metadata.json``, written atomically.

No pickle anywhere: weights are safetensors, metadata is JSON validated by pydantic, and the
weights' size and sha256 recorded in the metadata are verified before a byte is deserialised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from prime_model.atomic import atomic_directory, fsync_file, sha256_file, write_text_synced
from prime_model.config import PredictorConfig, describe_validation_error
from prime_model.errors import CheckpointError
from prime_model.model import EmbeddingPredictor

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"


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
    """A verified, loaded checkpoint: the model (eval mode) and its metadata."""

    model: EmbeddingPredictor
    metadata: CheckpointMetadata


def save_checkpoint(
    model: EmbeddingPredictor,
    directory: str | Path,
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to ``directory`` atomically; ``metadata`` must be JSON-serialisable."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise CheckpointError(f"{directory} already exists; pass overwrite=True to replace it")
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(
            f"{directory} is a file; a checkpoint is a directory, so it is not replaced"
        )
    training = dict(metadata or {})
    try:
        json.dumps(training, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata must be plain JSON: {exc}") from None
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    _check_finite(state, "model to save (did training diverge?)")
    try:
        _write(state, model.config, training, directory)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {directory}: {exc}") from None
    return directory


def _write(
    state: dict[str, torch.Tensor],
    config: PredictorConfig,
    training: dict[str, Any],
    directory: Path,
) -> None:
    with atomic_directory(directory) as staging:
        weights = staging / WEIGHTS_FILE
        save_file(state, str(weights), metadata={"format": "prime-predictor"})
        fsync_file(weights)
        meta = CheckpointMetadata(
            format_version=FORMAT_VERSION,
            predictor_config=config,
            created_at=datetime.now(UTC),
            package_version=package_version(),
            weights_sha256=sha256_file(weights),
            weights_bytes=weights.stat().st_size,
            training=training,
        )
        write_text_synced(staging / METADATA_FILE, meta.model_dump_json(indent=2))


def read_checkpoint_metadata(directory: str | Path) -> CheckpointMetadata:
    """Read and validate ``metadata.json`` without touching the weights."""
    directory = _checkpoint_dir(directory)
    path = directory / METADATA_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: missing {METADATA_FILE}; not a PRIME checkpoint")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    found = raw.get("format_version")
    if found != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unknown checkpoint format version {found!r}; "
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
    """Verify size, sha256 and tensor shapes, then rebuild the predictor in eval mode."""
    metadata = read_checkpoint_metadata(directory)
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: missing {WEIGHTS_FILE}")
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
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    model = EmbeddingPredictor(metadata.predictor_config)
    _check_state(model, state, directory)
    _check_finite(state, str(weights))
    model.load_state_dict(state, strict=True)
    return PredictorCheckpoint(model=model.to(device).eval(), metadata=metadata)


def _checkpoint_dir(directory: str | Path) -> Path:
    directory = Path(directory)
    if not directory.exists():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory} is a file; expected a checkpoint directory holding {WEIGHTS_FILE} and "
            f"{METADATA_FILE} (pickled .ckpt/.pt/.pkl files are never loaded)"
        )
    return directory


def _check_state(model: EmbeddingPredictor, state: dict[str, torch.Tensor], where: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{name}: {tuple(state[name].shape)} in file, {tuple(expected[name].shape)} expected"
        for name in sorted(set(expected) & set(state))
        if state[name].shape != expected[name].shape
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{where}: weights do not fit its predictor_config: missing {missing or 'none'}, "
            f"unexpected {unexpected or 'none'}, shape mismatches {wrong or 'none'}"
        )


def _check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """NaN/inf weights turn every prediction into NaN: refuse them on save and on load."""
    bad = sorted(name for name, t in state.items() if not bool(torch.isfinite(t).all()))
    if bad:
        raise CheckpointError(
            f"{where}: NaN or infinite values in {len(bad)} tensor(s), e.g. {bad[:3]}; "
            "expected finite weights"
        )
