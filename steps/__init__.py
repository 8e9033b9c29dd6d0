"""One ZenML step per file: thin typed wrappers over ``prime_model`` functions."""

from steps.benchmark_latency import benchmark_latency
from steps.combine_turns import combine_turns
from steps.decide_retraining import decide_retraining
from steps.detect_drift import detect_drift
from steps.encode_new_turns import encode_new_turns
from steps.encode_turns import encode_turns
from steps.evaluate_predictor import evaluate_predictor
from steps.export_onnx import export_onnx
from steps.load_turns import load_turns
from steps.predict_embeddings import predict_embeddings
from steps.register_model import register_model
from steps.split_turns import split_turns
from steps.train_predictor import train_predictor
from steps.validate_turns import validate_turns

__all__ = [
    "benchmark_latency",
    "combine_turns",
    "decide_retraining",
    "detect_drift",
    "encode_new_turns",
    "encode_turns",
    "evaluate_predictor",
    "export_onnx",
    "load_turns",
    "predict_embeddings",
    "register_model",
    "split_turns",
    "train_predictor",
    "validate_turns",
]
