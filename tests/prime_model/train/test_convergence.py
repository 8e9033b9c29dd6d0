"""End to end: sample conversations -> MiniLM -> train the small preset -> beat the query.

About a minute on 2 CPU cores: the one test showing that training works, not only that it runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from prime_model import PredictorConfig, TrainingConfig, load_checkpoint
from prime_model.data import SampleConfig, generate_sample, split_by_conversation
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.encode.encoding import encode_splits
from prime_model.evaluate.metrics import retrieval_metrics
from prime_model.train.training import train_predictor
from tests.conftest import REPO_ROOT


def test_small_preset_learns_to_use_the_context(tmp_path: Path) -> None:
    turns = generate_sample(SampleConfig(num_conversations=300, seed=1))
    splits = split_by_conversation(turns, val_fraction=0.15, test_fraction=0.15, seed=0)
    encoder = SentenceTransformerEncoder(EncoderConfig(device="cpu"))
    encoded = encode_splits(
        {"train": splits.train, "val": splits.val, "test": splits.test}, encoder, 10
    )
    predictor = PredictorConfig.from_yaml(REPO_ROOT / "prime_model/presets/predictor/minilm.yaml")
    training = TrainingConfig(
        max_epochs=8, batch_size=64, learning_rate=5e-4, warmup_steps=20, accelerator="cpu"
    )
    result = train_predictor(encoded["train"], encoded["val"], predictor, training, tmp_path)

    losses = [row["train/loss"] for row in result.history if "train/loss" in row]
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3  # the loss falls

    test = encoded["test"]
    model = load_checkpoint(result.checkpoint_dir).model
    with torch.inference_mode():
        predicted = torch.cat(
            [
                model(
                    test.context[i : i + 32], test.query[i : i + 32], test.context_mask[i : i + 32]
                )
                for i in range(0, len(test), 32)
            ]
        )
    later = test.turns > 0  # turn 0 names its entity: context only matters afterwards
    gold = test.target_index[later]
    trained = retrieval_metrics(predicted[later], test.corpus, gold)["recall@10"]
    query_only = retrieval_metrics(test.query[later], test.corpus, gold)["recall@10"]
    assert trained > query_only + 0.1, (trained, query_only)
