"""ONNX export with proof: the file is only written once ONNX Runtime reproduces the eager model.

The graph comes from :func:`prime_model.export.onnx_graph.to_onnx_model` (the exporter choice is
explained there); it is checked against eager on random and on real inputs before anything is
written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from prime_model.atomic import atomic_file
from prime_model.checkpoint import PredictorCheckpoint, load_checkpoint
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import ExportError
from prime_model.export.onnx_graph import DEFAULT_OPSET, cpu_float_copy, to_onnx_model
from prime_model.model import EmbeddingPredictor
from prime_model.model_inputs import NUM_ROLE_IDS
from prime_model.runtime.inference import Batch, ParityStats, parity
from prime_model.runtime.inputs import as_tensors
from prime_model.runtime.onnx_file import VerifiedOnnx, verify_onnx
from prime_model.runtime.onnx_runtime import OnnxPredictor

logger = logging.getLogger(__name__)

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


def random_batches(model: EmbeddingPredictor, seed: int = 0) -> list[Batch]:
    """Shapes that exercise the dynamic axes and the mask: a full batch-1 row, a batch with
    random padding and one all-padding context row, and a shorter context; random roles and
    concat too, for a model that reads them."""
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
        context = rng.standard_normal((B, N, D)).astype(np.float32)
        query = rng.standard_normal((B, D)).astype(np.float32)
        roles = rng.integers(0, NUM_ROLE_IDS, (B, N)) if cfg.role_embedding else None
        concat = rng.standard_normal((B, D)).astype(np.float32) if cfg.concat_input else None
        batches.append(Batch(context, query, mask, roles, concat))
    return batches


def encoded_batches(
    encoded: EncodedTurns, rows: int = REAL_PARITY_ROWS, *, concat: bool = False
) -> list[Batch]:
    """Up to ``rows`` real turns, in chunks no larger than a typical inference batch, with their
    roles when known; ``concat``: the model reads concat, so ``encoded`` must hold it."""
    if concat and encoded.concat is None:
        raise ExportError(
            "the model reads concat but the reference inputs hold none; expected turns encoded "
            "with concat=True (prime_model.encode.encoding.encode_turns)"
        )
    out = []
    for start in range(0, min(rows, len(encoded)), 16):
        part = slice(start, min(start + 16, rows))
        roles, joined = encoded.context_roles, encoded.concat if concat else None
        out.append(
            Batch(
                encoded.context[part].float().numpy(),
                encoded.query[part].float().numpy(),
                encoded.context_mask[part].numpy(),
                None if roles is None else roles[part].numpy(),
                None if joined is None else joined[part].float().numpy(),
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
            reference.append(model.forward_unchecked(as_tensors(batch)).numpy())
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
    reference = cpu_float_copy(model)
    stats = {"random": measure_parity(predictor, reference, random_batches(reference))}
    _check(stats["random"], "random")
    if reference_inputs is not None and len(reference_inputs):
        real = encoded_batches(reference_inputs, concat=reference.config.concat_input)
        stats["real"] = measure_parity(predictor, reference, real)
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
    with dynamic B and N, plus ``context_roles`` (B×N int64) and ``concat`` (B×D float32) when
    the config has ``role_embedding`` / ``concat_input``, and returns ``embedding`` (B×D_out).
    It is checked with onnx.checker and against eager on random inputs and on
    ``reference_inputs`` (real encoded turns) before it is written atomically; a mismatch
    raises :class:`ExportError` and writes nothing.
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
    """All of ``data`` at ``path`` or nothing: a crash never leaves half a model there."""
    try:
        with atomic_file(path) as staging:
            staging.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
