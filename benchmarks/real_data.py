"""Real conversations: train on CANARD train + TopiOCQA train, judge on data nobody tuned on.

Validation (early stopping, checkpoint choice) is 10 % of the CANARD train dialogs, 10 % of the
TopiOCQA conversations and 30 % of the doc2dial dialogs (paragraph targets; doc2dial is never
trained on); the judged sets are CANARD dev (rewrite targets, and answer targets with the human
rewrite as an oracle), another 10 % of TopiOCQA conversations and the other 70 % of doc2dial
dialogs (paragraph and span targets), all held out of training and validation. Every set is also
broken down by history length (0, 1-4, 5+ entries) and by whether the history holds system turns.
The datasets are public releases (see ``../shared/data/README.md`` or docs/real-data.md):
this script reads them, it never downloads.

    .venv/bin/python -m benchmarks.real_data --data-dir ../shared/data --out outputs/real
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Final

import pandas as pd
import torch

from prime_model import load_checkpoint
from prime_model.atomic import write_text_atomic
from prime_model.data import read_turns, split_by_conversation
from prime_model.data.source import DataSource
from prime_model.data.sources import FileSource, read_source, read_sources, split_sources
from prime_model.encode.cache import cached, default_cache_dir
from prime_model.encode.encoders import SentenceTransformerEncoder, YEncoder
from prime_model.encode.encoding import EncodedTurns, encode_splits
from prime_model.encode.progress import ProgressEncoder
from prime_model.errors import ConfigError
from prime_model.evaluate.evaluation import evaluate
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.files import read_text_file
from prime_model.parsing import parse_yaml
from prime_model.presets import predictor_config, training_config
from prime_model.train.training import train_predictor

logger = logging.getLogger("benchmarks.real_data")
SHOWN: Final = ("mrr", "recall@10")
REAL_CONFIG: Final = Path(__file__).resolve().parent.parent / "configs" / "real.yaml"
N_MAX: Final = 10  # the real preset's max_context_length
BREAKDOWN: Final = ("first turn", "history 1-4", "history 5+", "with system turns")


def real_recipe(
    data_dir: Path, topiocqa_share: float = 1.0, max_train_chars: int | None = None
) -> tuple[DataSource, float, float]:
    """configs/real.yaml's sources (read from ``data_dir``) and split fractions: the pipeline's
    recipe, with this run's TopiOCQA share and character limit (the CLI's defaults: all turns)."""
    own = _yaml(REAL_CONFIG)
    parameters = {**_yaml(REAL_CONFIG.parent / own["base"])["parameters"], **own["parameters"]}
    data = DataSource(**parameters["data"])
    sources = tuple(
        s.model_copy(
            update={
                "path": str(data_dir.joinpath(*Path(s.path).parts[-2:])),  # <dataset>/<file>
                **({"weight": topiocqa_share} if s.label == "topiocqa" else {}),
            }
        )
        for s in data.sources
    )
    recipe = data.model_copy(update={"sources": sources, "max_train_chars": max_train_chars})
    return recipe, parameters["val_fraction"], parameters["test_fraction"]


def _yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = parse_yaml(read_text_file(path, "run config", ConfigError), str(path))
    return loaded


def load_sets(
    data_dir: Path,
    seed: int,
    topiocqa_share: float = 1.0,
    max_train_chars: int | None = None,
) -> dict[str, pd.DataFrame]:
    """train / val and the judged sets, conversation-disjoint throughout.

    Train and val are what ``training_pipeline -c configs/real.yaml`` trains and validates on
    (:func:`read_sources`, :func:`split_sources`), the test part is the TopiOCQA held-out set.
    ``topiocqa_share`` keeps that share of TopiOCQA's training conversations and
    ``max_train_chars`` drops training turns whose history + query (as the model reads it) is
    longer. Val and the judged sets always stay whole.
    """
    recipe, val_fraction, test_fraction = real_recipe(data_dir, topiocqa_share, max_train_chars)
    splits = split_sources(
        read_sources(recipe.sources),
        recipe.sources,
        val_fraction,
        test_fraction,
        seed,
        max_train_chars=recipe.max_train_chars,
        max_context_length=N_MAX,
    )
    doc2dial = next(s for s in recipe.sources if s.label == "doc2dial")
    dev = data_dir / "canard" / "dev.json"
    return {
        "train": splits.train,
        "val": splits.val,
        "canard-dev (rewrite)": read_turns(dev, "canard", target="rewrite"),
        "canard-dev (answer)": read_turns(dev, "canard", target="answer"),
        "topiocqa held-out (answer)": splits.test,
        "doc2dial held-out (paragraph)": _judged(doc2dial, "passage", seed),
        "doc2dial held-out (span)": _judged(doc2dial, "answer", seed),
    }


def _judged(doc2dial: FileSource, target: str, seed: int) -> pd.DataFrame:
    """The dialogs the recipe does not validate on (its split's "train" part): judged, never fit."""
    turns = read_source(doc2dial.model_copy(update={"target": target}))
    return split_by_conversation(turns, doc2dial.val_fraction or 0.0, 0.0, seed).train


def _subsample(turns: pd.DataFrame, max_turns: int | None, seed: int) -> pd.DataFrame:
    if max_turns is None or len(turns) <= max_turns:
        return turns
    return turns.sample(n=max_turns, random_state=seed).reset_index(drop=True)


def _first_conversations(turns: pd.DataFrame, max_turns: int | None) -> pd.DataFrame:
    """Whole conversations, in file order, up to about ``max_turns`` turns (for a quick slice)."""
    if max_turns is None or len(turns) <= max_turns:
        return turns
    keep = turns["conversation_id"].drop_duplicates().iloc[: max(1, max_turns // 8)]
    kept = turns[turns["conversation_id"].isin(set(keep))]
    return kept.head(max_turns).reset_index(drop=True)


def rewrite_oracle(
    encoded: EncodedTurns, answers: pd.DataFrame, rewrites: pd.DataFrame, encoder: YEncoder
) -> dict[str, float]:
    """Retrieve each answer with the embedding of the human self-contained rewrite."""
    keys = rewrites.set_index(["conversation_id", "turn"])["target"]
    texts = [keys[(c, t)] for c, t in zip(answers["conversation_id"], answers["turn"], strict=True)]
    vectors = torch.from_numpy(encoder.encode(texts)).float()
    return metrics_from_ranks(gold_ranks(vectors, encoded.corpus, encoded.target_index))


def to_markdown(results: dict[str, Any]) -> str:
    parts = " | ".join(f"{p} MRR" for p in BREAKDOWN)
    lines = [
        f"| set | turns | system | MRR | R@10 | {parts} |",
        "|---|---:|---|---:|---:|" + "---:|" * len(BREAKDOWN),
    ]
    for name, table in results["sets"].items():
        for system, row in table["rows"].items():
            cells = " | ".join(
                _num(table["breakdown"].get(p, {}).get("rows", {}).get(system, {}).get("mrr"))
                for p in BREAKDOWN
            )
            lines.append(
                f"| {name} | {table['num_turns']} | {system} | {row['mrr']:.3f} | "
                f"{row['recall@10']:.3f} | {cells} |"
            )
    lines += ["", "Model MRR / best baseline MRR, and R@10 margin over the best baseline:", ""]
    for name, verdict in results["verdict"].items():
        lines.append(
            f"- {name}: MRR ×{verdict['mrr_ratio']:.3f} (best baseline {verdict['best_mrr']}), "
            f"R@10 {verdict['recall_margin']:+.3f} (best {verdict['best_recall']}); "
            f"history 5+: MRR ×{_num(verdict.get('later_mrr_ratio'))}"
        )
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def verdict(table: dict[str, Any]) -> dict[str, Any]:
    out = _ratios(table["rows"])
    long = table["breakdown"].get("history 5+")
    if long:
        out["later_mrr_ratio"] = _ratios(long["rows"])["mrr_ratio"]
    return out


def _ratios(rows: dict[str, Any]) -> dict[str, Any]:
    baselines = {k: v for k, v in rows.items() if k not in ("model", "rewrite oracle")}
    best_mrr = max(baselines, key=lambda k: baselines[k]["mrr"])
    best_recall = max(baselines, key=lambda k: baselines[k]["recall@10"])
    return {
        "mrr_ratio": rows["model"]["mrr"] / max(baselines[best_mrr]["mrr"], 1e-12),
        "best_mrr": best_mrr,
        "recall_margin": rows["model"]["recall@10"] - baselines[best_recall]["recall@10"],
        "best_recall": best_recall,
    }


def run(args: argparse.Namespace, encoder: YEncoder | None = None) -> dict[str, Any]:
    """Train and judge; ``encoder`` (default: the cached bundled MiniLM) embeds every text."""
    started = time.perf_counter()
    predictor = predictor_config(args.predictor)
    training = training_config(args.training)
    sets = load_sets(args.data_dir, args.seed, args.topiocqa_share, args.max_train_chars)
    for name in sets:
        sets[name] = (
            _subsample(sets[name], args.max_train_turns, args.seed)
            if name == "train"
            else _first_conversations(sets[name], args.max_eval_turns)
        )
    logger.info("turns per set: %s", {name: len(frame) for name, frame in sets.items()})
    if encoder is None:
        loaded = SentenceTransformerEncoder()
        cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
        encoder = cached(ProgressEncoder(loaded), cache_dir, loaded.identity)
    n_max = predictor.max_context_length
    encoded = encode_splits(sets, encoder, n_max, concat=True)
    encoded_s = time.perf_counter() - started
    result = train_predictor(
        encoded["train"], encoded["val"], predictor, training, args.out,
        metadata={"benchmark": "real_data", "sizes": {k: len(v) for k, v in sets.items()}},
    )  # fmt: skip
    model = load_checkpoint(result.checkpoint_dir).model
    judged = [name for name in sets if name != "train"]
    tables: dict[str, dict[str, Any]] = {
        name: evaluate(model, encoded[name], sets[name], encoder, by_history=True).to_dict()
        for name in judged
    }
    oracle = rewrite_oracle(
        encoded["canard-dev (answer)"],
        sets["canard-dev (answer)"],
        sets["canard-dev (rewrite)"],
        encoder,
    )
    tables["canard-dev (answer)"]["rows"]["rewrite oracle"] = oracle
    return {
        "checkpoint": str(result.checkpoint_dir),
        "best_epoch_metrics": result.best_metrics,
        "sets": tables,
        "verdict": {name: verdict(t) for name, t in tables.items()},
        "seconds": {"encode": encoded_s, "total": time.perf_counter() - started},
        "cpu_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds canard/ and topiocqa/")
    parser.add_argument("--out", type=Path, required=True, help="model/ and the tables go here")
    parser.add_argument("--predictor", default="real", help="preset or YAML (default real)")
    parser.add_argument("--training", default="real", help="preset or YAML (default real)")
    parser.add_argument("--max-train-turns", type=int, default=None, help="subsample training")
    parser.add_argument(
        "--max-eval-turns", type=int, default=None, help="cut each judged set (a quick slice)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="embedding cache (default: prime evaluate's)"
    )
    parser.add_argument("--no-cache", action="store_true", help="encode everything afresh")
    parser.add_argument("--seed", type=int, default=0, help="split and subsample seed")
    parser.add_argument(
        "--topiocqa-share",
        type=float,
        default=1.0,
        help="share of TopiOCQA training conversations to train on (all: 1.0)",
    )
    parser.add_argument(
        "--max-train-chars",
        type=int,
        default=None,
        help="train only on turns whose history + query has at most this many characters",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = run(args)
    write_text_atomic(args.out / "real_data.json", json.dumps(results, indent=2) + "\n")
    table = to_markdown(results)
    write_text_atomic(args.out / "real_data.md", table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
