"""Materializers for PRIME's artifacts: safetensors and JSON only, never pickle."""

from steps.materializers.encoded_turns import EncodedTurnsMaterializer
from steps.materializers.onnx_model import VerifiedOnnxMaterializer
from steps.materializers.predictor_checkpoint import PredictorCheckpointMaterializer
from steps.materializers.retrieval_index import RetrievalIndexMaterializer
from steps.materializers.turn_table import TurnTableMaterializer

__all__ = [
    "EncodedTurnsMaterializer",
    "PredictorCheckpointMaterializer",
    "RetrievalIndexMaterializer",
    "TurnTableMaterializer",
    "VerifiedOnnxMaterializer",
]
