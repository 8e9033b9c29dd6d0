from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.engine import load_encoder
from prime_model.runtime.batch_prediction import predict_turns, save_embeddings
from prime_model.runtime.loader import create_predictor
from prime_model.runtime.onnx_file import VerifiedOnnx
from steps._metadata import log_step_metadata


@step
def predict_embeddings(
    turns: pd.DataFrame,
    predictor_checkpoint: PredictorCheckpoint,
    encoder: EncoderConfig,
    backend: str = "auto",
    output_path: str | None = None,
    *,
    onnx_model: VerifiedOnnx | None = None,
    onnx_int8_model: VerifiedOnnx | None = None,
) -> Annotated[pd.DataFrame, "embeddings"]:
    """One predicted embedding per turn (Parquet artifact); also written to ``output_path``."""
    predictor = create_predictor(
        predictor_checkpoint, backend, onnx_fp32=onnx_model, onnx_int8=onnx_int8_model
    )
    embeddings = predict_turns(turns, predictor, load_encoder(encoder))
    if output_path is not None:
        save_embeddings(embeddings, output_path)
    log_step_metadata(
        {"rows": len(embeddings), "backend": predictor.backend, "output_path": output_path or ""},
        artifact_name="embeddings",
        infer_artifact=True,
    )
    return embeddings
