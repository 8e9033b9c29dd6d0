from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.types import HTMLString

from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.encode.encoding import EncodedTurns
from prime_model.evaluate.evaluation import evaluate
from prime_model.evaluate.report import EvaluationTable
from steps._metadata import log_step_metadata


@step
def evaluate_predictor(
    predictor_checkpoint: PredictorCheckpoint,
    encoded_test: EncodedTurns,
    test_turns: pd.DataFrame,
    encoder: EncoderConfig,
) -> tuple[Annotated[EvaluationTable, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """The model vs the no-predictor baselines on held-out conversations."""
    table = evaluate(
        predictor_checkpoint.model, encoded_test, test_turns, SentenceTransformerEncoder(encoder)
    )
    log_step_metadata(
        {"evaluation": table.rows, "best_baseline": table.best_baseline},
        artifact_name="evaluation",
        infer_artifact=True,
    )
    return table, HTMLString(table.to_html())
