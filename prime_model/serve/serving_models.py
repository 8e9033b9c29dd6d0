"""The models a trained checkpoint ships for serving: verified fp32 ONNX and, when retrieval
holds, int8 ONNX; and which of them answers a request for a backend.

Kept in memory (bytes + verified metadata) so that the pipeline stores them as artifacts and
batch inference picks the fastest accepted one without re-exporting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import PredictorError
from prime_model.serve.calibration import random_batch
from prime_model.serve.cpu import instruction_set
from prime_model.serve.export import export_verified
from prime_model.serve.inference import BACKENDS, InferencePredictor, parity
from prime_model.serve.int8 import QuantizationOptions
from prime_model.serve.onnx_file import VerifiedOnnx
from prime_model.serve.onnx_graph import DEFAULT_OPSET, MIN_OPSET
from prime_model.serve.onnx_runtime import OnnxPredictor
from prime_model.serve.optimized import create_predictor, resolve_device
from prime_model.serve.quantize import (
    MIN_COSINE,
    AcceptanceRule,
    QuantizationResult,
    choose_quantization,
)

logger = logging.getLogger(__name__)

AUTO: Final = "auto"
_RECHECK_ROWS: Final = 32


class ExportConfig(BaseModel):
    """How ``export_onnx`` exports and whether it tries int8."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    opset: int = Field(DEFAULT_OPSET, ge=MIN_OPSET, description="ONNX opset of the fp32 export")
    int8: bool = Field(True, description="also quantise; kept only if it holds on this CPU")
    quantization: QuantizationOptions | None = Field(
        None, description="one scheme to judge; None: measure every candidate for this CPU"
    )
    acceptance: AcceptanceRule = AcceptanceRule()


@dataclass(frozen=True)
class ServingModels:
    fp32: VerifiedOnnx
    int8: VerifiedOnnx | None  # None: not tried, or rejected (see quantization)
    quantization: QuantizationResult | None


def export_serving_models(
    checkpoint: PredictorCheckpoint, evaluation: EncodedTurns, config: ExportConfig
) -> ServingModels:
    """fp32 export checked against eager on random and on ``evaluation`` inputs; int8 judged by
    Recall@10 on ``evaluation`` (the held-out split) and dropped when it falls short."""
    fp32 = export_verified(
        checkpoint.model,
        opset=config.opset,
        weights_sha256=checkpoint.metadata.weights_sha256,
        reference_inputs=evaluation,
    )
    if not config.int8:
        return ServingModels(fp32, None, None)
    candidates = None if config.quantization is None else [config.quantization]
    int8, verdict = choose_quantization(fp32, evaluation, candidates, config.acceptance)
    return ServingModels(fp32, int8, verdict)


def int8_holds_here(
    int8: VerifiedOnnx, fp32: VerifiedOnnx, min_cosine: float | None = None
) -> bool:
    """Whether a stored int8 model still matches its fp32 source on this CPU.

    int8 was judged on the CPU it was exported on; dynamic int8's error differs between CPUs
    with and without VNNI, so on another instruction set it is re-checked on random inputs
    (a second, not the full Recall@10 judgement) before it may serve."""
    min_cosine = MIN_COSINE if min_cosine is None else min_cosine
    quantization = int8.metadata.quantization or {}
    here = instruction_set().label
    if quantization.get("cpu") == here:
        return True
    config = fp32.metadata.predictor_config
    batch = random_batch(config, _RECHECK_ROWS, config.max_context_length, seed=0)
    stats = parity(
        OnnxPredictor(int8).predict_batch(batch), OnnxPredictor(fp32).predict_batch(batch)
    )
    if stats.min_cosine >= min_cosine:
        return True
    logger.warning(
        "the stored int8 model was judged on a %s CPU; on this %s one its min cosine to fp32 is "
        "%.5f < %s, so fp32 serves (re-export on this machine to choose int8 for it)",
        quantization.get("cpu", "unknown"),
        here,
        stats.min_cosine,
        min_cosine,
    )
    return False


def serving_predictor(
    checkpoint: PredictorCheckpoint,
    backend: str = AUTO,
    *,
    onnx_fp32: VerifiedOnnx | None = None,
    onnx_int8: VerifiedOnnx | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> InferencePredictor:
    """The predictor for ``backend``, preferring the stored exports over exporting anew.

    ``auto`` on CPU: the accepted int8 model, else fp32 ONNX, else whatever
    :func:`create_predictor` picks for the checkpoint. On CUDA ``auto`` leaves it to
    ``create_predictor`` (compiled + CUDA graphs). ``onnx``/``onnx-int8`` use the stored file
    of that kind when there is one; ``eager``/``compiled`` always run the checkpoint.
    """
    if backend != AUTO and backend not in BACKENDS:
        raise PredictorError(f"unknown backend {backend!r}; expected auto or one of {BACKENDS}")
    target = resolve_device(device, None)
    stored = {"onnx": onnx_fp32, "onnx-int8": onnx_int8}
    if backend == AUTO and target.type == "cpu":
        usable = onnx_int8 is not None and (
            onnx_fp32 is None or int8_holds_here(onnx_int8, onnx_fp32)
        )
        backend = "onnx-int8" if usable else "onnx"
    chosen = stored.get(backend)
    if chosen is not None:
        logger.info("inference backend: stored %s model (%s)", backend, chosen.sha256[:12])
        return OnnxPredictor(chosen, device=target, threads=threads)
    return create_predictor(checkpoint, backend, target, threads=threads)
