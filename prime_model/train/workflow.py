"""validate -> split -> encode -> train -> evaluate in one call: the pipeline, no orchestrator.

``prime train`` (and ``make run``) use it; the ZenML pipeline runs the same library functions as
separate, cached steps.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prime_model.atomic import write_text_atomic
from prime_model.checkpoint import load_checkpoint
from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.data.split import split_by_conversation
from prime_model.data.validation import ValidationConfig, ValidationReport, validate_turns
from prime_model.encode.encoders import YEncoder, check_encoder_fits
from prime_model.encode.encoding import encode_splits
from prime_model.errors import ConfigError, TurnValidationError
from prime_model.evaluate.evaluation import evaluate
from prime_model.evaluate.report import EvaluationTable
from prime_model.train.training import TrainingResult, train_predictor

logger = logging.getLogger(__name__)


def _write_report(path: Path, text: str) -> Path:
    """``write_text_atomic`` with a typed error: a full disk must not end a run in ``OSError``."""
    try:
        return write_text_atomic(path, text)
    except OSError as exc:
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
        raise ConfigError(
            f"cannot write report {path}: {reason or exc}; expected a writable output directory "
            "with free space (any earlier version of the report is unchanged)"
        ) from None


@dataclass(frozen=True)
class RunResult:
    validation: ValidationReport
    training: TrainingResult
    evaluation: EvaluationTable
    reports: dict[str, Path]


def train_and_evaluate(
    turns: pd.DataFrame,
    encoder: YEncoder,
    predictor_config: PredictorConfig,
    training_config: TrainingConfig,
    output_dir: str | Path,
    *,
    validation_config: ValidationConfig | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    resume: bool = False,
) -> RunResult:
    """Train on ``turns`` and score the best model on the held-out test conversations.

    ``test_fraction=0`` trains on more turns and scores on the validation split instead.

    Writes ``validation.html``, ``evaluation.html`` and ``evaluation.md`` beside the model. Bad
    data stops the run after its validation report is written.
    """
    output_dir = Path(output_dir)
    if val_fraction <= 0:
        raise ConfigError(
            f"val_fraction={val_fraction}: training needs validation conversations to choose "
            "the best epoch and to stop early; use e.g. 0.1 (test_fraction may be 0)"
        )
    check_encoder_fits(encoder, predictor_config)
    validation_config = validation_config or ValidationConfig(
        max_context_length=predictor_config.max_context_length
    )
    validation_html = output_dir / "validation.html"
    try:
        report = validate_turns(turns, validation_config)
    except TurnValidationError as exc:
        _write_report(validation_html, exc.report.to_html())  # kept for the user to read
        raise
    reports = {"validation": _write_report(validation_html, report.to_html())}
    splits = split_by_conversation(turns, val_fraction, test_fraction, split_seed)
    logger.info("split by conversation: %s turns", splits.sizes())
    judged = "test" if len(splits.test) else "val"
    frames = {"train": splits.train, "val": splits.val, judged: getattr(splits, judged)}
    encoded = encode_splits(
        frames,
        encoder,
        predictor_config.max_context_length,
        concat=predictor_config.concat_input,
    )
    result = train_predictor(
        encoded["train"], encoded["val"], predictor_config, training_config, output_dir,
        resume=resume, metadata={"splits": splits.sizes()},
    )  # fmt: skip
    model = load_checkpoint(result.checkpoint_dir).model
    if judged == "val":
        logger.warning(
            "test_fraction=0: scoring on the validation split, which chose the checkpoint; "
            "judge the model on other data with `prime evaluate`"
        )
    table = evaluate(model, encoded[judged], frames[judged], encoder)
    reports["evaluation"] = _write_report(output_dir / "evaluation.html", table.to_html())
    reports["evaluation_md"] = _write_report(output_dir / "evaluation.md", table.to_markdown())
    return RunResult(report, result, table, reports)
