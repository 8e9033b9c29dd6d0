"""Encoder speed-ups judged by retrieval: each variant against the torch fp32 reference.

Issue 28 keeps a speed-up only if retrieval does not move: model MRR (and Recall@10) on every
judged set of benchmarks/real_data.py within 0.005 of the reference, never cosine alone. The
trained real-data predictor is fixed; only how its inputs are encoded changes:

- ``reference``: SentenceTransformerEncoder (torch fp32), through the embedding cache;
- ``history-head:N`` / ``system-head:N``: every history entry (or only system turns) cut to its
  first N tokens before encoding (the concat text then joins the cut entries), corpus unchanged;
- ``concat-tail:N``: history + query as one text cut to its last N tokens ([CLS]/[SEP]
  included, as the 256 of today), instead of 256;
- ``onnx-fp32``, ``onnx-int8``: the ONNX Runtime engine re-encodes everything (corpus included);
  ``onnx-int8-fp32-corpus``: queries, history and concat int8, corpus vectors the reference's.

    .venv/bin/python -m benchmarks.encoder_quality --data-dir ../shared/data \\
        --model /tmp/m/real-v6/model --out outputs/encoder-quality
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from benchmarks.encoder_savings import encode_savings, timing_encoder
from benchmarks.real_data import _first_conversations, load_sets
from prime_model import load_checkpoint
from prime_model.atomic import write_text_atomic
from prime_model.data.schema import ROLE_COLUMN
from prime_model.encode.cache import cached, default_cache_dir
from prime_model.encode.encoders import SentenceTransformerEncoder, YEncoder
from prime_model.encode.encoding import EncodedTurns, encode_splits
from prime_model.encode.token_caps import keep_heads, keep_tails
from prime_model.errors import ConfigError, PrimeError
from prime_model.evaluate.evaluation import evaluate
from prime_model.model import EmbeddingPredictor

logger = logging.getLogger("benchmarks.encoder_quality")
TOLERANCE: Final = 0.005  # issue 28: MRR / Recall@10 within this of the reference
N_MAX: Final = 10
JUDGED: Final = (
    "canard-dev (rewrite)",
    "canard-dev (answer)",
    "topiocqa held-out (answer)",
    "doc2dial held-out (paragraph)",
    "doc2dial held-out (span)",
)
KINDS: Final = {
    "reference": False, "history-head": True, "system-head": True, "concat-tail": True,
    "onnx-fp32": False, "onnx-int8": False, "onnx-int8-fp32-corpus": False,
}  # fmt: skip  # kind -> takes a token count
DEFAULT_VARIANTS: Final = (
    "concat-tail:128", "concat-tail:64",
    "history-head:128", "history-head:64", "history-head:32",
    "system-head:128", "system-head:64", "system-head:32",
    "onnx-int8", "onnx-int8-fp32-corpus", "onnx-fp32",
)  # fmt: skip
Frames = dict[str, pd.DataFrame]


@dataclasses.dataclass(frozen=True)
class Variant:
    kind: str
    tokens: int | None = None

    @property
    def name(self) -> str:
        return self.kind if self.tokens is None else f"{self.kind}:{self.tokens}"


def parse_variant(spec: str) -> Variant:
    """``kind`` or ``kind:N`` (N >= 1 for the token caps), else a ConfigError naming the kinds."""
    kind, _, count = spec.strip().partition(":")
    if kind not in KINDS:
        raise ConfigError(f"unknown variant {spec!r}; expected one of {sorted(KINDS)}")
    if not KINDS[kind]:
        if count:
            raise ConfigError(f"variant {kind!r} takes no token count, got {spec!r}")
        return Variant(kind)
    if not (count.isascii() and count.isdigit() and int(count) >= 1):
        raise ConfigError(f"variant {spec!r} needs a token count >= 1, e.g. {kind}:64")
    return Variant(kind, int(count))


def cap_histories(frames: Frames, tokenizer: Any, max_tokens: int, system_only: bool) -> Frames:
    """Every history entry (or only those whose role is system) cut to its first ``max_tokens``
    tokens; each unique text is cut once. Frames without roles are left whole by system_only."""
    out: Frames = {}
    for name, frame in frames.items():
        roles = frame[ROLE_COLUMN] if ROLE_COLUMN in frame.columns else [None] * len(frame)
        picked = [
            [text for i, text in enumerate(h) if not system_only or _is_system(r, i)]
            for h, r in zip(frame["history"], roles, strict=True)
        ]
        unique = list(dict.fromkeys(t for texts in picked for t in texts))
        cut = dict(zip(unique, keep_heads(unique, tokenizer, max_tokens), strict=True))
        capped = frame.copy()
        capped["history"] = [
            [cut[t] if not system_only or _is_system(r, i) else t for i, t in enumerate(h)]
            for h, r in zip(frame["history"], roles, strict=True)
        ]
        out[name] = capped
    return out


def entries_cut(before: Frames, after: Frames) -> dict[str, float]:
    """Per set, the share of history entries a cap changed: a cap that cuts nothing is not
    judged by the set, whatever its deltas."""
    out = {}
    for name, frame in before.items():
        pairs = [
            (a, b)
            for h, g in zip(frame["history"], after[name]["history"], strict=True)
            for a, b in zip(h, g, strict=True)
        ]
        out[name] = sum(a != b for a, b in pairs) / max(len(pairs), 1)
    return out


def _is_system(roles: Sequence[str] | None, i: int) -> bool:
    return roles is not None and i < len(roles) and roles[i] == "system"


class ConcatTail:
    """``inner`` whose history + query text keeps its last ``max_seq_length`` tokens (specials
    included) instead of the encoder's limit: encode_splits asks ``fit_to_limit`` for the cut."""

    def __init__(self, inner: YEncoder, tokenizer: Any, max_seq_length: int) -> None:
        self.inner, self.tokenizer, self.max_seq_length = inner, tokenizer, max_seq_length
        self.name, self.dim = inner.name, inner.dim

    def encode(self, texts: Sequence[str]) -> Any:
        return self.inner.encode(texts)

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        return keep_tails(texts, self.tokenizer, self.max_seq_length)


