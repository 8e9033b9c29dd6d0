"""``prime index`` and ``prime serve``: build a retrieval index from a corpus file and serve
``POST /retrieve`` from exported files, without ZenML (``make serve`` serves the production
version from the ZenML store instead)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from prime_model.errors import ConfigError

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
    serve.set_defaults(command=_serve)
    add_common(serve)


def _index(args: argparse.Namespace) -> int:
    from prime_model.atomic import check_replaceable  # noqa: PLC0415
    from prime_model.encode.cache import cached, default_cache_dir  # noqa: PLC0415
    from prime_model.encode.encoders import (  # noqa: PLC0415
        EncoderConfig,
        SentenceTransformerEncoder,
    )
    from prime_model.retrieve.corpus import build_index, read_corpus  # noqa: PLC0415
    from prime_model.retrieve.index import IndexConfig  # noqa: PLC0415
    from prime_model.retrieve.index_files import INDEX_FILES  # noqa: PLC0415

    check_replaceable(args.out, INDEX_FILES)  # before encoding: never over a user's files
    corpus = read_corpus(args.corpus)
    loaded = SentenceTransformerEncoder(EncoderConfig(model=args.encoder))
    encoder = cached(loaded, default_cache_dir(), loaded.identity)
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
    encoder = serving_encoder(EncoderConfig(model=args.encoder))
    if args.pgvector:
        from prime_model.retrieve.pgvector import PgVectorIndex  # noqa: PLC0415

        with PgVectorIndex.connect(
            args.pgvector,
            args.table,
            dim=predictor.config.output_dim,
            encoder_name=encoder.name,
        ) as index:
            serve(Retriever(predictor, encoder, index, model_version=label), args.host, args.port)
        return 0
    retriever = Retriever(predictor, encoder, RetrievalIndex.load(args.index), model_version=label)
    serve(retriever, args.host, args.port)
    return 0
