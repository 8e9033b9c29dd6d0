"""``prime predict``: batch inference from a checkpoint or ONNX file, without ZenML.

The same readers, validation and ``predict_turns`` as the inference pipeline, for ad-hoc use.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from prime_model.errors import ConfigError
from prime_model.files import check_output_file

logger = logging.getLogger("prime_model.cli")

Commands = argparse._SubParsersAction  # argparse exposes no public name for it


def add_predict_command(
    commands: Commands[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict one embedding per turn of a turn file (Parquet out)",
        description=(
            "Read a turn file (target not needed), validate it, predict each turn's embedding "
            "with a checkpoint or exported .onnx model and write Parquet with conversation_id, "
            "turn and embedding. The Y-Encoder must be the one the model was trained with."
        ),
    )
    predict.add_argument("--model", type=Path, required=True, metavar="CKPT_DIR|MODEL.onnx")
    predict.add_argument("--data", type=Path, required=True, metavar="TURNS_FILE")
    predict.add_argument("--out", type=Path, required=True, metavar="OUT.parquet")
    predict.add_argument("--format", default=None, help="turn file format (default: suffix)")
    predict.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "eager", "compiled", "onnx", "onnx-int8"),
        help="inference backend (default auto: a .onnx runs as exported; a checkpoint runs "
        "eager on CPU, compiled on CUDA; onnx backends need a file from `prime export`)",
    )
    predict.add_argument("--encoder", default=None, help="Y-Encoder; default: bundled MiniLM")
    predict.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    predict.set_defaults(command=_predict)
    add_common(predict)


def _predict(args: argparse.Namespace) -> int:
    from prime_model.data import ValidationConfig, read_turns, validate_turns  # noqa: PLC0415
    from prime_model.encode.encoders import EncoderConfig, check_encoder_fits  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415
    from prime_model.runtime.batch_prediction import predict_turns, save_embeddings  # noqa: PLC0415
    from prime_model.runtime.loader import create_predictor  # noqa: PLC0415

    check_output_file(args.out, "--out embeddings file", ConfigError)  # before hours of work
    turns = read_turns(args.data, args.format, require_target=False)
    validate_turns(
        turns,
        ValidationConfig(min_rows=1, min_conversations=1, require_target=False),
        source=str(args.data),
    )
    predictor = create_predictor(args.model, args.backend, args.device)
    config = predictor.config
    encoder = load_encoder(EncoderConfig(model=args.encoder, device=args.device))
    check_encoder_fits(encoder, config)
    embeddings = predict_turns(turns, predictor, encoder)
    path = save_embeddings(embeddings, args.out)
    logger.info("wrote %d embeddings (%s backend) to %s", len(embeddings), predictor.backend, path)
    return 0
