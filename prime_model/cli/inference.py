"""``prime benchmark`` and ``prime export``: the inference half of the command line.

Registered on the parser by :func:`add_inference_commands`; heavy imports happen inside the
commands, so ``prime --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from prime_model.errors import ConfigError

if TYPE_CHECKING:
    from prime_model.config import PredictorConfig
    from prime_model.encode.encoding import EncodedTurns

logger = logging.getLogger("prime_model.cli")

BACKEND_NAMES: Final = ("eager", "compiled", "onnx", "onnx-int8")

Commands = argparse._SubParsersAction  # argparse exposes no public name for it
N = TypeVar("N", int, float)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,8,32, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive batch sizes, got {text!r}")
    return values


def _number(
    text: str, convert: Callable[[str], N], accept: Callable[[N], bool], expected: str
) -> N:
    """``convert(text)`` when ``accept`` takes it, else an argparse error naming ``expected``."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, lambda value: value >= 1, "a positive integer")


def _non_negative(text: str) -> float:
    return _number(text, float, lambda value: value >= 0, "a number >= 0")  # NaN: refused


def _tolerance(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a Recall@10 drop in [0, 1], got {value}")
    return value


def _backend_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [v for v in values if v not in BACKEND_NAMES]
    if unknown or not values:
        raise argparse.ArgumentTypeError(
            f"unknown backend(s) {unknown or text!r}; choose from {','.join(BACKEND_NAMES)}"
        )
    return values


def add_inference_commands(
    commands: Commands[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    bench = commands.add_parser(
        "benchmark",
        help="time every inference backend against eager (speedup, parity, roofline)",
        description=(
            "Build each backend for a predictor (a preset with random weights, or --checkpoint), "
            "then time them against the eager model in interleaved rounds at each batch size. "
            "Prints a Markdown table (JSON with --json); speedups are measured in the same run."
        ),
    )
    bench.add_argument(
        "--preset",
        default="default",
        metavar="minilm|default|CONFIG.yaml",
        help="predictor architecture with random weights (default: default, the seed's)",
    )
    bench.add_argument("--checkpoint", type=Path, default=None, metavar="CKPT_DIR")
    bench.add_argument(
        "--backends",
        type=_backend_list,
        default=list(BACKEND_NAMES),
        metavar="LIST",
        help=f"comma-separated, from {','.join(BACKEND_NAMES)} (default all)",
    )
    bench.add_argument("--batch-sizes", type=_int_list, default=[1, 8, 32], metavar="1,8,32")
    bench.add_argument("--context-turns", type=int, default=None, help="default: the maximum")
    bench.add_argument(
        "--repeats", type=_positive_int, default=20, help="timed calls per backend and batch size"
    )
    bench.add_argument("--budget", type=float, default=60.0, help="seconds per batch size")
    bench.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    bench.add_argument("--seed", type=int, default=0, help="weights of a preset and inputs")
    bench.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    bench.add_argument("--html", type=Path, default=None, metavar="OUT.html")
    bench.set_defaults(command=_benchmark)
    add_common(bench)

    export = commands.add_parser(
        "export",
        help="export a checkpoint to ONNX (fp32, optionally int8 with a Recall@10 check)",
        description=(
            "Write the checkpoint as one .onnx file after checking ONNX Runtime against eager. "
            "With --int8 and --data, also quantise to int8 and keep it only if its Recall@10 on "
            "the turn file is within --tolerance of fp32's."
        ),
    )
    export.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT_DIR")
    export.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx")
    export.add_argument("--opset", type=int, default=20)
    export.add_argument("--int8", type=Path, default=None, metavar="MODEL_INT8.onnx")
    export.add_argument("--data", type=Path, default=None, metavar="TURNS_FILE")
    export.add_argument("--format", default=None, help="turn file format (default: suffix)")
    export.add_argument("--target", default="passage", help="for qrecc/topiocqa/canard turn files")
    export.add_argument("--encoder", default=None, help="Y-Encoder; default: bundled MiniLM")
    export.add_argument(
        "--tolerance", type=_tolerance, default=0.01, help="allowed Recall@10 drop (0.01)"
    )
    export.add_argument(
        "--min-speedup",
        type=_non_negative,
        default=1.2,
        help="int8 must be this much faster than fp32 here (1.2; 0: keep it if it is accurate)",
    )
    export.add_argument("--json", action="store_true", help="print the results as JSON")
    export.set_defaults(command=_export)
    add_common(export)


def _benchmark(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415 - heavy imports only when the command runs

    from prime_model.bench.benchmark import run_benchmark  # noqa: PLC0415
    from prime_model.bench.presets import random_model  # noqa: PLC0415
    from prime_model.checkpoint import load_checkpoint  # noqa: PLC0415
    from prime_model.presets import predictor_config  # noqa: PLC0415

    if args.checkpoint is not None:
        model = load_checkpoint(args.checkpoint).model
        title = f"Inference benchmark: checkpoint {args.checkpoint}"
    else:
        model = random_model(predictor_config(args.preset), args.seed)
        title = f"Inference benchmark: preset {args.preset} (random weights)"
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    report = run_benchmark(
        model,
        args.backends,
        args.batch_sizes,
        context_turns=args.context_turns,
        repeats=args.repeats,
        budget_s=args.budget,
        device=device,
        title=title,
        seed=args.seed,
    )
    if args.html is not None:
        write_text(args.html, report.to_html())
        logger.info("wrote the HTML report to %s", args.html)
    sys.stdout.write(report.to_json() + "\n" if args.json else report.to_markdown())
    return 0


def encode_turn_file(
    path: Path, fmt: str | None, target: str, encoder_name: str | None, config: PredictorConfig
) -> EncodedTurns:
    """Read, encode (with the Y-Encoder) and return a turn file, checking the dims fit."""
    from prime_model.data import read_turns  # noqa: PLC0415
    from prime_model.encode.encoders import EncoderConfig, check_encoder_fits  # noqa: PLC0415
    from prime_model.encode.encoding import encode_turns  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415

    turns = read_turns(path, fmt, target=target)
    encoder = load_encoder(EncoderConfig(model=encoder_name, device="cpu"))
    check_encoder_fits(encoder, config)
    return encode_turns(turns, encoder, config.max_context_length, concat=config.concat_input)


def _export(args: argparse.Namespace) -> int:
    from prime_model.checkpoint import load_checkpoint  # noqa: PLC0415
    from prime_model.export.export import export_onnx  # noqa: PLC0415

    if args.int8 is not None and args.data is None:
        raise ConfigError("--int8 needs --data TURNS_FILE: int8 is kept only if Recall@10 holds")
    checkpoint = load_checkpoint(args.checkpoint)
    encoded = None
    if args.data is not None:
        config = checkpoint.metadata.predictor_config
        encoded = encode_turn_file(args.data, args.format, args.target, args.encoder, config)
    result = export_onnx(checkpoint, args.out, opset=args.opset, reference_inputs=encoded)
    output: dict[str, object] = {"export": result.model_dump(mode="json")}
    lines = [
        f"fp32: {result.path} ({result.bytes / 1e6:.1f} MB); parity vs eager: "
        + ", ".join(
            f"{k} max abs diff {v.max_abs_diff:.1e}, min cosine {v.min_cosine:.6f}"
            for k, v in result.parity.items()
        )
    ]
    if args.int8 is not None and encoded is not None:
        from prime_model.export.quantize import AcceptanceRule, quantize_onnx  # noqa: PLC0415

        rule = AcceptanceRule(tolerance=args.tolerance, min_speedup=args.min_speedup)
        quantized = quantize_onnx(result.path, args.int8, encoded, rule=rule)
        output["int8"] = quantized.model_dump(mode="json")
        lines.append(quantized.summary() + (f" -> {quantized.path}" if quantized.path else ""))
    sys.stdout.write(json.dumps(output, indent=2) + "\n" if args.json else "\n".join(lines) + "\n")
    return 0


def write_text(path: Path, text: str) -> None:
    from prime_model.atomic import write_text_atomic  # noqa: PLC0415
    from prime_model.errors import PrimeError  # noqa: PLC0415

    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise PrimeError(f"cannot write {path}: {exc.strerror or exc}") from None
