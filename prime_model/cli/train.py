"""``prime train``: validate -> split -> encode -> train -> evaluate on a folder, no orchestrator.

The ZenML training pipeline is the orchestration; this command is its local counterpart and
calls the very library functions its steps call (``check_turns``/``validate_turns``,
``split_by_conversation``, ``encode_splits``, ``train_predictor``, ``evaluate``), adding only
what a folder needs: HTML/Markdown reports beside the model, and scoring on the validation
split when there is no test split.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from prime_model.atomic import write_error, write_text_atomic
from prime_model.errors import ConfigError
from prime_model.files import check_output_dir
from prime_model.presets import (
    PREDICTOR_PRESETS,
    TRAINING_PRESETS,
    predictor_config,
    training_config,
)

if TYPE_CHECKING:
    import pandas as pd

    from prime_model.config import PredictorConfig, TrainingConfig
    from prime_model.data.validation import ValidationConfig, ValidationReport
    from prime_model.encode.encoders import YEncoder
    from prime_model.evaluate.report import EvaluationTable
    from prime_model.train.training import TrainingResult

logger = logging.getLogger("prime_model.cli")

FORMATS: Final = "jsonl, parquet, csv (each optionally .gz), qrecc, topiocqa, canard"
TARGETS: Final = "passage, answer, rewrite"


def add_train_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    train = commands.add_parser(
        "train",
        help="validate, split, encode, train and evaluate (default: the generated sample data)",
        description=(
            "Train a predictor on the generated sample conversations (--data sample) or a turn "
            "file, then evaluate the best model on held-out conversations against the "
            "baselines. Writes the model, Lightning logs and HTML reports to --out."
        ),
    )
    train.add_argument("--data", default="sample", help="'sample' or a turn file (default sample)")
    train.add_argument("--format", default=None, help=f"for a turn file: {FORMATS}")
    train.add_argument("--target", default="passage", help=f"for qrecc/topiocqa/canard: {TARGETS}")
    train.add_argument("--conversations", type=int, default=2000, help="sample size (2000)")
    train.add_argument("--seed", type=int, default=0, help="sample and split seed (0)")
    train.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="conversations held out to pick the best epoch (0.1)",
    )
    train.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="conversations held out for the final table (0.1); 0: score on validation",
    )
    train.add_argument(
        "--predictor",
        default="minilm",
        metavar="PRESET|YAML",
        help=f"predictor preset {PREDICTOR_PRESETS} or a YAML file (default minilm)",
    )
    train.add_argument(
        "--training",
        default="default",
        metavar="PRESET|YAML",
        help=f"training preset {TRAINING_PRESETS} or a YAML file (default default)",
    )
    train.add_argument("--encoder", default=None, help="Y-Encoder; default: bundled MiniLM")
    train.add_argument("--device", default="auto", help="for the Y-Encoder (default auto)")
    train.add_argument("--out", type=Path, default=Path("outputs/run"), help="output folder")
    train.add_argument("--resume", action="store_true", help="continue from --out's last.ckpt")
    train.set_defaults(command=_train)
    add_common_options(train)


def _train(args: argparse.Namespace) -> int:
    from prime_model.data import SampleConfig, ValidationConfig, generate_sample, read_turns  # noqa: PLC0415
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415

    check_output_dir(args.out, "--out folder", ConfigError)  # before any training
    predictor = predictor_config(args.predictor)
    training = training_config(args.training)
    sample = args.data == "sample"
    if sample:
        turns = generate_sample(SampleConfig(num_conversations=args.conversations, seed=args.seed))
    else:
        turns = read_turns(args.data, args.format, target=args.target)
    encoder = load_encoder(EncoderConfig(model=args.encoder, device=args.device))
    validation = ValidationConfig(
        max_context_length=predictor.max_context_length, history_matches_turn=sample
    )
    result = train_and_evaluate(
        turns, encoder, predictor, training, args.out,
        validation_config=validation, split_seed=args.seed, resume=args.resume,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction,
    )  # fmt: skip
    for name, path in result.reports.items():
        logger.info("%s report: %s", name, path)
    logger.info("model: %s", result.training.checkpoint_dir)
    sys.stdout.write(result.evaluation.to_markdown())
    return 0


def _write_report(path: Path, text: str) -> Path:
    """``write_text_atomic`` with a typed error: a full disk is a :class:`WriteError`, as
    everywhere, not a bare ``OSError`` at the end of a run."""
    try:
        return write_text_atomic(path, text)
    except OSError as exc:
        raise write_error(path, exc) from None


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
    # heavy imports only when the command runs, so `prime --help` answers at once
    from prime_model.data.schema import without_extra_targets  # noqa: PLC0415
    from prime_model.data.split import split_by_conversation  # noqa: PLC0415
    from prime_model.data.validation import ValidationConfig, validate_turns  # noqa: PLC0415
    from prime_model.encode.encoders import check_encoder_fits  # noqa: PLC0415
    from prime_model.encode.encoding import encode_splits  # noqa: PLC0415
    from prime_model.errors import TurnValidationError  # noqa: PLC0415
    from prime_model.evaluate.evaluation import evaluate  # noqa: PLC0415
    from prime_model.train.training import train_predictor  # noqa: PLC0415

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
    splits = split_by_conversation(
        without_extra_targets(turns), val_fraction, test_fraction, split_seed
    )  # extra targets train only through a pipeline's files sources
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
    model = result.checkpoint.model  # in memory: written once, to --out/model
    if judged == "val":
        logger.warning(
            "test_fraction=0: scoring on the validation split, which chose the checkpoint; "
            "judge the model on other data with `prime evaluate`"
        )
    table = evaluate(model, encoded[judged], frames[judged], encoder)
    reports["evaluation"] = _write_report(output_dir / "evaluation.html", table.to_html())
    reports["evaluation_md"] = _write_report(output_dir / "evaluation.md", table.to_markdown())
    return RunResult(report, result, table, reports)
