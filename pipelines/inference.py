"""inference_pipeline: turns -> validated -> embeddings predicted by the production model."""

from __future__ import annotations

from zenml import Model
from zenml.enums import ModelStages

from pipelines.registry import production_version
from pipelines.run_config import defaults_from, overlay_pipeline
from prime_model.artifacts import MODEL_NAME, PREDICTOR_CHECKPOINT
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encode.encoders import EncoderConfig
from steps import load_turns, predict_embeddings, validate_turns


@overlay_pipeline(model=Model(name=MODEL_NAME, version=ModelStages.PRODUCTION))
@defaults_from("inference.yaml", output_path=None)  # a bare run writes no file, keeps the artifact
def inference_pipeline(
    data: DataSource,
    validation: ValidationConfig,
    encoder: EncoderConfig,
    backend: str,
    output_path: str | None,
) -> None:
    """Predict with the production version (its stored ONNX models when the backend allows);
    the outputs are linked to that version. Without a config, the values of
    configs/inference.yaml, but no output_path."""
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
