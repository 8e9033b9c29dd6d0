"""The pipeline's latency benchmark: the trained model, plus named presets for comparison.

The trained model is small (the MiniLM preset), where batch-1 latency is dominated by per-call
overhead; the seed's default preset is where weight streaming dominates and the speedup targets
are stated. Reporting both in one step shows the user what each backend buys at either scale.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from prime_model.bench.benchmark import DEFAULT_BATCH_SIZES, run_benchmark
from prime_model.bench.presets import random_model
from prime_model.bench.report import BenchmarkReport, render_section
from prime_model.bench.report_html import render_page
from prime_model.config import FrozenConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.model import EmbeddingPredictor
from prime_model.presets import predictor_config
from prime_model.runtime.inference import BACKENDS

logger = logging.getLogger(__name__)


class BenchmarkConfig(FrozenConfig):
    """What ``benchmark_latency`` measures; ``presets: []`` benchmarks the trained model only."""

    backends: tuple[str, ...] = Field(BACKENDS, min_length=1)
    batch_sizes: tuple[int, ...] = Field(DEFAULT_BATCH_SIZES, min_length=1)
    presets: tuple[str, ...] = Field(("default",), description="random-weight architectures")
    # compiling the 1024-d preset costs ~30 s and measured near eager on CPU: off by default
    preset_backends: tuple[str, ...] = Field(("eager", "onnx", "onnx-int8"), min_length=1)
    preset_batch_sizes: tuple[int, ...] = Field((1,), min_length=1)
    budget_s: float = Field(10.0, gt=0, description="timed seconds per batch size, at most")
    repeats: int = Field(20, gt=0, description="timed rounds per batch size, at most")
    device: str = Field("cpu", description="cpu, cuda or auto")
    seed: int = Field(0, ge=0)

    @field_validator("backends", "preset_backends")
    @classmethod
    def _known_backends(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [b for b in value if b not in BACKENDS]
        if unknown:
            raise ValueError(f"unknown backends {unknown}; expected some of {BACKENDS}")
        return value

    @field_validator("batch_sizes", "preset_batch_sizes")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(b < 1 for b in value):
            raise ValueError(f"batch sizes must be positive, got {list(value)}")
        return value


class LatencyBenchmark(BaseModel):
    """One report per benchmarked model: ``trained`` and each preset by name."""

    model_config = ConfigDict(frozen=True)

    trained: BenchmarkReport
    presets: dict[str, BenchmarkReport] = Field(default_factory=dict)

    def reports(self) -> dict[str, BenchmarkReport]:
        return {"trained": self.trained} | {f"preset {k}": v for k, v in self.presets.items()}

    def summary(self) -> dict[str, Any]:
        """Flat p50 / speedup per model, backend and batch size: what model metadata shows."""
        return {
            name: {
                f"{row.backend}@{row.batch_size}": {
                    "p50_ms": round(row.p50_ms, 3),
                    "p95_ms": round(row.p95_ms, 3),
                    "speedup_vs_eager": round(row.speedup_vs_eager, 3),
                    "min_cosine": round(row.parity_vs_eager.min_cosine, 6),
                }
                for row in report.rows
            }
            for name, report in self.reports().items()
        }

    def to_markdown(self) -> str:
        return "\n\n".join(report.to_markdown() for report in self.reports().values())

    def to_html(self) -> str:
        """Every report as a section of one page: no nested frames, which the dashboard's
        fixed-height visualisation frame would clip."""
        sections = [render_section(report, "h2") for report in self.reports().values()]
        names = ", ".join(self.reports())
        return render_page(
            f"Inference benchmark ({names})", [f"<h1>Latency: {html.escape(names)}</h1>", *sections]
        )


def benchmark_latency(
    model: EmbeddingPredictor, evaluation: EncodedTurns | None, config: BenchmarkConfig
) -> LatencyBenchmark:
    """Benchmark the trained model (Recall@10 check on ``evaluation``) and each preset."""
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    common: dict[str, Any] = {
        "repeats": config.repeats,
        "budget_s": config.budget_s,
        "device": device,
        "seed": config.seed,
    }
    trained = run_benchmark(
        model,
        backends=config.backends,
        batch_sizes=_fit(config.batch_sizes, model),
        evaluation=evaluation,
        title="Inference benchmark: the trained model",
        **common,
    )
    presets = {}
    for name in config.presets:
        preset_model = random_model(predictor_config(name), config.seed)
        presets[name] = run_benchmark(
            preset_model,
            backends=config.preset_backends,
            batch_sizes=_fit(config.preset_batch_sizes, preset_model),
            title=f"Inference benchmark: preset {name} (random weights)",
            **common,
        )
    return LatencyBenchmark(trained=trained, presets=presets)


def _fit(batch_sizes: tuple[int, ...], model: EmbeddingPredictor) -> tuple[int, ...]:
    """Batch sizes above the model's max_batch_size are dropped (with a warning) rather than
    failing a run after training: the limit is the model's, known only once it exists."""
    limit = model.config.max_batch_size
    fitting = tuple(b for b in batch_sizes if limit is None or b <= limit)
    if fitting != batch_sizes:
        logger.warning(
            "benchmark batch sizes %s exceed max_batch_size=%s; measuring %s",
            list(batch_sizes),
            limit,
            list(fitting or (1,)),
        )
    return fitting or (1,)
