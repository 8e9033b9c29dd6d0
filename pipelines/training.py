"""training_pipeline: turns -> validated, split, encoded, trained, evaluated and gated model."""

from __future__ import annotations

from typing import Any, NamedTuple

from zenml import Model

from pipelines.run_config import defaults_from, overlay_pipeline
from prime_model.artifacts import MODEL_NAME
from prime_model.bench.latency import BenchmarkConfig
from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encode.encoders import EncoderConfig
from prime_model.evaluate.promotion import GateConfig
from prime_model.export.serving_models import ExportConfig
from prime_model.retrieve.corpus import CorpusSource
from prime_model.retrieve.index import IndexConfig
from steps import (
    benchmark_latency,
    encode_turns,
    evaluate_predictor,
    export_onnx,
    index_corpus,
    load_turns,
    model_card,
    register_model,
    split_turns,
    train_predictor,
    validate_turns,
)

MODEL = Model(
    name=MODEL_NAME,
    description="PRIME embedding predictor: conversation context -> target embedding",
    tags=["embedding-predictor", "infonce"],
)


@overlay_pipeline(model=MODEL)
@defaults_from("training.yaml")
def training_pipeline(  # noqa: PLR0917 - the YAML passes every parameter by name
    data: DataSource,
    validation: ValidationConfig,
    encoder: EncoderConfig,
    predictor: PredictorConfig,
    training: TrainingConfig,
    gate: GateConfig,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    benchmark: BenchmarkConfig | None,
    export: ExportConfig | None,
    corpus: CorpusSource,
    index: IndexConfig,
) -> None:
    """Every knob is a typed parameter, set from the YAML config; without one, the values of
    configs/training.yaml (its parameters are the defaults: one place to change them)."""
    # a file can change under the same path, so it is read every run; its content hash (the
    # fingerprint) keys the next steps' cache: unchanged data hits it, changed data re-runs
    turns = load_turns.with_options(enable_cache=data.kind == "sample")(data)
    validated, _ = validate_turns(turns, validation)
    train_evaluate_register(
        validated,
        encoder,
        predictor,
        training,
        gate,
        Splits(val_fraction, test_fraction, split_seed, data if data.kind == "files" else None),
        benchmark or BenchmarkConfig(),
        export or ExportConfig(),
        Indexing(corpus, index),
    )


class Indexing(NamedTuple):
    corpus: CorpusSource
    config: IndexConfig


class Splits(NamedTuple):
    val_fraction: float
    test_fraction: float
    seed: int
    data: DataSource | None = None  # kind: files: each source split on its own


def train_evaluate_register(  # noqa: PLR0917 - the pipelines' own parameters, passed through
    validated: Any,
    encoder: EncoderConfig,
    predictor: PredictorConfig,
    training: TrainingConfig,
    gate: GateConfig,
    splits: Splits,
    benchmark: BenchmarkConfig,
    export: ExportConfig,
    indexing: Indexing,
    *,
    dynamic: bool = False,
) -> None:
    """The steps after validation, shared by the training and retraining pipelines.

    The gate runs last: a model that cannot be exported or served never reaches production.
    The index waits for the encoding (a dynamic pipeline runs its steps in call order), so it
    reads the targets' vectors from the embedding cache and the training vectors come from one
    encoding call, as before the cache: a text's vector moves by ~1e-7 with its batch.
    """
    train, val, test = split_turns(validated, *splits, predictor.max_context_length)
    encoded_train, encoded_val, encoded_test = encode_turns(
        train, val, test, encoder, predictor.max_context_length, predictor.concat_input
    )
    checkpoint, _, _ = train_predictor(encoded_train, encoded_val, predictor, training)
    evaluation, _ = evaluate_predictor(checkpoint, encoded_test, test, encoder)
    _, _, quantization = export_onnx(checkpoint, encoded_test, export)
    latency, _ = benchmark_latency(checkpoint, encoded_test, benchmark)
    index_corpus(validated, encoder, *indexing, **({} if dynamic else {"after": encoded_train}))
    promotion = register_model(evaluation, gate, latency, quantization)
    model_card(evaluation, promotion)
