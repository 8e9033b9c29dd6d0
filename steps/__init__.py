"""ZenML steps, one per file, grouped by stage: thin typed wrappers over ``prime_model``."""

from steps.data.encode_turns import encode_turns
from steps.data.load_turns import load_turns
from steps.data.split_turns import split_turns
from steps.data.validate_turns import validate_turns
from steps.evaluate.evaluate_predictor import evaluate_predictor
from steps.evaluate.model_card import model_card
from steps.evaluate.register_model import register_model
from steps.monitor.combine_turns import combine_turns
from steps.monitor.decide_retraining import decide_retraining
from steps.monitor.detect_drift import detect_drift
from steps.monitor.discard_empty_version import discard_empty_version
from steps.monitor.encode_new_turns import encode_new_turns
from steps.serve.benchmark_latency import benchmark_latency
from steps.serve.export_onnx import export_onnx
from steps.serve.index_corpus import index_corpus
from steps.serve.predict_embeddings import predict_embeddings
from steps.train.train_predictor import train_predictor

__all__ = [
    "benchmark_latency",
    "combine_turns",
    "decide_retraining",
    "detect_drift",
    "discard_empty_version",
    "encode_new_turns",
    "encode_turns",
    "evaluate_predictor",
    "export_onnx",
    "index_corpus",
    "load_turns",
    "model_card",
    "predict_embeddings",
    "register_model",
    "split_turns",
    "train_predictor",
    "validate_turns",
]