def tokenizer_of(encoder: Any) -> Any:
    """The public ``tokenizer`` where the encoder has one, else sentence-transformers' own."""
    return getattr(encoder, "tokenizer", None) or encoder._model.tokenizer


def onnx_encoder(precision: str) -> Any:
    """The ONNX engine (issue 28, encode/engine.py); a ConfigError while it is not there."""
    try:
        from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
        from prime_model.encode.engine import load_encoder  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(f"the ONNX encoder engine is not available: {exc}") from None
    return load_encoder(EncoderConfig(engine="onnx", precision=precision))


def encode_variant(
    variant: Variant,
    frames: Frames,
    reference: YEncoder,
    reference_encoded: Mapping[str, EncodedTurns],
    cache_dir: Path | None,
    *,
    make_onnx: Callable[[str], Any] | None = None,
) -> tuple[Frames, YEncoder, dict[str, EncodedTurns]]:
    """The frames a variant evaluates on, its encoder and its encoded sets."""
    tokenizer = tokenizer_of(getattr(reference, "inner", reference))
    encoder: YEncoder = reference
    if variant.kind in ("history-head", "system-head"):
        system_only = variant.kind == "system-head"
        frames = cap_histories(frames, tokenizer, variant.tokens or 0, system_only)
    elif variant.kind == "concat-tail":
        encoder = ConcatTail(reference, tokenizer, variant.tokens or 0)
    elif variant.kind.startswith("onnx"):
        engine = (make_onnx or onnx_encoder)("fp32" if variant.kind == "onnx-fp32" else "int8")
        # fp32 ONNX shares torch's identity: its own cache key, or the cache hands back torch's
        identity = engine.identity + ("|engine=onnx" if variant.kind == "onnx-fp32" else "")
        encoder = cached(engine, cache_dir, identity)
    if variant.kind == "reference":
        return frames, encoder, dict(reference_encoded)
    encoded = encode_splits(frames, encoder, N_MAX, concat=True)
    if variant.kind == "onnx-int8-fp32-corpus":  # the index stays fp32: same rows, same order
        encoded = {
            name: dataclasses.replace(
                e, corpus=reference_encoded[name].corpus, target=reference_encoded[name].target
            )
            for name, e in encoded.items()
        }
    return frames, encoder, encoded


def judge(
    model: EmbeddingPredictor, frames: Frames, encoder: YEncoder, encoded: Mapping[str, Any]
) -> dict[str, dict[str, float]]:
    """Model MRR and Recall@10 per judged set (evaluate, as benchmarks/real_data.py calls it)."""
    out: dict[str, dict[str, float]] = {}
    for name, frame in frames.items():
        table = evaluate(model, encoded[name], frame, encoder, by_history=True)
        row = table.rows["model"]
        out[name] = {"mrr": float(row["mrr"]), "recall@10": float(row["recall@10"])}
    return out


def with_deltas(
    scores: dict[str, dict[str, float]], reference: dict[str, dict[str, float]]
) -> dict[str, Any]:
    sets = {
        name: {**s, "d_mrr": s["mrr"] - reference[name]["mrr"],
               "d_recall@10": s["recall@10"] - reference[name]["recall@10"]}
        for name, s in scores.items()
    }  # fmt: skip
    worst = min(min(s["d_mrr"], s["d_recall@10"]) for s in sets.values())
    within = all(abs(s["d_mrr"]) <= TOLERANCE for s in sets.values())
    return {"sets": sets, "worst_delta": worst, "within": within, "keep": worst >= -TOLERANCE}


