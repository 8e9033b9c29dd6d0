"""training_pipeline: turns -> validated, split, encoded, trained, evaluated and gated model."""

from __future__ import annotations

from zenml import Model, pipeline

from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encoders import EncoderConfig
from prime_model.promotion import GateConfig
from steps import (
    encode_turns,
    evaluate_predictor,
    load_turns,
    register_model,
    split_turns,
    train_predictor,
    validate_turns,
)

MODEL_NAME = "prime-predictor"


@pipeline(
    model=Model(
        name=MODEL_NAME,
        description="PRIME embedding predictor: conversation context -> target embedding",
        tags=["embedding-predictor", "infonce"],
    )
)
def training_pipeline(  # noqa: PLR0917 - the YAML passes every parameter by name
    data: DataSource,
    validation: ValidationConfig,
    encoder: EncoderConfig,
    predictor: PredictorConfig,
    training: TrainingConfig,
    gate: GateConfig,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
) -> None:
    """Every knob is a typed parameter, set from the YAML config (see configs/training.yaml)."""
    # a user file can change under the same path: only the generated sample may be cached
    turns = load_turns.with_options(enable_cache=data.kind == "sample")(data)
    validated, _ = validate_turns(turns, validation)
    train, val, test = split_turns(validated, val_fraction, test_fraction, split_seed)
    encoded_train, encoded_val, encoded_test = encode_turns(
        train, val, test, encoder, predictor.max_context_length
    )
    checkpoint, _, _ = train_predictor(encoded_train, encoded_val, predictor, training)
    evaluation, _ = evaluate_predictor(checkpoint, encoded_test, test, encoder)
    register_model(evaluation, gate)
