"""Training throughput (samples/s) of each predictor preset, measured side by side in one run.

Random EncodedTurns of the preset's dims (B=64, N=10 turns): the step cost does not depend on what
the vectors hold. The first steps (allocation, warm-up) are excluded.

    .venv/bin/python -m benchmarks.training_throughput [--steps 30] [--presets minilm default]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import lightning as L  # noqa: N812
import torch

from prime_model import TrainingConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.presets import predictor_config
from prime_model.train.datamodule import PredictorDataModule
from prime_model.train.lightning_module import PredictorLightningModule

logger = logging.getLogger("benchmarks.training_throughput")
WARMUP_STEPS = 3


class _StepTimer(L.Callback):
    """Wall time of the training steps after the warm-up ones."""

    def __init__(self) -> None:
        self.start = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == WARMUP_STEPS:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step > WARMUP_STEPS:
            self.steps += 1


def _unit(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, generator=gen), dim=-1)


def random_turns(m: int, n: int, d: int) -> EncodedTurns:
    gen = torch.Generator().manual_seed(0)
    return EncodedTurns(
        context=_unit(gen, m, n, d), context_mask=torch.ones(m, n, dtype=torch.bool),
        query=_unit(gen, m, d), target=_unit(gen, m, d), target_index=torch.arange(m),
        corpus=_unit(gen, m, d), conversation_ids=[str(i) for i in range(m)],
        turns=torch.zeros(m, dtype=torch.long), corpus_ids=[str(i) for i in range(m)],
        encoder_name="random", dim=d,
    )  # fmt: skip


def measure(preset: str, steps: int, batch_size: int = 64) -> dict[str, float | str]:
    config = predictor_config(preset)
    n = config.max_context_length
    turns = random_turns(batch_size * (steps + WARMUP_STEPS + 1), n, config.input_dim)
    training = TrainingConfig(batch_size=batch_size, warmup_steps=0, max_epochs=1)
    timer = _StepTimer()
    trainer = L.Trainer(
        max_steps=steps + WARMUP_STEPS, accelerator="cpu", logger=False, callbacks=[timer],
        enable_checkpointing=False, limit_val_batches=0, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    module = PredictorLightningModule(config, training)
    trainer.fit(module, datamodule=PredictorDataModule(turns, turns, batch_size))
    seconds = time.perf_counter() - timer.start
    params = sum(p.numel() for p in module.net.parameters())
    return {
        "preset": preset,
        "parameters_m": round(params / 1e6, 1),
        "samples_per_s": round(timer.steps * batch_size / seconds, 1),
        "steps_per_s": round(timer.steps / seconds, 2),
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--presets", nargs="+", default=["minilm", "default"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [measure(p, args.steps) for p in args.presets]
    sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    if len(rows) > 1:
        ratio = float(rows[0]["samples_per_s"]) / float(rows[1]["samples_per_s"])
        sys.stdout.write(f"{rows[0]['preset']} / {rows[1]['preset']}: {ratio:.1f}x samples/s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
