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
from prime_model.data.schema import truncate_histories
from prime_model.data.split import TurnSplits
from prime_model.encode.cache import cached, default_cache_dir
from prime_model.encode.encoders import SentenceTransformerEncoder, YEncoder
from prime_model.encode.encoding import EncodedTurns, encode_splits
from prime_model.encode.texts import joined_texts
from prime_model.evaluate.evaluation import evaluate
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.presets import predictor_config, training_config
from prime_model.train.training import train_predictor

logger = logging.getLogger("benchmarks.real_data")
SHOWN: Final = ("mrr", "recall@10")
DOC2DIAL_FILE: Final = "doc2dial_rc_val.csv.zip"
DOC2DIAL_VAL: Final = 0.3
N_MAX: Final = 10  # the real preset's max_context_length
BREAKDOWN: Final = ("first turn", "history 1-4", "history 5+", "with system turns")


def load_sets(
    data_dir: Path,
    seed: int,
    topiocqa_share: float = 1.0,
    max_train_chars: int | None = None,
) -> dict[str, pd.DataFrame]:
    """train / val and the judged sets, conversation-disjoint throughout.

    ``topiocqa_share`` keeps that share of TopiOCQA's training conversations and
    ``max_train_chars`` drops training turns whose history + query (as the model reads it) is
    longer: long question-answer histories are the costliest texts to encode on a CPU. Val and
    the judged sets always stay whole.
    """
    canard = read_turns(data_dir / "canard" / "train.question.tsv", "canard", target="rewrite")
    topiocqa_file = data_dir / "topiocqa" / "topiocqa_train.json.gz"
    topiocqa = read_turns(topiocqa_file, "topiocqa", target="answer")
    dev = data_dir / "canard" / "dev.json"
    canard_split = split_by_conversation(_tagged(canard, "canard"), 0.1, 0.0, seed)
    topiocqa_split = split_by_conversation(_tagged(topiocqa, "topiocqa"), 0.1, 0.1, seed)
    doc2dial = {target: _doc2dial(data_dir, target, seed) for target in ("passage", "answer")}
    topiocqa_train = _share(topiocqa_split.train, topiocqa_share, seed)
    train = pd.concat([canard_split.train, topiocqa_train], ignore_index=True)
    return {
        "train": _at_most(train, max_train_chars),
        "val": pd.concat(
            [canard_split.val, topiocqa_split.val, doc2dial["passage"].val], ignore_index=True
        ),
        "canard-dev (rewrite)": read_turns(dev, "canard", target="rewrite"),
        "canard-dev (answer)": read_turns(dev, "canard", target="answer"),
        "topiocqa held-out (answer)": topiocqa_split.test,
        "doc2dial held-out (paragraph)": doc2dial["passage"].train,
        "doc2dial held-out (span)": doc2dial["answer"].train,
    }


def _doc2dial(data_dir: Path, target: str, seed: int) -> TurnSplits:
    """30 % of the dialogs validate; the rest (the split's "train" part) are judged, never fit."""
    turns = read_turns(data_dir / "doc2dial" / DOC2DIAL_FILE, "doc2dial", target=target)
    return split_by_conversation(_tagged(turns, "doc2dial"), DOC2DIAL_VAL, 0.0, seed)


def _share(turns: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Whole conversations, a ``share`` of them chosen by seed (1.0: all)."""
    if share >= 1.0:
        return turns
    ids = turns["conversation_id"].drop_duplicates()
    kept = set(ids.sample(frac=share, random_state=seed))
    return turns[turns["conversation_id"].isin(kept)].reset_index(drop=True)


def _at_most(turns: pd.DataFrame, max_chars: int | None) -> pd.DataFrame:
    """Turns whose joined history + query (the model's N_max turns) has at most ``max_chars``."""
    if max_chars is None:
        return turns
    lengths = [len(t) for t in joined_texts(truncate_histories(turns, N_MAX))]
    kept = turns[[n <= max_chars for n in lengths]].reset_index(drop=True)
    logger.info("train: %d of %d turns within %d characters", len(kept), len(turns), max_chars)
    return kept


def _tagged(turns: pd.DataFrame, name: str) -> pd.DataFrame:
    out = turns.copy()
    out["conversation_id"] = name + ":" + out["conversation_id"].astype(str)
    return out


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
        encoder = cached(loaded, cache_dir, loaded.identity)
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
