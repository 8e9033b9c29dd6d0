"""``make serve``: the production model version answers ``POST /retrieve`` on this machine.

The same app as ``prime serve``, loaded from the ZenML store (the production version's backend,
Y-Encoder config and retrieval_index, or ``--corpus FILE`` indexed with that Y-Encoder) instead
of files. No pipeline run per request: for tracked
runs per request deploy ``serving_pipeline`` with ZenML instead (README, "Serving").
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipelines.serving import load_production_retriever
from prime_model.cli.serve import DEFAULT_PORT, add_serving_options, serving_config
from prime_model.errors import PrimeError
from prime_model.http.app import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        metavar="CORPUS_FILE",
        help="serve over this corpus (jsonl/json/parquet/csv with id and text, as `prime index` "
        "reads) instead of the version's retrieval_index",
    )
    add_serving_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:  # a busy port and a bad corpus file are PrimeErrors
        retriever = load_production_retriever(args.corpus, serving_config(args))
        serve(retriever, args.host, args.port)
    except PrimeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
