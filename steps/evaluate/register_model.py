from __future__ import annotations

import logging
from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.enums import ModelStages

from prime_model.bench.latency import LatencyBenchmark
from prime_model.evaluate.promotion import GateConfig, PromotionDecision, decide_promotion
from prime_model.evaluate.report import BASELINES, MODEL, EvaluationTable
from prime_model.export.quantize import QuantizationResult

logger = logging.getLogger(__name__)


@step(enable_cache=False)  # a decision with side effects: taken anew for every version
def register_model(
    evaluation: EvaluationTable,
    gate: GateConfig,
    latency: LatencyBenchmark | None = None,
    quantization: QuantizationResult | None = None,
) -> Annotated[PromotionDecision, "promotion"]:
    """Promote this run's model version to production only if it passes the quality gate.

    ``latency`` and ``quantization`` make the gate wait for export and benchmark (a model that
    cannot be exported never reaches production) and are recorded on every version, cached or not.
    """
    model = get_step_context().model
    serving: dict[str, Any] = {}
    if latency is not None:
        serving["latency"] = latency.summary()
    if quantization is not None:
        serving["int8"] = quantization.model_dump(mode="json")
    if serving:
        log_metadata(metadata=serving, model_name=model.name, model_version=str(model.version))
    decision = apply_gate(model.name, str(model.version), evaluation, gate)
    # the step's Metadata tab: the decision and why, without loading the artifact
    log_metadata(metadata=decision.metadata(evaluation))
    return decision


def apply_gate(
    model_name: str, version: str, evaluation: EvaluationTable, gate: GateConfig
) -> PromotionDecision:
    """Compare with the floor, the best baseline and production (when it was judged on the same
    evaluation set); record the decision and the set on the version."""
    # deferred: importing the pipelines package imports every step, this one included
    from pipelines.registry import (  # noqa: PLC0415
        EVALUATION_SET,
        production_evaluation_set,
        production_score,
        production_twin,
    )

    score = evaluation.rows[MODEL][gate.metric]
    # a table evaluated before a baseline existed (a cached step) lacks its row
    best_baseline = max(
        evaluation.rows[name][gate.metric] for name in BASELINES if name in evaluation.rows
    )
    decision = decide_promotion(
        score,
        best_baseline,
        production_score(model_name, gate.metric),
        gate,
        same_as=production_twin(model_name, version),
        evaluated_on=evaluation.evaluation_set,
        production_on=production_evaluation_set(model_name),
    )
    for note in decision.notes:
        logger.info("gate: %s", note)
    if decision.promote:
        version_ = Client().get_model_version(model_name, version)
        version_.set_stage(ModelStages.PRODUCTION, force=True)
    # logged here, not in evaluate_predictor: this step runs for every version, even when the
    # evaluation is cached, so every version carries the score the next gate compares with
    log_metadata(
        metadata={
            gate.metric: score,
            **_evaluation_set(EVALUATION_SET, evaluation),
            "evaluation": evaluation.rows,
            "best_baseline": evaluation.best_baseline,
            "promotion": decision.model_dump(),
            **decision.metadata(evaluation),
        },
        model_name=model_name,
        model_version=version,
    )
    return decision


def _evaluation_set(key: str, evaluation: EvaluationTable) -> dict[str, Any]:
    """The set this version was judged on, for the next gate (nothing for an older table)."""
    judged_on = evaluation.evaluation_set
    return {} if judged_on is None else {key: judged_on.model_dump(mode="json")}
