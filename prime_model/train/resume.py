"""Where a training run starts from: ``last.ckpt`` when resuming, else a cleared folder; and how
many optimiser steps a finished run took (also after ``ddp_spawn``).

Lightning checkpoints are only ever read back with ``weights_only=True`` (no arbitrary unpickling).
"""

from __future__ import annotations

import logging
import pickle
import re
import shutil
from pathlib import Path

import lightning as L  # noqa: N812
import torch
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

from prime_model.atomic import check_replaceable
from prime_model.errors import CheckpointError
from prime_model.files import check_regular_file

logger = logging.getLogger(__name__)


def global_step(trainer: L.Trainer, lightning_dir: Path) -> int:
    """Optimizer steps taken, also after ddp_spawn, where the main process never stepped.

    Lightning hands rank 0's weights and metrics back to the main process, not its loop
    counters; rank 0's ``last.ckpt`` (saved after the final validation) has them.
    """
    last = lightning_dir / "last.ckpt"
    if not isinstance(trainer.strategy.launcher, _MultiProcessingLauncher) or not last.exists():
        return trainer.global_step
    state = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    return int(state["global_step"])


_CHECKPOINT_NAME = re.compile(r"[\w.-]+\.ckpt")


def resume_from(output_dir: Path, resume: bool, *, clear: bool = True) -> Path | None:
    """``last.ckpt`` when resuming; otherwise clear the previous run's logs and checkpoints.

    A fresh run must not append to an old run's history or keep its "best" checkpoint.
    """
    last = output_dir / "lightning" / "last.ckpt"
    if resume and last.exists():
        _check_resumable(last)
        logger.info("resuming from %s", last)
        return last
    if resume:
        logger.info("no %s to resume from; starting fresh", last)
    if not clear:
        return None
    # removed below: only if they hold nothing but what a run writes there (never a user's folder)
    check_replaceable(output_dir / "logs", {"metrics.csv", "hparams.yaml"})
    check_replaceable(output_dir / "lightning", pattern=_CHECKPOINT_NAME)
    for name in ("logs", "lightning"):
        if (output_dir / name).exists():
            logger.info("starting fresh: removing the previous run's %s", output_dir / name)
            shutil.rmtree(output_dir / name)
    return None


def _check_resumable(last: Path) -> None:
    """Read ``last.ckpt`` the way Lightning will (``weights_only``: never arbitrary unpickling)
    first, so a foreign, truncated or tampered file is a :class:`CheckpointError`, not a
    ``pickle.UnpicklingError`` from deep inside ``fit``."""
    check_regular_file(last, "Lightning checkpoint to resume", CheckpointError)  # FIFO: a hang
    try:
        state = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{last}: not a Lightning checkpoint that can be resumed safely ({first_line}); "
            "it was not unpickled. Delete it to start fresh, or train without --resume"
        ) from None
    if not isinstance(state, dict) or "global_step" not in state or "state_dict" not in state:
        raise CheckpointError(
            f"{last}: not a Lightning training checkpoint (no global_step/state_dict); "
            "delete it to start fresh, or train without --resume"
        )
