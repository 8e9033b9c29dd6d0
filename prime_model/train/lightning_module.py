"""PredictorLightningModule: the loss, logging and optimisation around an EmbeddingPredictor."""

from __future__ import annotations

import math
from typing import Any, Protocol

import lightning as L  # noqa: N812
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor, nn

from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.model import EmbeddingPredictor
from prime_model.model_inputs import ModelInputs
from prime_model.train.datamodule import EncodedBatch
from prime_model.train.losses import info_nce_loss

NO_DECAY = ("pred_token", "pos_embedding")  # learned tokens/positions are not shrunk either


class _HasValCorpus(Protocol):
    @property
    def val_corpus(self) -> Tensor: ...


def decay_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: matrices decay; biases, norm gains, [PRED] and positions do not."""
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    keep = {n for n, p in named if p.ndim < 2 or n.rsplit(".", 1)[-1] in NO_DECAY}
    return [
        {"params": [p for n, p in named if n not in keep], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n in keep], "weight_decay": 0.0},
    ]


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR factor: linear 0 -> 1 over ``warmup_steps``, then cosine 1 -> 0 at ``total_steps``."""
    if step < warmup_steps:
        return step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class PredictorLightningModule(L.LightningModule):
    """Trains an EmbeddingPredictor on precomputed targets; validates against the whole corpus."""

    def __init__(
        self,
        predictor_config: PredictorConfig | dict[str, Any],
        training_config: TrainingConfig | dict[str, Any],
    ) -> None:
        super().__init__()
        self.predictor_config = PredictorConfig.model_validate(predictor_config)
        self.training_config = TrainingConfig.model_validate(training_config)
        # plain dicts keep hparams.yaml readable and let load_from_checkpoint rebuild both configs
        self.save_hyperparameters(
            {
                "predictor_config": self.predictor_config.model_dump(),
                "training_config": self.training_config.model_dump(),
            }
        )
        self.net = EmbeddingPredictor(self.predictor_config)
        self.net.gradient_checkpointing |= self.training_config.gradient_checkpointing
        self._val_ranks: list[Tensor] = []

    def forward(self, context: Tensor, query: Tensor, context_mask: Tensor | None = None) -> Tensor:
        return self.net(context, query, context_mask)  # type: ignore[no-any-return]

    def predict_batch(self, batch: EncodedBatch) -> Tensor:
        """The net on a batch, with the roles and concat it reads (EncodedTurns checked them)."""
        concat = batch.concat if self.predictor_config.concat_input else None
        inputs = ModelInputs(
            batch.context, batch.query, batch.context_mask, batch.context_roles, concat
        )
        return self.net.forward_unchecked(inputs.to(self.net.pred_token.dtype))

    def _loss(self, batch: EncodedBatch, predicted: Tensor) -> Tensor:
        cfg = self.training_config
        return info_nce_loss(
            predicted,
            batch.target,
            cfg.temperature,
            symmetric=cfg.symmetric_loss,
            target_ids=batch.target_index if cfg.mask_duplicate_targets else None,
            extra_target=batch.extra_target,
            extra_mask=batch.extra_mask,
        )

    def training_step(self, batch: EncodedBatch, batch_idx: int) -> Tensor:
        loss = self._loss(batch, self.predict_batch(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.query.shape[0])
        return loss

    def validation_step(self, batch: EncodedBatch, batch_idx: int) -> None:
        predicted = self.predict_batch(batch)  # (B, D_out)
        loss = self._loss(batch, predicted)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch.query.shape[0], sync_dist=True)
        corpus = self._val_corpus().to(predicted.device)
        self._val_ranks.append(gold_ranks(predicted, corpus, batch.target_index))

    def on_validation_epoch_end(self) -> None:
        if not self._val_ranks:
            return
        ranks = torch.cat(self._val_ranks)
        self._val_ranks.clear()
        metrics = metrics_from_ranks(ranks, ks=(1, 5, 10))
        self.log_dict(
            {f"val/{k}": metrics[k] for k in ("recall@1", "recall@5", "mrr", "ndcg@10")},
            sync_dist=True,
        )
        self.log("val/recall@10", metrics["recall@10"], prog_bar=True, sync_dist=True)

    def _val_corpus(self) -> Tensor:
        datamodule: _HasValCorpus | None = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise RuntimeError("validation needs a PredictorDataModule (it holds the val corpus)")
        return datamodule.val_corpus

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        cfg = self.training_config
        optimizer = torch.optim.AdamW(
            decay_groups(self.net, cfg.weight_decay), lr=cfg.learning_rate
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup = min(cfg.warmup_steps, max(0, total - 1))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }
