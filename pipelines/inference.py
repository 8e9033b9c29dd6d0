"""inference_pipeline: turns -> validated -> embeddings predicted by the production model."""

from __future__ import annotations

from zenml import Model, pipeline
from zenml.enums import ModelStages

from pipelines import defaults
from pipelines.registry import production_version
from prime_model.artifacts import MODEL_NAME, PREDICTOR_CHECKPOINT
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encode.encoders import EncoderConfig
from steps import load_turns, predict_embeddings, validate_turns


@pipeline(model=Model(name=MODEL_NAME, version=ModelStages.PRODUCTION))
def inference_pipeline(
    data: DataSource = defaults.INFERENCE_DATA,
    validation: ValidationConfig = defaults.INFERENCE_VALIDATION,
    encoder: EncoderConfig = defaults.ENCODER,
    backend: str = "auto",
    output_path: str | None = None,
) -> None:
    """Predict with the production version (its stored ONNX models when the backend allows);
    the outputs are linked to that version. The defaults are configs/inference.yaml's, without
    its output_path (pipelines/defaults.py)."""
    version = production_version()  # resolved when the run starts, not when it is defined
    turns = load_turns.with_options(enable_cache=False)(data)
    validated, _ = validate_turns(turns, validation)
    predict_embeddings(
        validated,
        version.get_artifact(PREDICTOR_CHECKPOINT),
        encoder,
        backend,
        output_path,
        onnx_model=version.get_artifact("onnx_model"),
        onnx_int8_model=version.get_artifact("onnx_int8_model"),
    )
