from __future__ import annotations

from typing import Annotated

from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType

from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoding import EncodedTurns
from prime_model.export.quantize import QuantizationResult
from prime_model.export.serving_models import ExportConfig, export_serving_models
from prime_model.runtime.onnx_file import VerifiedOnnx


@step
def export_onnx(
    predictor_checkpoint: PredictorCheckpoint, encoded_test: EncodedTurns, export: ExportConfig
) -> tuple[
    Annotated[VerifiedOnnx, ArtifactConfig(name="onnx_model", artifact_type=ArtifactType.MODEL)],
    Annotated[
        VerifiedOnnx | None,
        ArtifactConfig(name="onnx_int8_model", artifact_type=ArtifactType.MODEL),
    ],
    Annotated[QuantizationResult | None, "quantization"],
]:
    """fp32 ONNX (parity-checked) and int8 ONNX when its Recall@10 holds on the test split."""
    models = export_serving_models(predictor_checkpoint, encoded_test, export)
    return models.fp32, models.int8, models.quantization
