"""Predictor checkpoints: ``model.safetensors`` + ``metadata.json``, written atomically.

No pickle anywhere: weights are safetensors, metadata is JSON validated by pydantic, and the
weights' size and sha256 recorded in the metadata are verified before a byte is deserialised.
"""

from __future__ import annotations

import errno
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, TypeAlias

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from prime_model.atomic import atomic_directory, fsync_file, sha256_file, write_text_synced
from prime_model.config import PredictorConfig, describe_validation_error
from prime_model.devices import check_device
from prime_model.errors import CheckpointError, PredictorError
from prime_model.files import check_regular_file, file_kind, read_text_file
from prime_model.model import EmbeddingPredictor
from prime_model.parsing import parse_json
from prime_model.text import shown

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
WEIGHT_DTYPE: Final = torch.float32
"""Every tensor of a checkpoint: the model computes in float32, and a float16/int/bool tensor of
the right shape would otherwise be cast on load without a word, changing every prediction."""
# safetensors' dtype codes, in torch's words for messages
_DTYPE_NAMES: Final = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16",
    "U8": "uint8", "BOOL": "bool", "C64": "complex64",
}  # fmt: skip
_SHOWN_PROBLEMS: Final = 5
TensorSpecs: TypeAlias = dict[str, tuple[tuple[int, ...], str]]
"""Tensor name -> (shape, dtype name), as declared by a header or implied by a config."""


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
    _check_savable(model)
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    _check_finite(state, "model to save (did training diverge?)")
    existed = directory.exists()
    try:
        _write(state, model.config, training, directory)
    except (OSError, SafetensorError) as exc:  # SafetensorError: safetensors' own I/O failures
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if full else f"{type(exc).__name__}: {shown(str(exc))}"
        kept = (
            "the previous checkpoint there is unchanged" if existed else "nothing was written there"
        )
        raise CheckpointError(
            f"cannot write checkpoint {directory}: {reason}; {kept}. Free space or choose "
            "another directory, then save again"
        ) from None
    return directory


def _check_savable(model: EmbeddingPredictor) -> None:
    """Only dense float32 tensors are saved: what :func:`load_checkpoint` accepts back."""
    problems = []
    for name, tensor in model.state_dict().items():
        if tensor.layout != torch.strided:
            problems.append(f"{name} is sparse ({tensor.layout}); expected a dense tensor")
        elif tensor.dtype != WEIGHT_DTYPE:
            problems.append(f"{name} is {_torch_name(tensor.dtype)}; expected float32")
        elif tensor.device.type == "meta":
            problems.append(f"{name} is on the meta device and holds no values")
    if problems:
        raise CheckpointError(
            f"cannot save this model: {len(problems)} tensor(s) are not dense float32 "
            f"({'; '.join(problems[:_SHOWN_PROBLEMS])}); convert with model.float() or "
            ".to_dense() first"
        )


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
    found = _read_header(weights)
    _check_layer_count(metadata.predictor_config, found, directory)
    _check_header(
        weights, found, _expected_tensors(metadata.predictor_config, directory), directory
    )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    model = EmbeddingPredictor(metadata.predictor_config)
    _check_state(model, state, directory)
    _check_finite(state, str(weights))
    model.load_state_dict(state, strict=True)
    return PredictorCheckpoint(model=model.to(target).eval(), metadata=metadata)


def _torch_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _expected_tensors(config: PredictorConfig, where: Path) -> TensorSpecs:
    """Name -> (shape, dtype) of every tensor ``config`` implies, with nothing allocated."""
    try:
        with torch.device("meta"):
            skeleton = EmbeddingPredictor(config)
    except (RuntimeError, ValueError, OverflowError, MemoryError) as exc:
        dims = ", ".join(
            f"{name}={getattr(config, name)}"
            for name in ("input_dim", "output_dim", "hidden_dim", "mlp_ratio", "num_layers")
        )
        raise CheckpointError(
            f"{where}: {METADATA_FILE} declares a model too large to exist ({dims}: "
            f"{shown(str(exc), 120)}); expected the predictor_config the weights were saved with"
        ) from None
    return {
        name: (tuple(t.shape), _torch_name(WEIGHT_DTYPE))
        for name, t in skeleton.state_dict().items()
    }


def _read_header(weights: Path) -> TensorSpecs:
    """Name -> (shape, dtype) from the safetensors header alone: no tensor is read."""
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return {
                name: (
                    tuple(handle.get_slice(name).get_shape()),
                    _DTYPE_NAMES.get(handle.get_slice(name).get_dtype(), "?"),
                )
                for name in handle.keys()  # noqa: SIM118 - safe_open has no __iter__
            }
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None


def _check_layer_count(config: PredictorConfig, found: TensorSpecs, where: Path) -> None:
    """Building even a meta-device model costs Python time per block, so a declared
    ``num_layers`` of 10**9 is compared with the blocks the file holds first."""
    blocks = {name.split(".")[1] for name in found if name.startswith("blocks.")}
    if config.num_layers != len(blocks):
        raise CheckpointError(
            f"{where}: weights do not fit its predictor_config: {METADATA_FILE} declares "
            f"num_layers={config.num_layers}, {WEIGHTS_FILE} holds {len(blocks)} block(s); "
            "expected the predictor_config the weights were saved with"
        )


def _check_header(weights: Path, found: TensorSpecs, expected: TensorSpecs, where: Path) -> None:
    """Compare the safetensors header (names, shapes, dtypes) with what the config implies."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shared = sorted(set(expected) & set(found))
    wrong = [
        f"{name}: {found[name][0]} in file, {expected[name][0]} expected"
        for name in shared
        if found[name][0] != expected[name][0]
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{where}: weights do not fit its predictor_config: missing "
            f"{missing[:_SHOWN_PROBLEMS] or 'none'}, unexpected "
            f"{unexpected[:_SHOWN_PROBLEMS] or 'none'}, shape mismatches "
            f"{wrong[:_SHOWN_PROBLEMS] or 'none'}"
        )
    dtypes = [
        f"{name!r} is {found[name][1]}" for name in shared if found[name][1] != expected[name][1]
    ]
    if dtypes:
        raise CheckpointError(
            f"{weights}: {len(dtypes)} tensor(s) have the wrong dtype ("
            f"{', '.join(dtypes[:_SHOWN_PROBLEMS])}); expected float32 for every tensor, as "
            "save_checkpoint writes them. Convert with model.float() and save again"
        )


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
