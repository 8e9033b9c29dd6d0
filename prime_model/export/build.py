"""Any backend straight from a torch model, exporting and quantising in memory: for benchmarks
and tests, which compare backends of one model without files.

Serving never comes here: :func:`prime_model.runtime.loader.create_predictor` only loads what
the export step wrote (checked for parity and, for int8, Recall@10).
"""

from __future__ import annotations

import logging

import torch

from prime_model.export.export import export_verified
from prime_model.export.int8 import quantize_verified
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.inference import InferencePredictor
from prime_model.runtime.loader import create_predictor, resolve_device
from prime_model.runtime.onnx_runtime import OnnxPredictor

logger = logging.getLogger(__name__)


def quantized(predictor: OnnxPredictor) -> OnnxPredictor:
    """An fp32 model quantised to int8 with this CPU's default options, in memory.

    No Recall@10 check happens here: that is :func:`prime_model.export.quantize.quantize_onnx`.
    """
    if predictor.metadata.kind == "int8":
        return predictor
    logger.info("quantising to int8 in memory (no Recall@10 acceptance check)")
    return OnnxPredictor(
        quantize_verified(predictor.onnx_model), device=predictor.device, threads=predictor.threads
    )


def onnx_predictor(
    model: EmbeddingPredictor,
    *,
    int8: bool = False,
    device: torch.device | None = None,
    threads: int | None = None,
    weights_sha256: str | None = None,
) -> OnnxPredictor:
    """Export in memory (with the parity check); ``int8`` then quantises dynamically."""
    predictor = OnnxPredictor(
        export_verified(model, weights_sha256=weights_sha256), device=device, threads=threads
    )
    return quantized(predictor) if int8 else predictor


def build_predictor(
    model: EmbeddingPredictor,
    backend: str,
    device: str | torch.device | None = None,
    *,
    threads: int | None = None,
) -> InferencePredictor:
    """``backend`` of ``model``: onnx / onnx-int8 exported (and quantised) here, the others as
    :func:`~prime_model.runtime.loader.create_predictor` builds them."""
    if backend not in ("onnx", "onnx-int8"):
        return create_predictor(model, backend, device, threads=threads)
    target = resolve_device(device, model)
    return onnx_predictor(model, int8=backend == "onnx-int8", device=target, threads=threads)
