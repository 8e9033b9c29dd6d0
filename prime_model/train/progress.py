"""Training progress as log lines, for output that is not a terminal.

A progress bar redraws one line with carriage returns: in a log file, CI or the ZenML
dashboard's step log it shows nothing until it finishes. :class:`LogProgress` logs one line per
epoch instead (steps, train loss, the validation metrics the bar would show, elapsed time), and
mid-epoch lines for long epochs, through :mod:`logging` so they land wherever the application
sends its logs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L  # noqa: N812
import torch
from lightning.pytorch.callbacks import Callback

logger = logging.getLogger(__name__)


class LogProgress(Callback):
    """One log line per epoch, and one at every ``fraction`` of a long epoch.

    Mid-epoch lines are considered every ``every_n_steps`` batches (default: every ``fraction``
    of the epoch) and written when ``min_interval_s`` seconds have passed since the last line, so
    a quick epoch gets one line and a slow one says how far it is about once a minute (a 6-epoch
    run of 5-minute epochs: ~30 lines, not 60). An explicit ``every_n_steps`` logs at every such
    batch regardless of time. Only rank 0 logs.
    """

    def __init__(
        self,
        every_n_steps: int | None = None,
        *,
        fraction: float = 0.1,
        min_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.every_n_steps = every_n_steps
        self.fraction = fraction
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._start = self._last_line = 0.0
        self._since_line, self._epoch_loss = _Mean(), _Mean()
        self._validated = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last_line = self._clock()
        if trainer.is_global_zero:
            epochs, steps = trainer.max_epochs or 0, trainer.max_steps
            limits = [f"up to {_plural(epochs, 'epoch')}"] if epochs > 0 else []
            limits += [_plural(steps, "step")] if steps > 0 else []
            logger.info(
                "training: %s batches per epoch, %s",
                _count(trainer.num_training_batches),
                " or ".join(limits) or "no limit",
            )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._since_line, self._epoch_loss = _Mean(), _Mean()
        self._validated = False

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._since_line.add(loss)
            self._epoch_loss.add(loss)
        done, total = batch_idx + 1, trainer.num_training_batches
        if not trainer.is_global_zero or (math.isfinite(total) and done >= total):
            return  # the epoch's own line follows
        if done % self._interval(total):
            return
        if self.every_n_steps is None and self._clock() - self._last_line < self.min_interval_s:
            return
        logger.info(
            "%s, batch %d/%s, step %d: %s",
            _epoch(trainer),
            done,
            _count(total),
            trainer.global_step,
            self._metrics(trainer, self._since_line, val=False),
        )
        self._since_line, self._last_line = _Mean(), self._clock()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            logger.info(
                "%s done, step %d: %s",
                _epoch(trainer),
                trainer.global_step,
                self._metrics(trainer, self._epoch_loss, val=self._validated),
            )
        self._since_line, self._last_line = _Mean(), self._clock()

    def _interval(self, total: float) -> int:
        if self.every_n_steps is not None:
            return self.every_n_steps
        if not math.isfinite(total):  # an iterable dataset of unknown length
            return 50
        return max(1, round(total * self.fraction))

    def _metrics(self, trainer: L.Trainer, loss: _Mean, *, val: bool) -> str:
        """The mean train loss over ``loss``'s steps, the bar's val metrics when they are from
        this epoch, the time since training started."""
        parts = [] if loss.value is None else [f"train/loss {loss.value:.4f}"]
        if val:
            parts += [
                f"{name} {float(value):.4f}"
                for name, value in trainer.progress_bar_metrics.items()
                if name.startswith("val/")
            ]
        parts.append(_elapsed(self._clock() - self._start))
        return ", ".join(parts)


class _Mean:
    """A running mean of scalar losses, summed on their device: no host sync per step."""

    def __init__(self) -> None:
        self._sum: torch.Tensor | None = None
        self._count = 0

    def add(self, loss: torch.Tensor) -> None:
        loss = loss.detach().float()
        self._sum = loss if self._sum is None else self._sum + loss
        self._count += 1

    @property
    def value(self) -> float | None:
        return None if self._sum is None else float(self._sum.item()) / self._count


def _positive(value: int | None) -> bool:
    return value is not None and value > 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _count(value: float) -> str:
    return str(int(value)) if math.isfinite(value) else "?"


def _epoch(trainer: L.Trainer) -> str:
    total = f"/{trainer.max_epochs}" if _positive(trainer.max_epochs) else ""
    return f"epoch {trainer.current_epoch + 1}{total}"


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{seconds:.1f} s" if seconds < 60 else f"{minutes} min {rest:02d} s"
