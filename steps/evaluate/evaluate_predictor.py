from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.types import HTMLString

from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.encode.engine import load_encoder
from prime_model.evaluate.evaluation import evaluate
from prime_model.evaluate.evaluation_set import evaluation_set_of
from prime_model.evaluate.oracle import with_rewrite_oracle
from prime_model.evaluate.report import EvaluationTable
from steps._metadata import log_step_metadata


@step
def evaluate_predictor(
    predictor_checkpoint: PredictorCheckpoint,
    encoded_test: EncodedTurns,
    test_turns: pd.DataFrame,
    encoder: EncoderConfig,
) -> tuple[Annotated[EvaluationTable, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """The model vs the no-predictor baselines (and the rewrite oracle, where the turns have
    rewrites) on held-out conversations, by history length too, named by the set it scored."""
    y_encoder = load_encoder(encoder)
    table = evaluate(
        predictor_checkpoint.model, encoded_test, test_turns, y_encoder, by_history=True
    )
    table = with_rewrite_oracle(table, test_turns, encoded_test, y_encoder)
    evaluated_on = evaluation_set_of(test_turns)
    table = table.model_copy(update={"evaluation_set": evaluated_on})
    log_step_metadata(
        {
            "evaluation": table.rows,
            "best_baseline": table.best_baseline,
            "evaluation_set": evaluated_on.model_dump(mode="json"),
        },
        artifact_name="evaluation",
        infer_artifact=True,
    )
    return table, HTMLString(table.to_html())
