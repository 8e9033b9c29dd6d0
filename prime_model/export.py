"""ONNX export with proof: the file is only written once ONNX Runtime reproduces the eager model.

Exporter choice (torch 2.13): ``torch.onnx.export(dynamo=True)``, the default. Both exporters
produced correct graphs here (max abs diff ~1e-7 against eager), but the dynamo one is the
maintained path (the TorchScript exporter is deprecated), it emits the model's ops directly
(``Gelu``, ``LayerNormalization``, an attention subgraph) instead of ~150 ``Constant``/``Shape``
nodes, it does not warn about tracing the position table, and its dynamic axes come from
``torch.export.Dim`` constraints, which are checked rather than assumed. It needs onnxscript.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import numpy as np
import onnx
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import save as safetensors_bytes

from prime_model.atomic import atomic_file
from prime_model.checkpoint import PredictorCheckpoint, load_checkpoint, package_version
from prime_model.encoding import EncodedTurns
from prime_model.errors import ExportError
from prime_model.inference import Batch, ParityStats, parity
from prime_model.model import EmbeddingPredictor
from prime_model.onnx_runtime import (
    INPUT_NAMES,
    OUTPUT_NAME,
    OnnxMetadata,
    OnnxPredictor,
    VerifiedOnnx,
    embed_metadata,
    verify_onnx,
)
from prime_model.serving import ServingForward

logger = logging.getLogger(__name__)

DEFAULT_OPSET: Final = 20  # the dynamo exporter's own default; ONNX Runtime 1.18+ runs it
MIN_OPSET: Final = 18  # below it the exporter silently writes opset 18 instead
MAX_ABS_DIFF: Final = 1e-4
MIN_COSINE: Final = 0.9999
REAL_PARITY_ROWS: Final = 64


class ExportResult(BaseModel):
    """Where the model went and how closely ONNX Runtime matched eager ("random", "real")."""

    model_config = ConfigDict(frozen=True)

    path: Path
    bytes: int = Field(ge=0)
    sha256: str = Field(description="over the graph and its prime.* metadata")
    weights_sha256: str
    opset: int
    exporter: str = "torch.onnx.export(dynamo=True)"
    parity: dict[str, ParityStats]
    seconds: float = Field(ge=0)


def weights_sha256(model: EmbeddingPredictor) -> str:
    """sha256 of the weights as ``save_checkpoint`` writes them, so it matches a checkpoint's."""
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    return hashlib.sha256(
        safetensors_bytes(state, metadata={"format": "prime-predictor"})
    ).hexdigest()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter warns about things that are fine here (merged axis names, torchvision ops
    it skips, a pytree deprecation); keep them out of logs and out of warnings-as-errors."""
    noisy = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
            yield
    finally:
        noisy.setLevel(level)


def _cpu_float_copy(model: EmbeddingPredictor) -> EmbeddingPredictor:
    param = model.pred_token
    if param.device.type == "cpu" and param.dtype == torch.float32 and not model.training:
        return model
    return copy.deepcopy(model).float().cpu().eval()


def to_onnx_model(
    model: EmbeddingPredictor, *, opset: int = DEFAULT_OPSET, source_sha256: str | None = None
) -> onnx.ModelProto:
    """Trace ``model`` to an fp32 ONNX graph with dynamic batch/context axes and PRIME metadata."""
    if opset < MIN_OPSET:
        raise ExportError(
            f"opset {opset} is not supported: torch.onnx.export writes opset {MIN_OPSET} or "
            f"newer; expected {MIN_OPSET} <= opset (default {DEFAULT_OPSET})"
        )
    model = _cpu_float_copy(model)
    cfg = model.config
    n_max = cfg.max_context_length
    # example sizes of 2 keep torch.export from specialising the dynamic axes to 0/1
    example_n = min(2, n_max)
    example = (
        torch.randn(2, example_n, cfg.input_dim),
        torch.randn(2, cfg.input_dim),
        torch.ones(2, example_n, dtype=torch.bool),
    )
    batch = torch.export.Dim("batch", min=1)
    dims = {0: batch, 1: torch.export.Dim("turns", min=1, max=n_max)} if n_max > 1 else {0: batch}
    try:
        with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(
                ServingForward(model).eval(),  # its forward's argument names name the inputs
                example,
                None,
                dynamo=True,
                external_data=False,
                verbose=False,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"context": dims, "query": {0: batch}, "context_mask": dims},
            )
    except Exception as exc:  # the exporter's errors are many and untyped
        raise ExportError(f"torch.onnx.export failed at opset {opset}: {exc}") from None
    if program is None:  # pragma: no cover - only with f= given
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter falls back instead of failing: never record a wrong opset
        raise ExportError(
            f"torch.onnx.export wrote opset {written} when asked for opset {opset}; "
            f"choose an opset it can write (default {DEFAULT_OPSET})"
        )
    embed_metadata(
        proto,
        OnnxMetadata(
            kind="fp32",
            predictor_config=cfg,
            weights_sha256=source_sha256 or weights_sha256(model),
            package_version=package_version(),
            opset=opset,
        ),
    )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph fails onnx.checker: {exc}") from None
    return proto


def random_batches(model: EmbeddingPredictor, seed: int = 0) -> list[Batch]:
    """Shapes that exercise the dynamic axes and the mask: a full batch-1 row, a batch with
    random padding and one all-padding context row, and a shorter context."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    n_max, D = cfg.max_context_length, cfg.input_dim
    limit = cfg.max_batch_size or 32
    shapes = [(1, n_max), (min(5, limit), n_max), (min(3, limit), max(1, n_max // 2))]
    batches = []
    for B, N in shapes:
        mask = rng.random((B, N)) < 0.7
        mask[:, -1] = True
        if B > 1:
            mask[-1] = False
        if B == 1 and n_max == N:
            mask[:] = True
        batches.append(
            Batch(
                rng.standard_normal((B, N, D)).astype(np.float32),
                rng.standard_normal((B, D)).astype(np.float32),
                mask,
            )
        )
    return batches


def encoded_batches(encoded: EncodedTurns, rows: int = REAL_PARITY_ROWS) -> list[Batch]:
    """Up to ``rows`` real turns, in chunks no larger than a typical inference batch."""
    out = []
    for start in range(0, min(rows, len(encoded)), 16):
        part = slice(start, min(start + 16, rows))
        out.append(
            Batch(
                encoded.context[part].float().numpy(),
                encoded.query[part].float().numpy(),
                encoded.context_mask[part].numpy(),
            )
        )
    return out


def measure_parity(
    predictor: OnnxPredictor, model: EmbeddingPredictor, batches: Sequence[Batch]
) -> ParityStats:
    """Largest difference between ONNX Runtime and the eager model over ``batches``."""
    reference, candidate = [], []
    for batch in batches:
        with torch.inference_mode():
            reference.append(
                model.forward_unchecked(
                    torch.from_numpy(batch.context),
                    torch.from_numpy(batch.query),
                    torch.from_numpy(batch.context_mask),
                ).numpy()
            )
        candidate.append(predictor.predict_batch(batch))
    return parity(np.concatenate(candidate), np.concatenate(reference))


def _check(stats: ParityStats, label: str) -> None:
    if stats.max_abs_diff > MAX_ABS_DIFF or stats.min_cosine < MIN_COSINE:
        raise ExportError(
            f"ONNX Runtime does not reproduce the eager model on {label} inputs: max abs diff "
            f"{stats.max_abs_diff:.2e} (allowed {MAX_ABS_DIFF:.0e}), min cosine "
            f"{stats.min_cosine:.6f} (required {MIN_COSINE}); the file was not written"
        )


def export_verified(
    model: EmbeddingPredictor,
    *,
    opset: int = DEFAULT_OPSET,
    weights_sha256: str | None = None,
    reference_inputs: EncodedTurns | None = None,
) -> VerifiedOnnx:
    """Export in memory and pass the parity check (random and, if given, real inputs)."""
    verified, _ = _export_checked(model, opset, weights_sha256, reference_inputs)
    return verified


def _export_checked(
    model: EmbeddingPredictor,
    opset: int,
    source_sha256: str | None,
    reference_inputs: EncodedTurns | None,
) -> tuple[VerifiedOnnx, dict[str, ParityStats]]:
    proto = to_onnx_model(model, opset=opset, source_sha256=source_sha256)
    verified = verify_onnx(proto.SerializeToString(), "exported model")
    predictor = OnnxPredictor(verified)
    reference = _cpu_float_copy(model)
    stats = {"random": measure_parity(predictor, reference, random_batches(reference))}
    _check(stats["random"], "random")
    if reference_inputs is not None and len(reference_inputs):
        stats["real"] = measure_parity(predictor, reference, encoded_batches(reference_inputs))
        _check(stats["real"], "real")
    return verified, stats


def export_onnx(
    checkpoint: EmbeddingPredictor | PredictorCheckpoint | str | Path,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    reference_inputs: EncodedTurns | None = None,
) -> ExportResult:
    """Export a predictor (model, loaded checkpoint or checkpoint directory) to one ``.onnx``.

    The graph takes ``context`` (B×N×D float32), ``query`` (B×D) and ``context_mask`` (B×N bool)
    with dynamic B and N and returns ``embedding`` (B×D_out). It is checked with onnx.checker and
    against eager on random inputs and on ``reference_inputs`` (real encoded turns) before it is
    written atomically; a mismatch raises :class:`ExportError` and writes nothing.
    """
    started = time.perf_counter()
    target = _check_target(Path(path))
    source_sha256 = None
    if isinstance(checkpoint, str | Path):
        checkpoint = load_checkpoint(checkpoint)
    if isinstance(checkpoint, PredictorCheckpoint):
        model, source_sha256 = checkpoint.model, checkpoint.metadata.weights_sha256
    else:
        model = checkpoint
    verified, stats = _export_checked(model, opset, source_sha256, reference_inputs)
    write_bytes_atomic(target, verified.data)
    seconds = time.perf_counter() - started
    logger.info(
        "exported %s (%.1f MB, %.1f s); parity %s",
        target,
        len(verified.data) / 1e6,
        seconds,
        {k: f"{v.max_abs_diff:.1e}/{v.min_cosine:.6f}" for k, v in stats.items()},
    )
    return ExportResult(
        path=target,
        bytes=len(verified.data),
        sha256=verified.sha256,
        weights_sha256=verified.metadata.weights_sha256,
        opset=opset,
        parity=stats,
        seconds=seconds,
    )


def _check_target(path: Path) -> Path:
    """Fail before a minute of exporting, not after, when the target cannot be written."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a directory; expected a .onnx file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExportError(f"cannot write {path}: {parent} is a file, not a directory")
            break
    return path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    try:
        with atomic_file(path) as staging:
            staging.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
