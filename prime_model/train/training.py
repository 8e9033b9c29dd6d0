"""train_predictor: Lightning Trainer + callbacks around the module, ending in a PRIME checkpoint.

Lightning owns the loop, checkpointing (``lightning/last.ckpt`` to resume, the best by
val/recall@10), early stopping, LR monitoring, progress (a bar on a terminal, log lines elsewhere:
:mod:`prime_model.train.progress`) and CSV logs. The best weights
are then written as a PRIME checkpoint (safetensors + metadata), the artifact everything else uses.
Lightning checkpoints are only ever read back with ``weights_only=True`` (no arbitrary unpickling).
Under DDP only rank 0 writes the PRIME checkpoint; :mod:`prime_model.train.strategy` picks the
strategy.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from prime_model.checkpoint import PredictorCheckpoint, make_checkpoint, write_checkpoint
from prime_model.config import PredictorConfig, TrainingConfig
from prime_model.devices import cuda_device_count
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import CheckpointError, ConfigError
from prime_model.files import check_output_dir
from prime_model.logs import is_terminal, lightning_logs
from prime_model.model import EmbeddingPredictor
from prime_model.text import shown
from prime_model.train.datamodule import PredictorDataModule
from prime_model.train.history import MONITOR, best_epoch, read_history, warn_if_still_improving
from prime_model.train.lightning_module import PredictorLightningModule
from prime_model.train.progress import LogProgress
from prime_model.train.resume import global_step, resume_from
from prime_model.train.strategy import lightning_strategy, process_count

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    """The best model (in memory), how it scored, every logged value per step/epoch, and where
    the model was written (None when the caller writes it: a pipeline's materializer)."""

    checkpoint: PredictorCheckpoint
    best_metrics: dict[str, float]
    history: list[dict[str, float]]
    lightning_dir: Path
    saved_to: Path | None = None

    @property
    def checkpoint_dir(self) -> Path:
        if self.saved_to is None:
            raise CheckpointError(
                "this run's checkpoint was not written (write=False); write it with "
                "prime_model.checkpoint.write_checkpoint(result.checkpoint, directory)"
            )
        return self.saved_to


def train_predictor(
    encoded_train: EncodedTurns,
    encoded_val: EncodedTurns,
    predictor_config: PredictorConfig,
    training_config: TrainingConfig,
    output_dir: str | Path,
    *,
    resume: bool = False,
    metadata: dict[str, Any] | None = None,
    inside_pipeline: bool = False,
    write: bool = True,
) -> TrainingResult:
    """Train, keep the best epoch by val/recall@10, save it to ``output_dir/model``.

    ``write=False``: the checkpoint is returned in memory only, for a caller that writes it
    once itself (the pipeline's materializer), instead of written here and again there.

    ``inside_pipeline``: launched from a pipeline step, where ranks must be spawned, never
    started by re-running the launching command (see :mod:`prime_model.train.strategy`).
    """
    output_dir = Path(output_dir)
    # a file (or a FIFO, ...) there would end the run in a bare NotADirectoryError, late
    check_output_dir(output_dir, "training output folder", ConfigError)
    _check_fit(encoded_train, predictor_config, training_config)
    L.seed_everything(training_config.seed, workers=True, verbose=False)
    module = PredictorLightningModule(predictor_config, training_config)
    datamodule = PredictorDataModule(
        encoded_train,
        encoded_val,
        training_config.batch_size,
        val_batch_size=predictor_config.max_batch_size,
        seed=training_config.seed,
        num_workers=training_config.num_workers,
        conversation_batches=training_config.conversation_batches,
    )
    lightning_dir = output_dir / "lightning"
    # saved after each validation (never mid-epoch), so last.ckpt always has its metrics
    best = ModelCheckpoint(
        dirpath=lightning_dir,
        filename="best",
        monitor=MONITOR,
        mode="max",
        save_last=True,
        save_on_train_epoch_end=False,
    )
    csv_logger = CSVLogger(output_dir, name="logs", version="")
    terminal = is_terminal()
    # Lightning's INFO lines once, through our logging, without its adverts (see prime_model.logs)
    with lightning_logs():
        trainer = _trainer(
            training_config,
            default_root_dir=output_dir,
            max_epochs=training_config.max_epochs,
            max_steps=training_config.max_steps or -1,
            strategy=lightning_strategy(training_config, inside_pipeline=inside_pipeline),
            precision=training_config.precision,
            gradient_clip_val=training_config.gradient_clip_val,
            callbacks=[
                best,
                LearningRateMonitor("step"),
                # a bar on a terminal (on stderr: stdout is for results); elsewhere (a log file,
                # CI, a step's log) a bar shows nothing until it ends: log lines instead
                RichProgressBar(console_kwargs={"stderr": True}) if terminal else LogProgress(),
                *_early_stopping(training_config),
            ],
            logger=csv_logger,
            # small splits have fewer batches (per rank, under DDP) than the interval: log anyway
            log_every_n_steps=max(
                1,
                min(
                    training_config.log_every_n_steps,
                    len(datamodule.train_dataloader()) // (process_count(training_config) or 1),
                ),
            ),
            deterministic=True,
            enable_model_summary=False,
            enable_progress_bar=terminal,
        )
        if inside_pipeline:
            _refuse_relaunch(trainer, training_config)
        # one rank clears the previous run's folders; a script-launched ddp run re-enters here
        # per rank
        ckpt_path = resume_from(output_dir, resume, clear=trainer.is_global_zero)
        with warnings.catch_warnings():
            # resuming reuses both folders on purpose (and the CSV logger appends to metrics.csv,
            # whatever its "will be deleted" note says); fresh runs have cleared them
            warnings.filterwarnings("ignore", message="Experiment logs directory .* is not empty")
            warnings.filterwarnings("ignore", message="Checkpoint directory .* is not empty")
            # lightning 2.6's own pytree helper on torch 2.13: nothing we call or can change
            warnings.filterwarnings(
                "ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning
            )
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    # script-launched ddp: every rank gets here; wait until rank 0 has written its logs
    trainer.strategy.barrier("prime_fit_done")
    net = _best_net(best, module, predictor_config)
    history = read_history(Path(csv_logger.log_dir or output_dir / "logs") / "metrics.csv")
    best_metrics = best_epoch(history)
    warn_if_still_improving(history)
    checkpoint = make_checkpoint(
        net.eval(),
        {
            **(metadata or {}),
            "metrics": best_metrics,
            "dataset_fingerprint": {
                "train": encoded_train.fingerprint(),
                "val": encoded_val.fingerprint(),
            },
            "encoder": {"name": encoded_train.encoder_name, "dim": encoded_train.dim},
            "training_config": training_config.model_dump(),
            "global_step": global_step(trainer, lightning_dir),
        },
    )
    saved_to = output_dir / "model" if write else None
    if saved_to is not None and trainer.is_global_zero:  # (ddp_spawn: the main process)
        write_checkpoint(checkpoint, saved_to, overwrite=True)
        logger.info("best %s=%.4f saved to %s", MONITOR, best_metrics.get(MONITOR, 0), saved_to)
    # the other ranks return only once the checkpoint their result points to exists
    trainer.strategy.barrier("prime_checkpoint_saved")
    return TrainingResult(checkpoint, best_metrics, history, lightning_dir, saved_to)


def _trainer(cfg: TrainingConfig, **options: Any) -> L.Trainer:
    """``L.Trainer`` on the config's hardware; Lightning's own refusals become :class:`ConfigError`.

    Lightning reports a bad accelerator/devices/precision combination with
    ``MisconfigurationException``, ``ValueError``, ``TypeError`` or a missing-module error,
    none of them a :class:`~prime_model.errors.PrimeError`.
    """
    try:
        return L.Trainer(
            accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes, **options
        )
    except (MisconfigurationException, ValueError, TypeError, ImportError) as exc:
        raise ConfigError(
            f"Lightning cannot train with accelerator={cfg.accelerator!r}, "
            f"devices={cfg.devices!r}, num_nodes={cfg.num_nodes}, strategy={cfg.strategy!r}, "
            f"precision={cfg.precision!r} here: {shown(str(exc), 400)}; expected a "
            "combination this machine supports (accelerator: cpu or auto always works)"
        ) from None


def _check_hardware(cfg: TrainingConfig) -> None:
    """A GPU asked for on a machine without one: say so before Lightning starts."""
    accelerator = cfg.accelerator.strip().lower()
    if accelerator in ("gpu", "cuda"):
        count = cuda_device_count()
        if count == 0:
            raise ConfigError(
                f"accelerator {cfg.accelerator!r} asks for a GPU, but no CUDA device is "
                "available on this machine (torch.cuda.is_available() is False); set "
                "accelerator: cpu, or auto to use a GPU only where there is one"
            )
        wanted = cfg.devices if isinstance(cfg.devices, int) else None
        if isinstance(cfg.devices, str) and cfg.devices.strip().isdigit():
            wanted = int(cfg.devices)
        if wanted is not None and wanted > count:
            raise ConfigError(
                f"devices={cfg.devices!r} asks for {wanted} GPUs, but this machine has {count} "
                f"CUDA device(s); set devices to at most {count}, or auto"
            )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"accelerator {cfg.accelerator!r} asks for Apple MPS, which is not available on "
            "this machine; set accelerator: cpu or auto"
        )


