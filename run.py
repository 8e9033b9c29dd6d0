"""Run a pipeline with a YAML config, then say where to look.

    python run.py [--pipeline training|retraining|inference] [--config CONFIG]

The same as ``zenml pipeline run <name>_pipeline -c CONFIG``, plus a summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import get_type_hints
from uuid import UUID

from pydantic import ValidationError
from zenml.client import Client
from zenml.models import PipelineRunResponse

from pipelines import inference_pipeline, retraining_pipeline, training_pipeline
from pipelines.run_config import load_run_config
from prime_model.artifacts import MODEL_NAME
from prime_model.config import describe_validation_error
from prime_model.errors import PrimeError
from prime_model.evaluate.promotion import PromotionDecision
from prime_model.evaluate.report import EvaluationTable
from prime_model.logs import quiet_loggers
from prime_model.monitor.retraining import RetrainingDecision
from prime_model.strict_fields import strict_values

logger = logging.getLogger("run")
ZENML_BANNER = "zenml.pipelines.pipeline_definition"

PIPELINES = {
    "training": training_pipeline,
    "retraining": retraining_pipeline,
    "inference": inference_pipeline,
}
DASHBOARD = (
    "dashboard: `make dashboard` (or `zenml login --local`), then open the URL it prints "
    "(runs, artifacts and their lineage, the model version with its metrics)"
)


def summary(run_id: UUID) -> str:
    """The run, its model version and stage, then what its last steps decided or produced."""
    client = Client()
    run = client.get_pipeline_run(run_id)
    lines = [f"run: {run.name} ({run.status.value})"]
    if run.model_version is not None:
        version = client.get_model_version(MODEL_NAME, run.model_version.id)
        lines.append(f"model: {MODEL_NAME} version {version.name}, stage {version.stage or 'none'}")
    lines += _retraining(run) + _gate(run) + _predictions(run)
    return "\n".join([*lines, DASHBOARD]) + "\n"


def _output(run: PipelineRunResponse, step: str, name: str) -> object:
    if step not in run.steps:
        return None
    value: object = run.steps[step].outputs[name][0].load()
    return value


def _retraining(run: PipelineRunResponse) -> list[str]:
    decision = _output(run, "decide_retraining", "retraining_decision")
    if not isinstance(decision, RetrainingDecision):
        return []
    verdict = "retrain" if decision.retrain else "no retraining"
    return [f"retraining: {verdict}: {'; '.join(decision.reasons)}"]


def _gate(run: PipelineRunResponse) -> list[str]:
    decision = _output(run, "register_model", "promotion")
    evaluation = _output(run, "evaluate_predictor", "evaluation")
    if not isinstance(decision, PromotionDecision) or not isinstance(evaluation, EvaluationTable):
        return []
    verdict = "promoted to production" if decision.promote else "not promoted: "
    return [
        f"gate: {verdict}{'; '.join(decision.reasons)}",
        "",
        evaluation.to_markdown(breakdown=False).rstrip(),
        "(per segment: the evaluation_report artifact)",
    ]


def _predictions(run: PipelineRunResponse) -> list[str]:
    if "predict_embeddings" not in run.steps:
        return []
    artifact = run.steps["predict_embeddings"].outputs["embeddings"][0]
    where = artifact.run_metadata.get("output_path")
    return [
        f"embeddings: {artifact.run_metadata.get('rows')} rows" + (f", {where}" if where else "")
    ]


def check_config(path: str, pipeline: str | None = None) -> None:
    """What zenml would report with a traceback, or accept silently: a missing, unreadable,
    non-mapping or hostile file (alias bomb, duplicate key, a FIFO), and — given ``pipeline`` —
    a boolean or string where one of its parameters wants a number (``batch_size: yes``).
    An overlay is checked as the run will see it: with its ``base:`` resolved."""
    parameters = load_run_config(path).get("parameters")
    if pipeline is not None and isinstance(parameters, dict):
        hints = get_type_hints(PIPELINES[pipeline].entrypoint)
        strict_values(hints, parameters, f"{path}: parameters")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", choices=sorted(PIPELINES), default="training")
    parser.add_argument("--config", help="default: configs/<pipeline>.yaml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = args.config or f"configs/{args.pipeline}.yaml"
    try:
        check_config(config, args.pipeline)
        # ZenML's start-up banner (user, stack, each component, dashboard hint: ~10 lines) says
        # nothing the summary does not; step progress and warnings still show
        with quiet_loggers(ZENML_BANNER):
            run = PIPELINES[args.pipeline].with_options(config_path=config)()
    except PrimeError as exc:
        # a user error: the message on stderr, no traceback (zenml's log handler writes to stdout)
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except ValueError as exc:  # zenml wraps the parameters' pydantic errors in a ValueError
        if not isinstance(exc.__cause__, ValidationError):
            raise
        details = describe_validation_error(exc.__cause__)
        sys.stderr.write(f"error: {config}: invalid pipeline parameters:\n{details}\n")
        return 2
    if run is None:
        logger.error("the pipeline returned no run")
        return 1
    sys.stdout.write(summary(run.id))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
