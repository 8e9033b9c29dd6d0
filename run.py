"""Run the training pipeline with a YAML config, then say where to look.

    python run.py [--config configs/training.yaml]

The same as ``zenml pipeline run pipelines.training_pipeline -c CONFIG``, plus a summary.
"""

from __future__ import annotations

import argparse
import logging
import sys

from zenml.client import Client

from pipelines import training_pipeline
from pipelines.training import MODEL_NAME
from prime_model.promotion import PromotionDecision

logger = logging.getLogger("run")


def summary(run_name: str) -> str:
    """The run, its model version and stage, the gate's decision and the metrics table."""
    client = Client()
    run = client.get_pipeline_run(run_name)
    lines = [f"run: {run.name} ({run.status.value})"]
    decision: PromotionDecision = run.steps["register_model"].outputs["promotion"][0].load()
    if run.model_version is not None:
        version = client.get_model_version(MODEL_NAME, run.model_version.id)
        lines.append(f"model: {MODEL_NAME} version {version.name}, stage {version.stage or 'none'}")
    verdict = "promoted to production" if decision.promote else "not promoted: "
    lines.append(f"gate: {verdict}{'; '.join(decision.reasons)}")
    evaluation = run.steps["evaluate_predictor"].outputs["evaluation"][0].load()
    lines += ["", evaluation.to_markdown()]
    lines += [
        "dashboard: `zenml login --local` then open the URL it prints "
        "(runs, artifacts and their lineage, the model version with its metrics)",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/training.yaml")
    args = parser.parse_args()
    run = training_pipeline.with_options(config_path=args.config)()
    if run is None:
        logger.error("the pipeline returned no run")
        return 1
    sys.stdout.write(summary(run.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
