"""One ZenML step per file: thin typed wrappers over ``prime_model`` functions."""

from steps.encode_turns import encode_turns
from steps.evaluate_predictor import evaluate_predictor
from steps.load_turns import load_turns
from steps.register_model import register_model
from steps.split_turns import split_turns
from steps.train_predictor import train_predictor
from steps.validate_turns import validate_turns

__all__ = [
    "encode_turns",
    "evaluate_predictor",
    "load_turns",
    "register_model",
    "split_turns",
    "train_predictor",
    "validate_turns",
]
