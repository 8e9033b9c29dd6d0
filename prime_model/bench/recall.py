"""Recall@10 of every benchmarked backend, against the eager model's own predictions.

On an evaluation set when one is given, else on a synthetic self-retrieval set: random
conversations whose gold target is the eager prediction, where a backend's numerical error is
the only thing that can cost recall (stricter than real retrieval).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

from prime_model.bench.report import RecallCheck
from prime_model.encode.encoding import EncodedTurns
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.calibration import random_batch
from prime_model.runtime.inference import Batch, FloatArray, InferencePredictor, to_numpy
from prime_model.runtime.inputs import as_tensors

EAGER: Final = "eager"
SYNTHETIC_ROWS: Final = 256


def synthetic_turns(
    predictor: InferencePredictor, rows: int = SYNTHETIC_ROWS
) -> EncodedTurns | None:
    """Random conversations whose gold target is the predictor's own prediction: a
    self-retrieval set on which int8's error is the only thing that can cost recall."""
    cfg = predictor.config
    if cfg.input_dim != cfg.output_dim:
        return None  # EncodedTurns keeps one embedding width
    batch = random_batch(cfg, rows, cfg.max_context_length, seed=100)
    corpus = torch.from_numpy(predictor.predict_batch(batch))
    return EncodedTurns(
        context=torch.from_numpy(batch.context),
        context_mask=torch.from_numpy(batch.context_mask),
        query=torch.from_numpy(batch.query),
        target=corpus,
        target_index=torch.arange(rows),
        corpus=corpus,
        conversation_ids=[f"synthetic-{i}" for i in range(rows)],
        turns=torch.full((rows,), cfg.max_context_length),
        corpus_ids=[f"synthetic-{i}" for i in range(rows)],
        encoder_name="synthetic",
        dim=cfg.input_dim,
        context_roles=None
        if batch.context_roles is None
        else torch.from_numpy(batch.context_roles),
        concat=None if batch.concat is None else torch.from_numpy(batch.concat),
    )


def eager_call(model: EmbeddingPredictor, batch: Batch, device: torch.device) -> FloatArray:
    """The plain model forward on tensors: the baseline is not slowed by any conversion."""
    with torch.inference_mode():
        return to_numpy(model(*as_tensors(batch, device, model.config).args()))


def recall_check(
    model: EmbeddingPredictor,
    predictors: dict[str, InferencePredictor],
    evaluation: EncodedTurns | None,
    device: torch.device,
) -> RecallCheck | None:
    """Recall@10 per backend on ``evaluation``, or on a synthetic self-retrieval set: corpus =
    eager predictions for random conversations, each query's gold = its own eager prediction
    (eager scores 1.0 by construction; a backend loses recall when its error moves a prediction
    past its neighbours, which is stricter than real retrieval)."""
    size = model.config.max_batch_size or 256
    if evaluation is not None:
        roles = evaluation.context_roles
        concat = evaluation.concat if model.config.concat_input else None
        batches = [
            Batch(
                evaluation.context[i : i + size].float().numpy(),
                evaluation.query[i : i + size].float().numpy(),
                evaluation.context_mask[i : i + size].numpy(),
                None if roles is None else roles[i : i + size].numpy(),
                None if concat is None else concat[i : i + size].float().numpy(),
            )
            for i in range(0, len(evaluation), size)
        ]
        corpus, gold = evaluation.corpus.float(), evaluation.target_index
        source = f"evaluation set ({len(evaluation)} turns, corpus {corpus.shape[0]})"
    else:
        turns = model.config.max_context_length
        batches = [
            random_batch(model.config, size, turns, seed=100 + i)
            for i in range(0, SYNTHETIC_ROWS, size)
        ]
        corpus = torch.from_numpy(np.concatenate([eager_call(model, b, device) for b in batches]))
        gold = torch.arange(corpus.shape[0])
        source = f"synthetic self-retrieval ({corpus.shape[0]} random conversations)"
    if corpus.shape[1] != model.config.output_dim:
        return None
    recall: dict[str, float] = {}
    for name in (EAGER, *predictors):
        if name == EAGER:
            pred = np.concatenate([eager_call(model, b, device) for b in batches])
        else:
            pred = np.concatenate([predictors[name].predict_batch(b) for b in batches])
        ranks = gold_ranks(torch.from_numpy(pred), corpus, gold)
        recall[name] = metrics_from_ranks(ranks)["recall@10"]
    drops = {name: recall[EAGER] - value for name, value in recall.items()}
    return RecallCheck(source=source, rows=len(gold), recall_at_10=recall, drop_vs_eager=drops)
