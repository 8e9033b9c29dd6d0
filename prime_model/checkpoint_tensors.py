"""What a checkpoint's tensors must be before they are written or trusted: dense, float32,
finite, and exactly the names and shapes its config implies.

The safetensors header is checked against the config on the meta device before any tensor is
read, so a file declaring a billion-wide layer fails in microseconds, not in an allocation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, TypeAlias

import torch
from safetensors import SafetensorError, safe_open

from prime_model.config import PredictorConfig
from prime_model.errors import CheckpointError
from prime_model.model import EmbeddingPredictor
from prime_model.text import shown

WEIGHTS_FILE: Final = "model.safetensors"
METADATA_FILE: Final = "metadata.json"
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


def check_savable(model: EmbeddingPredictor) -> None:
    """Only dense float32 tensors are saved: what :func:`load_checkpoint` accepts back."""
    problems = []
    for name, tensor in model.state_dict().items():
        if tensor.layout != torch.strided:
            problems.append(f"{name} is sparse ({tensor.layout}); expected a dense tensor")
        elif tensor.dtype != WEIGHT_DTYPE:
            problems.append(f"{name} is {torch_name(tensor.dtype)}; expected float32")
        elif tensor.device.type == "meta":
            problems.append(f"{name} is on the meta device and holds no values")
    if problems:
        raise CheckpointError(
            f"cannot save this model: {len(problems)} tensor(s) are not dense float32 "
            f"({'; '.join(problems[:_SHOWN_PROBLEMS])}); convert with model.float() or "
            ".to_dense() first"
        )


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """NaN/inf weights turn every prediction into NaN: refuse them on save and on load."""
    bad = sorted(name for name, t in state.items() if not bool(torch.isfinite(t).all()))
    if bad:
        raise CheckpointError(
            f"{where}: NaN or infinite values in {len(bad)} tensor(s), e.g. {bad[:3]}; "
            "expected finite weights"
        )


def check_state(model: EmbeddingPredictor, state: dict[str, torch.Tensor], where: Path) -> None:
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


def expected_tensors(config: PredictorConfig, where: Path) -> TensorSpecs:
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
        name: (tuple(t.shape), torch_name(WEIGHT_DTYPE))
        for name, t in skeleton.state_dict().items()
    }


def read_header(weights: Path) -> TensorSpecs:
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


def check_layer_count(config: PredictorConfig, found: TensorSpecs, where: Path) -> None:
    """Building even a meta-device model costs Python time per block, so a declared
    ``num_layers`` of 10**9 is compared with the blocks the file holds first."""
    blocks = {name.split(".")[1] for name in found if name.startswith("blocks.")}
    if config.num_layers != len(blocks):
        raise CheckpointError(
            f"{where}: weights do not fit its predictor_config: {METADATA_FILE} declares "
            f"num_layers={config.num_layers}, {WEIGHTS_FILE} holds {len(blocks)} block(s); "
            "expected the predictor_config the weights were saved with"
        )


def check_header(weights: Path, found: TensorSpecs, expected: TensorSpecs, where: Path) -> None:
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


def torch_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
