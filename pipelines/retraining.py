"""retraining_pipeline: new turns -> validate -> drift check -> retrain only when it is due.

A dynamic pipeline (ZenML runs the function at run time), so the decision can end the run early;
the local, Kubernetes, SageMaker and Vertex orchestrators run dynamic pipelines.
"""

from __future__ import annotations

import logging

from pipelines.registry import production_version, training_data
from pipelines.run_config import defaults_from, overlay_pipeline
from pipelines.training import MODEL, Indexing, Splits, train_evaluate_register
from prime_model.bench.latency import BenchmarkConfig
from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encode.encoders import EncoderConfig
from prime_model.evaluate.promotion import GateConfig
from prime_model.export.serving_models import ExportConfig
from prime_model.monitor.drift import DriftConfig
from prime_model.monitor.retraining import RetrainingConfig, RetrainingDecision, retraining_data
from prime_model.retrieve.corpus import CorpusSource
from prime_model.retrieve.index import IndexConfig
from steps import (
    combine_turns,
    decide_retraining,
    detect_drift,
    discard_empty_version,
    encode_new_turns,
    load_turns,
    validate_turns,
)

logger = logging.getLogger(__name__)


@overlay_pipeline(model=MODEL, dynamic=True)
@defaults_from("retraining.yaml")
def retraining_pipeline(  # noqa: PLR0917 - the YAML passes every parameter by name
    data: DataSource,
    validation: ValidationConfig,
    encoder: EncoderConfig,
    predictor: PredictorConfig,
    training: TrainingConfig,
    gate: GateConfig,
    drift: DriftConfig,
    retraining: RetrainingConfig,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    benchmark: BenchmarkConfig | None,
    export: ExportConfig | None,
    corpus: CorpusSource,
    index: IndexConfig,
) -> None:
    """Compare new turns with what production was trained on; retrain on both when due.
    Without a config, the values of configs/retraining.yaml."""
    reference = training_data(production_version())
    new = load_turns.with_options(enable_cache=False)(data)
    validated, _ = validate_turns(new, validation)
    encoded_new = encode_new_turns(validated, encoder, predictor.max_context_length)
    result, _, _ = detect_drift(
        reference.encoded_train,
        reference.train_turns,
        encoded_new,
        validated,
        drift,
    )
    decision: RetrainingDecision = decide_retraining(result, validated, retraining).load()
    if not decision.retrain:
        logger.info("no retraining: %s", "; ".join(decision.reasons))
        discard_empty_version()
        return
    combined = combine_turns(reference.turns, validated)
    train_evaluate_register(
        combined,
        encoder,
        predictor,
        training,
        gate,
        Splits(val_fraction, test_fraction, split_seed, retraining_data(reference.data, data)),
        benchmark or BenchmarkConfig(),
        export or ExportConfig(),
        Indexing(corpus, index),
        dynamic=True,
    )