def to_markdown(results: dict[str, Any]) -> str:
    names = list(results["variants"]["reference"]["sets"])
    head = "| variant | " + " | ".join(f"{n} MRR | ΔMRR | R@10" for n in names)
    lines = [
        head + " | worst Δ | keep | s |",
        "|---|" + "---:|---:|---:|" * len(names) + "---:|---|---:|",
    ]
    for variant, row in results["variants"].items():
        cells = " | ".join(
            f"{s['mrr']:.4f} | {s['d_mrr']:+.4f} | {s['recall@10']:.4f}"
            for s in row["sets"].values()
        )
        keep = "yes" if row["keep"] else "**no**"
        lines.append(
            f"| {variant} | {cells} | {row['worst_delta']:+.4f} | {keep} | {row['seconds']:.0f} |"
        )
    lines += ["", f"CPU: {results['cpu']}; turns per set: {results['turns']}"]
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    """lscpu's model name (what every number in docs/benchmarks.md names)."""
    lscpu = shutil.which("lscpu")
    if lscpu is None:
        return platform.processor() or "unknown"
    try:
        out = subprocess.run([lscpu], capture_output=True, text=True, check=False).stdout  # noqa: S603
    except OSError:
        return platform.processor() or "unknown"
    line = next((s for s in out.splitlines() if s.startswith("Model name")), "")
    return line.partition(":")[2].strip() or "unknown"


def run(
    args: argparse.Namespace, on_variant: Callable[[dict[str, Any]], object] | None = None
) -> dict[str, Any]:
    """Reference first, then each variant; ``on_variant`` sees the results so far after each."""
    started = time.perf_counter()
    variants = [parse_variant(s) for s in args.variants.split(",") if s.strip()]
    sets = load_sets(args.data_dir, args.seed, topiocqa_share=0.5, max_train_chars=600)
    frames = {name: _first_conversations(sets[name], args.max_eval_turns) for name in JUDGED}
    logger.info("turns per set: %s", {n: len(f) for n, f in frames.items()})
    model = load_checkpoint(args.model).model.eval()
    torch_encoder = SentenceTransformerEncoder()
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    reference = cached(torch_encoder, cache_dir, torch_encoder.identity)
    clock = time.perf_counter()
    reference_encoded = encode_splits(frames, reference, N_MAX, concat=True)
    base = judge(model, frames, reference, reference_encoded)
    rows = {"reference": {**with_deltas(base, base), "seconds": time.perf_counter() - clock}}
    for variant in variants:
        if variant.kind == "reference":
            continue
        clock = time.perf_counter()
        try:
            v_frames, encoder, encoded = encode_variant(
                variant, frames, reference, reference_encoded, cache_dir
            )
        except PrimeError as exc:  # the ONNX engine missing or failing its parity check
            logger.warning("variant %s skipped: %s", variant.name, exc)
            continue
        scores = judge(model, v_frames, encoder, encoded)
        rows[variant.name] = {**with_deltas(scores, base), "seconds": time.perf_counter() - clock}
        if v_frames is not frames:
            rows[variant.name]["entries_cut"] = entries_cut(frames, v_frames)
        logger.info("%s: %s", variant.name, rows[variant.name])
        if on_variant is not None:
            on_variant(_results(args, rows, frames, started))
    results = _results(args, rows, frames, started)
    caps = [int(c) for c in args.savings.split(",") if c.strip()]
    if caps:
        results["savings"] = encode_savings(
            frames["doc2dial held-out (paragraph)"], timing_encoder(torch_encoder),
            tokenizer_of(torch_encoder), caps,
        )  # fmt: skip
    return results


def _results(
    args: argparse.Namespace, rows: dict[str, Any], frames: Frames, started: float
) -> dict[str, Any]:
    return {
        "model": str(args.model),
        "variants": rows,
        "turns": {n: len(f) for n, f in frames.items()},
        "max_eval_turns": args.max_eval_turns,
        "tolerance": TOLERANCE,
        "cpu": cpu_model(),
        "seconds_total": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds canard/, topiocqa/..")
    parser.add_argument("--model", type=Path, required=True, help="the real-data checkpoint dir")
    parser.add_argument("--out", type=Path, required=True, help="the JSON and Markdown go here")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated")
    parser.add_argument("--max-eval-turns", type=int, default=None, help="a quick slice per set")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache")
    parser.add_argument("--no-cache", action="store_true", help="encode everything afresh")
    parser.add_argument("--seed", type=int, default=0, help="the split seed (real_data's)")
    parser.add_argument(
        "--savings", default="", help="caps (e.g. 32,64,128) to time on doc2dial, one text a call"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = run(args, on_variant=lambda partial: _write(args.out, partial))
    sys.stdout.write(_write(args.out, results))
    return 0


def _write(out: Path, results: dict[str, Any]) -> str:
    """Both files, rewritten after every variant, so a long run leaves its rows as it goes."""
    write_text_atomic(out / "encoder_quality.json", json.dumps(results, indent=2) + "\n")
    table = to_markdown(results)
    write_text_atomic(out / "encoder_quality.md", table)
    return table


if __name__ == "__main__":
    raise SystemExit(main())