def _refuse_relaunch(trainer: L.Trainer, cfg: TrainingConfig) -> None:
    """Inside a step, re-running the launching command would start another pipeline run.

    The config alone cannot always tell (``devices: auto`` on a multi-GPU node lets Lightning
    pick ``ddp``), so this checks the launcher Lightning actually chose.
    """
    launcher = trainer.strategy.launcher
    if isinstance(launcher, _SubprocessScriptLauncher) and trainer.world_size > 1:
        raise ConfigError(
            f"strategy={cfg.strategy!r} with devices={cfg.devices!r}, num_nodes={cfg.num_nodes} "
            f"resolves to {type(trainer.strategy).__name__} on {trainer.world_size} processes, "
            "which re-runs the launching command (the pipeline) in every extra rank; inside a "
            "pipeline set strategy: ddp_spawn and devices to a number"
        )


def _check_fit(
    encoded: EncodedTurns, predictor_config: PredictorConfig, training_config: TrainingConfig
) -> None:
    """Fail before Lightning starts, with both numbers, rather than deep in a matmul."""
    dims = (predictor_config.input_dim, predictor_config.output_dim)
    if dims != (encoded.dim, encoded.dim):
        raise ConfigError(
            f"turns were encoded by {encoded.encoder_name} as {encoded.dim}-d embeddings but the "
            f"predictor has input_dim={dims[0]}, output_dim={dims[1]}"
        )
    _check_hardware(training_config)
    if training_config.precision == "16-mixed" and not torch.cuda.is_available():
        raise ConfigError("precision '16-mixed' needs a CUDA GPU; use '32-true' or 'bf16-mixed'")


def _early_stopping(cfg: TrainingConfig) -> list[EarlyStopping]:
    if cfg.early_stopping_patience is None:
        return []
    # judged after validation only: a run resumed mid-epoch has no val metric at the epoch's end
    return [
        EarlyStopping(
            monitor=MONITOR,
            mode="max",
            patience=cfg.early_stopping_patience,
            min_delta=cfg.early_stopping_min_delta,
            check_on_train_epoch_end=False,
        )
    ]


def _best_net(
    best: ModelCheckpoint, module: PredictorLightningModule, config: PredictorConfig
) -> EmbeddingPredictor:
    """The best epoch's weights (or the final ones when no validation ran)."""
    if not best.best_model_path:
        return module.net
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    net = EmbeddingPredictor(config)
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()})
    return net
