"""The ``prime`` command line: ``prime train`` trains and evaluates on sample or user data;
``prime evaluate`` scores a checkpoint (or an exported ``.onnx``) against the baselines;
``prime benchmark`` and ``prime export`` live in :mod:`prime_model.cli.inference`.

torch, pandas and sentence-transformers are imported inside the commands, so ``prime --help``
answers at once. Errors PRIME raises on purpose end the command with ``error: ...`` on stderr and
exit code 2; ``--debug`` lets them propagate with their traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from prime_model.cli.inference import add_inference_commands, write_text
from prime_model.cli.predict import add_predict_command
from prime_model.cli.serve import add_serve_commands
from prime_model.cli.train import FORMATS, TARGETS, add_train_command
from prime_model.errors import ConfigError, PrimeError
from prime_model.files import check_output_file

if TYPE_CHECKING:
    from prime_model.model import EmbeddingPredictor

logger = logging.getLogger("prime_model.cli")

EXIT_ERROR: Final = 2


def main(argv: list[str] | None = None) -> int:
    """Run the command named in ``argv`` (default: sys.argv[1:]) and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    _configure_logging(quiet=args.quiet)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except PrimeError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prime", description="PRIME: an embedding predictor for conversational retrieval."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    evaluate = commands.add_parser(
        "evaluate",
        help="score a checkpoint against the no-predictor baselines on a turn file",
        description=(
            "Encode the turns with the Y-Encoder, then compare the checkpoint's predictions "
            "with query-only, concat-text and mean-of-turns retrieval on the corpus of the "
            "turns' targets. Prints a Markdown table (or JSON with --json)."
        ),
    )
    evaluate.add_argument(
        "--model",
        required=True,
        type=Path,
        metavar="CKPT_DIR|MODEL.onnx",
        help="checkpoint directory written by save_checkpoint, or a file from prime export",
    )
    evaluate.add_argument(
        "--backend",
        default=None,
        choices=("eager", "compiled", "onnx", "onnx-int8"),
        help="inference backend (default: eager for a checkpoint, the file's own for .onnx)",
    )
    evaluate.add_argument(
        "--data", required=True, type=Path, metavar="TURNS_FILE", help="turn file to evaluate on"
    )
    evaluate.add_argument(
        "--format",
        default=None,
        metavar="FORMAT",
        help=f"one of {FORMATS}; default: from the file suffix",
    )
    evaluate.add_argument(
        "--target",
        default="passage",
        metavar="TARGET",
        help=f"what qrecc/topiocqa/canard turns retrieve: {TARGETS} (default passage)",
    )
    evaluate.add_argument(
        "--encoder",
        default=None,
        metavar="MODEL_PATH_OR_NAME",
        help="sentence-transformers Y-Encoder; default: bundled MiniLM",
    )
    evaluate.add_argument(
        "--device",
        default="auto",
        help="'auto' (CUDA when available), 'cpu', 'cuda', ... (default auto)",
    )
    evaluate.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="embedding cache: each text is encoded once per encoder across runs "
        "(default $PRIME_CACHE_DIR or ~/.cache/prime/embeddings)",
    )
    evaluate.add_argument("--no-cache", action="store_true", help="encode everything afresh")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    evaluate.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="OUT.html",
        help="also write a self-contained HTML report there",
    )
    evaluate.set_defaults(command=_evaluate)
    _add_common_options(evaluate)
    add_train_command(commands, _add_common_options)
    add_inference_commands(commands, _add_common_options)
    add_predict_command(commands, _add_common_options)
    add_serve_commands(commands, _add_common_options)
    return parser


def _add_common_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    command.add_argument("--quiet", action="store_true", help="log warnings only")


def _configure_logging(*, quiet: bool) -> None:
    """Progress goes to stderr, so stdout holds only the result."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    logging.getLogger("prime_model").setLevel(logging.WARNING if quiet else logging.INFO)


def _evaluate(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415 - heavy imports only when the command runs

    from prime_model.data import read_turns  # noqa: PLC0415
    from prime_model.encode.cache import cached, default_cache_dir  # noqa: PLC0415
    from prime_model.encode.encoders import EncoderConfig, check_encoder_fits  # noqa: PLC0415
    from prime_model.encode.encoding import encode_turns  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415
    from prime_model.evaluate.evaluation import evaluate  # noqa: PLC0415

    # cheapest checks first: a typo in a path must not wait for the encoder to load
    if args.html is not None:
        check_output_file(args.html, "--html report file", ConfigError)
    turns = read_turns(args.data, args.format, target=args.target)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _load_for_evaluation(args.model, args.backend, device)
    loaded = load_encoder(EncoderConfig(model=args.encoder, device=device))
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    encoder = cached(loaded, cache_dir, loaded.identity)
    check_encoder_fits(encoder, model.config)
    n_max = model.config.max_context_length
    encoded = encode_turns(turns, encoder, n_max, concat=model.config.concat_input)
    table = evaluate(model, encoded, turns, encoder, max_context_length=n_max)
    if args.html is not None:
        write_text(args.html, table.to_html())
        logger.info("wrote the HTML report to %s", args.html)
    if args.json:
        sys.stdout.write(json.dumps(table.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(table.to_markdown())
    return 0


def _load_for_evaluation(path: Path, backend: str | None, device: str) -> EmbeddingPredictor:
    """The checkpoint's model (eager), or any backend behind the model's interface."""
    from prime_model.checkpoint import load_checkpoint  # noqa: PLC0415
    from prime_model.runtime.inference import PredictorModule  # noqa: PLC0415
    from prime_model.runtime.loader import create_predictor  # noqa: PLC0415

    if path.is_file() or path.suffix == ".onnx":
        return PredictorModule(create_predictor(path, backend or "auto", "cpu"))
    checkpoint = load_checkpoint(path, device=device)
    if backend in (None, "eager"):
        return checkpoint.model
    return PredictorModule(create_predictor(checkpoint, backend, device))
