from __future__ import annotations

import itertools

import pytest
import torch

from prime_model import PredictorConfig, TrainingConfig
from prime_model.model import EmbeddingPredictor
from prime_model.train.lightning_module import PredictorLightningModule, decay_groups, warmup_cosine


def test_warmup_cosine_shape() -> None:
    assert warmup_cosine(0, 10, 110) == 0.0
    assert warmup_cosine(5, 10, 110) == 0.5
    assert warmup_cosine(10, 10, 110) == 1.0  # end of warmup: peak
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)  # half-way through the cosine
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.0)  # end of run
    assert warmup_cosine(500, 10, 110) == pytest.approx(0.0)
    assert warmup_cosine(0, 0, 100) == 1.0  # no warmup starts at the peak
    factors = [warmup_cosine(s, 10, 110) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(factors))


def test_decay_groups_follow_the_rule(tiny_model: EmbeddingPredictor) -> None:
    decay, keep = decay_groups(tiny_model, 0.1)
    names = {id(p): n for n, p in tiny_model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in keep["params"]}
    assert (decay["weight_decay"], keep["weight_decay"]) == (0.1, 0.0)
    assert decayed | kept == set(names.values())
    assert not decayed & kept
    assert {"pred_token", "pos_embedding", "norm.weight", "output_proj.bias"} <= kept
    assert all(n.endswith("weight") and "norm" not in n for n in decayed)
    assert "blocks.0.attn.qkv.weight" in decayed


def test_hyperparameters_are_plain_dicts_and_rebuild_the_configs(
    tiny_config: PredictorConfig,
) -> None:
    training = TrainingConfig(gradient_checkpointing=True, batch_size=8)
    module = PredictorLightningModule(tiny_config, training)
    assert module.hparams["predictor_config"] == tiny_config.model_dump()
    rebuilt = PredictorLightningModule(**module.hparams)
    assert rebuilt.predictor_config == tiny_config
    assert rebuilt.training_config == training
    assert module.net.gradient_checkpointing  # switched on by the training config
    assert not module.net.config.gradient_checkpointing  # without changing the saved config


def test_forward_is_the_predictor(tiny_config: PredictorConfig) -> None:
    module = PredictorLightningModule(tiny_config, TrainingConfig()).eval()
    context, query = torch.randn(2, 3, 16), torch.randn(2, 16)
    torch.testing.assert_close(module(context, query), module.net(context, query))


def test_the_training_loss_reads_a_batch_s_extra_targets(tiny_config: PredictorConfig) -> None:
    from prime_model.train.datamodule import EncodedBatch  # noqa: PLC0415
    from prime_model.train.losses import info_nce_loss  # noqa: PLC0415

    module = PredictorLightningModule(tiny_config, TrainingConfig()).eval()
    gen = torch.Generator().manual_seed(0)
    out = tiny_config.output_dim
    context, query, target, extra = (
        torch.randn(4, *shape, generator=gen) for shape in ((3, 16), (16,), (out,), (out,))
    )
    mask, marked = torch.ones(4, 3, dtype=torch.bool), torch.tensor([True, False, True, False])
    batch = EncodedBatch(context, mask, query, target, torch.arange(4), None, None, extra, marked)
    predicted = module.predict_batch(batch)
    expected = info_nce_loss(
        predicted, target, target_ids=torch.arange(4), extra_target=extra, extra_mask=marked
    )
    torch.testing.assert_close(module._loss(batch, predicted), expected)
    assert not torch.allclose(expected, info_nce_loss(predicted, target))
