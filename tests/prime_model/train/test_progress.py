from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import lightning as L  # noqa: N812
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from prime_model import PredictorConfig, TrainingConfig
from prime_model.train.progress import LogProgress
from prime_model.train.training import train_predictor
from tests.conftest import make_encoded

PROGRESS = "prime_model.train.progress"


@dataclass
class FakeTrainer:
    """The attributes LogProgress reads, without a training loop."""

    num_training_batches: float = 100
    max_epochs: int | None = 3
    max_steps: int = -1
    current_epoch: int = 0
    global_step: int = 0
    is_global_zero: bool = True
    sanity_checking: bool = False
    progress_bar_metrics: dict[str, float] = field(default_factory=dict)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS]


def _run_epoch(
    progress: LogProgress,
    fake: FakeTrainer,
    clock: Clock,
    *,
    seconds_per_batch: float,
    validate: bool = True,
) -> None:
    trainer, module = cast(L.Trainer, fake), cast(L.LightningModule, None)
    progress.on_train_epoch_start(trainer, module)
    for batch_idx in range(int(fake.num_training_batches)):
        clock.now += seconds_per_batch
        fake.global_step += 1
        loss = torch.tensor(float(fake.global_step))
        progress.on_train_batch_end(trainer, module, {"loss": loss}, None, batch_idx)
    if validate:
        fake.progress_bar_metrics = {"train/loss": 1.0, "val/loss": 0.5, "val/recall@10": 0.75}
        progress.on_validation_end(trainer, module)
    progress.on_train_epoch_end(trainer, module)
    fake.current_epoch += 1


def test_a_quick_epoch_gets_one_line_with_loss_val_metrics_and_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    clock, fake = Clock(), FakeTrainer(num_training_batches=4)
    progress = LogProgress(clock=clock)
    progress.on_train_start(cast(L.Trainer, fake), cast(L.LightningModule, None))
    _run_epoch(progress, fake, clock, seconds_per_batch=0.5)
    assert _lines(caplog) == [
        "training: 4 batches per epoch, up to 3 epochs",
        # the mean of steps 1..4, the bar's val metrics (not its train/loss), seconds so far
        "epoch 1/3 done, step 4: train/loss 2.5000, val/loss 0.5000, val/recall@10 0.7500, 2.0 s",
    ]


def test_a_slow_epoch_also_logs_every_tenth(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    clock, fake = Clock(), FakeTrainer(num_training_batches=100, max_epochs=2)
    progress = LogProgress(clock=clock, min_interval_s=30)
    progress.on_train_start(cast(L.Trainer, fake), cast(L.LightningModule, None))
    _run_epoch(progress, fake, clock, seconds_per_batch=4.0)  # 40 s per tenth
    lines = _lines(caplog)[1:]
    assert len(lines) == 10  # batches 10, 20, ..., 90, then the epoch's line
    assert lines[0] == "epoch 1/2, batch 10/100, step 10: train/loss 5.5000, 40.0 s"
    assert lines[1].startswith("epoch 1/2, batch 20/100, step 20: train/loss 15.5000, ")
    assert lines[8].endswith("6 min 00 s")
    assert lines[-1].startswith("epoch 1/2 done, step 100: train/loss 50.5000, val/loss 0.5000")


def test_mid_epoch_lines_wait_for_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    clock, fake = Clock(), FakeTrainer(num_training_batches=100)
    progress = LogProgress(clock=clock)  # a line at most once a minute
    progress.on_train_start(cast(L.Trainer, fake), cast(L.LightningModule, None))
    _run_epoch(progress, fake, clock, seconds_per_batch=2.5)  # 25 s per tenth: every third
    batches = [re.search(r"batch (\d+)/", line) for line in _lines(caplog)]
    assert [int(m.group(1)) for m in batches if m] == [30, 60, 90]


def test_every_n_steps_logs_regardless_of_time(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    clock, fake = Clock(), FakeTrainer(num_training_batches=10, max_epochs=None, max_steps=1)
    progress = LogProgress(every_n_steps=4, clock=clock)
    progress.on_train_start(cast(L.Trainer, fake), cast(L.LightningModule, None))
    _run_epoch(progress, fake, clock, seconds_per_batch=0.0, validate=False)
    assert _lines(caplog) == [
        "training: 10 batches per epoch, 1 step",
        "epoch 1, batch 4/10, step 4: train/loss 2.5000, 0.0 s",
        "epoch 1, batch 8/10, step 8: train/loss 6.5000, 0.0 s",
        "epoch 1 done, step 10: train/loss 5.5000, 0.0 s",  # the whole epoch's mean
    ]


def test_stale_val_metrics_and_other_ranks_stay_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    clock, fake = Clock(), FakeTrainer(num_training_batches=2)
    progress = LogProgress(clock=clock)
    _run_epoch(progress, fake, clock, seconds_per_batch=1.0)
    _run_epoch(progress, fake, clock, seconds_per_batch=1.0, validate=False)  # no val this epoch
    assert "val/" not in _lines(caplog)[-1]
    fake.sanity_checking = True  # the sanity check's validation is not the epoch's
    progress.on_validation_end(cast(L.Trainer, fake), cast(L.LightningModule, None))
    _run_epoch(progress, fake, clock, seconds_per_batch=1.0, validate=False)
    assert "val/" not in _lines(caplog)[-1]
    fake.is_global_zero = False
    _run_epoch(progress, fake, clock, seconds_per_batch=1.0)
    assert len(_lines(caplog)) == 3


def test_refuses_meaningless_intervals() -> None:
    with pytest.raises(ValueError, match="every_n_steps"):
        LogProgress(every_n_steps=0)
    with pytest.raises(ValueError, match="fraction"):
        LogProgress(fraction=0)


class _Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_real_trainer_calls_it_at_the_expected_points(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS)
    data = TensorDataset(torch.randn(12, 2), torch.randn(12, 1))
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        callbacks=[LogProgress(every_n_steps=2)],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=False,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(data, batch_size=4)  # 3 batches per epoch
    trainer.fit(_Regression(), loader, loader)
    lines = [re.sub(r"[\d.]+ s$", "T", line) for line in _lines(caplog)]
    assert [re.sub(r"loss \d\.\d{4}", "loss X", line) for line in lines] == [
        "training: 3 batches per epoch, up to 2 epochs",
        "epoch 1/2, batch 2/3, step 2: train/loss X, T",
        "epoch 1/2 done, step 3: train/loss X, val/loss X, T",
        "epoch 2/2, batch 2/3, step 5: train/loss X, T",
        "epoch 2/2 done, step 6: train/loss X, val/loss X, T",
    ]


def test_train_predictor_logs_progress_off_a_terminal(
    caplog: pytest.LogCaptureFixture, tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    config = tiny_config.model_copy(update={"output_dim": 16})
    training = TrainingConfig(batch_size=16, max_epochs=2, warmup_steps=1, accelerator="cpu")
    train_predictor(
        make_encoded(m=64, k=16), make_encoded(m=20, k=16, seed=1), config, training, tmp_path
    )
    epochs = [line for line in _lines(caplog) if " done, " in line]
    assert len(epochs) == 2
    assert re.match(
        r"epoch 2/2 done, step 8: train/loss [\d.]+, val/loss [\d.]+, val/recall@10", epochs[1]
    )
    lightning = [r.getMessage() for r in caplog.records if r.name.startswith("lightning")]
    assert not any("available:" in m or "litlogger" in m for m in lightning)
    assert len(lightning) == len(set(lightning))  # each line once
