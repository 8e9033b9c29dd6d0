"""``prime index`` and ``prime serve``: build a retrieval index from a corpus file and serve
``POST /retrieve`` from exported files, without ZenML (``make serve`` serves the production
version from the ZenML store instead)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from prime_model.errors import ConfigError

if TYPE_CHECKING:
    from prime_model.http.serving_config import ServingConfig

logger = logging.getLogger("prime_model.cli")

Commands = argparse._SubParsersAction  # argparse exposes no public name for it
DEFAULT_PORT: Final = 8080


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port in 1..65535, got {text!r}")
    return int(text)


def add_serve_commands(
    commands: Commands[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    index = commands.add_parser(
        "index",
        help="encode a corpus file (id, text) with the Y-Encoder and save a retrieval index",
        description=(
            "Read a corpus file (jsonl/json/parquet/csv with id and text), encode every text "
            "with the Y-Encoder and write an index directory that `prime serve --index` loads."
        ),
    )
    index.add_argument("--corpus", type=Path, required=True, metavar="CORPUS_FILE")
    index.add_argument("--out", type=Path, required=True, metavar="INDEX_DIR")
    index.add_argument("--kind", choices=("hnsw", "exact"), default="hnsw")
    index.add_argument("--encoder", default=None, help="Y-Encoder; default: bundled MiniLM")
    index.add_argument(
        "--engine",
        choices=("torch", "onnx"),
        default="onnx",
        help="Y-Encoder engine (default onnx: the batch fast path, about 2x torch on a CPU, the "
        "same vectors; torch: the reference)",
    )
    _add_precision(index, "the Y-Encoder's vectors; `prime serve --precision` must match")
    index.set_defaults(command=_index)
    add_common(index)

    serve = commands.add_parser(
        "serve",
        help="serve POST /retrieve: a conversation in, top-k corpus items out",
        description=(
            "Load an exported model (.onnx from `prime export` or the pipeline's onnx artifact) "
            "and an index directory, then answer POST /retrieve with JSON "
            '{"history": [...], "query": "...", "top_k": 10}. GET /health, GET /info.'
        ),
    )
    serve.add_argument("--model", type=Path, required=True, metavar="MODEL.onnx")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path, metavar="INDEX_DIR", help="from `prime index`")
    where.add_argument(
        "--pgvector", metavar="DSN", help="a PostgreSQL + pgvector table instead (see --table)"
    )
    serve.add_argument("--table", default="prime_corpus", help="with --pgvector: the table")
    serve.add_argument("--encoder", default=None, help="Y-Encoder; default: bundled MiniLM")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT)
    serve.add_argument("--model-version", default=None, help="label returned with each answer")
    add_serving_options(serve)
    serve.set_defaults(command=_serve)
    add_common(serve)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _add_precision(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help=what)


def add_serving_options(serve: argparse.ArgumentParser) -> None:
    """The ``ServingConfig`` knobs (docs/serving.md): precision, token caps, conversations,
    batching; :func:`serving_config` reads them back (``prime serve``, ``serve.py``)."""
    _add_precision(serve, "the Y-Encoder's ONNX graph; the index must be built with the same")
    serve.add_argument(
        "--history-max-tokens",
        type=_positive,
        default=None,
        metavar="N",
        help="encode only each history entry's first N tokens (default: off)",
    )
    serve.add_argument(
        "--concat-max-tokens",
        type=_positive,
        default=None,
        metavar="N",
        help="concat-input models: keep history + query's last N tokens (default: the "
        "Y-Encoder's limit, as in training)",
    )
    serve.add_argument(
        "--conversation-ttl",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="forget a registered conversation untouched this long (default: 3600)",
    )
    serve.add_argument(
        "--max-conversations",
        type=_positive,
        default=None,
        metavar="N",
        help="registered conversations held; the least recently used go (default: 10000)",
    )
    serve.add_argument(
        "--no-micro-batching",
        action="store_true",
        help="encode each request's texts in its own call (default: concurrent ones merged)",
    )


def serving_config(args: argparse.Namespace) -> ServingConfig:
    """The :class:`ServingConfig` the flags name (unset flags keep its defaults)."""
    from prime_model.http.serving_config import ServingConfig  # noqa: PLC0415

    given = {
        "history_max_tokens": args.history_max_tokens,
        "concat_max_tokens": args.concat_max_tokens,
        "conversation_ttl_s": args.conversation_ttl,
        "max_conversations": args.max_conversations,
        "precision": args.precision,
    }
    fields = {key: value for key, value in given.items() if value is not None}
    return ServingConfig(**fields, micro_batching=not args.no_micro_batching)


def _index(args: argparse.Namespace) -> int:
    from prime_model.atomic import check_replaceable  # noqa: PLC0415
    from prime_model.encode.cache import cached, default_cache_dir  # noqa: PLC0415
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415
    from prime_model.encode.progress import ProgressEncoder  # noqa: PLC0415
    from prime_model.retrieve.corpus import build_index, read_corpus  # noqa: PLC0415
    from prime_model.retrieve.index import IndexConfig  # noqa: PLC0415
    from prime_model.retrieve.index_files import INDEX_FILES  # noqa: PLC0415

    check_replaceable(args.out, INDEX_FILES)  # before encoding: never over a user's files
    corpus = read_corpus(args.corpus)
    config = EncoderConfig(model=args.encoder, engine=args.engine, precision=args.precision)
    loaded = load_encoder(config)
    encoder = cached(ProgressEncoder(loaded), default_cache_dir(), loaded.identity)
    index = build_index(corpus, encoder, IndexConfig(kind=args.kind))
    logger.info("wrote an index of %d items to %s", len(index), index.save(args.out))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.http.app import SERVING_THREADS, serve  # noqa: PLC0415
    from prime_model.http.service import Retriever, serving_encoder  # noqa: PLC0415
    from prime_model.retrieve.index import RetrievalIndex  # noqa: PLC0415
    from prime_model.runtime.onnx_runtime import OnnxPredictor  # noqa: PLC0415

    if args.model.suffix != ".onnx":
        raise ConfigError(f"--model {args.model}: expected an exported .onnx file")
    predictor = OnnxPredictor.from_file(args.model, threads=SERVING_THREADS)
    label = args.model_version or f"weights:{predictor.metadata.weights_sha256[:12]}"
    config = serving_config(args)
    encoder = serving_encoder(EncoderConfig(model=args.encoder), config)
    if args.pgvector:
        from prime_model.retrieve.pgvector import PgVectorIndex  # noqa: PLC0415

        with PgVectorIndex.connect(
            args.pgvector,
            args.table,
            dim=predictor.config.output_dim,
            encoder_name=encoder.name,
        ) as index:
            retriever = Retriever(predictor, encoder, index, model_version=label, config=config)
            serve(retriever, args.host, args.port)
        return 0
    loaded = RetrievalIndex.load(args.index)
    retriever = Retriever(predictor, encoder, loaded, model_version=label, config=config)
    serve(retriever, args.host, args.port)
    return 0
