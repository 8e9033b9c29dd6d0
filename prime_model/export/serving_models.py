"""The models a trained checkpoint ships for serving: verified fp32 ONNX and, when retrieval
holds, int8 ONNX.

Kept in memory (bytes + verified metadata) so that the pipeline stores them as artifacts and
:func:`prime_model.runtime.loader.create_predictor` picks the fastest accepted one without
re-exporting.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from prime_model.checkpoint import PredictorCheckpoint
from prime_model.config import FrozenConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.export.export import export_verified
from prime_model.export.int8 import QuantizationOptions
from prime_model.export.onnx_graph import DEFAULT_OPSET, MIN_OPSET
from prime_model.export.quantize import AcceptanceRule, QuantizationResult, choose_quantization
from prime_model.runtime.onnx_file import VerifiedOnnx


class ExportConfig(FrozenConfig):
    """How ``export_onnx`` exports and whether it tries int8."""

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
