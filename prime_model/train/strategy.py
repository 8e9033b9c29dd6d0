"""Which Lightning strategy to train with, given the config and where training was launched.

Lightning's ``ddp`` and ``fsdp`` (and ``auto`` on several devices, which picks ``ddp``) start
each extra rank by re-running the launching command. From a script that only trains, that is
the intended design. Inside a pipeline step the launching command is the pipeline run itself, so
every extra rank would start another pipeline run; ``ddp_spawn`` starts the ranks as child
processes of the step instead and hands rank 0's results back to it.
"""

from __future__ import annotations

import logging

from prime_model.config import TrainingConfig
from prime_model.errors import ConfigError

logger = logging.getLogger(__name__)

SPAWN = "ddp_spawn"


def process_count(config: TrainingConfig) -> int | None:
    """Ranks the config asks for, or None when Lightning decides (``devices: auto``, ``-1``)."""
    devices = config.devices
    if isinstance(devices, str):
        text = devices.strip()
        if text.isdigit():
            devices = int(text)
        elif "," in text:  # "0,1": a list of device indices
            devices = len([part for part in text.split(",") if part.strip()])
        else:
            return None
    return devices * config.num_nodes


def lightning_strategy(config: TrainingConfig, *, inside_pipeline: bool = False) -> str:
    """The ``strategy`` for ``L.Trainer``: the config's, made safe to run inside a pipeline step."""
    if not inside_pipeline:
        return config.strategy
    processes = process_count(config)
    if config.strategy == "ddp":
        logger.warning(
            "strategy 'ddp' inside a pipeline step would re-run the pipeline in every extra "
            "rank; using 'ddp_spawn' instead"
        )
        return SPAWN
    if config.strategy == "auto" and processes is not None and processes > 1:
        logger.info("%d training processes inside a pipeline step: using 'ddp_spawn'", processes)
        return SPAWN
    if config.strategy == "fsdp" and processes is not None and processes > 1:
        raise ConfigError(
            f"strategy 'fsdp' on {processes} processes inside a pipeline step would re-run the "
            "pipeline in every extra rank (Lightning has no spawning FSDP launcher); use "
            "strategy 'ddp_spawn' in a pipeline, or run FSDP from a training script"
        )
    return config.strategy
