"""Latency benchmark of every inference backend against the eager model, in one run.

Machines of the same class differ 2-3x in speed and are often shared, so absolute milliseconds do
not travel: what this reports are ratios measured in the same process, with backends timed in
interleaved rounds so background load hits all of them alike: speedup vs eager, p50 against the
weight-streaming floor (weight bytes / read bandwidth measured on the spot, what batch 1 costs
at best) and achieved GFLOP/s against a matmul peak measured on the spot (what batch 32 can reach).
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import PredictorConfig
from prime_model.encoding import EncodedTurns
from prime_model.errors import ConfigError
from prime_model.inference import (
    BACKENDS,
    Batch,
    FloatArray,
    InferencePredictor,
    ParityStats,
    model_weight_bytes,
    parity,
    to_numpy,
)
from prime_model.metrics import gold_ranks, metrics_from_ranks
from prime_model.model import EmbeddingPredictor
from prime_model.optimized import OptimizedPredictor, create_predictor
from prime_model.serving import serving_flops

logger = logging.getLogger(__name__)

EAGER: Final = "eager"
DEFAULT_BATCH_SIZES: Final = (1, 8, 32)
RECALL_TOLERANCE: Final = 0.01
SYNTHETIC_ROWS: Final = 256
_PEAK_SIZE: Final = 2048
_BANDWIDTH_BYTES: Final = 512 * 1024 * 1024  # far beyond any L3


class BenchmarkRow(BaseModel):
    """One backend at one batch size."""

    model_config = ConfigDict(frozen=True)

    backend: str
    batch_size: int
    runs: int
    p50_ms: float
    p95_ms: float
    throughput: float = Field(description="conversations per second at p50")
    speedup_vs_eager: float = Field(description="eager p50 / this p50, same run")
    parity_vs_eager: ParityStats
    gflops: float = Field(description="model FLOPs / p50")
    peak_fraction: float = Field(description="gflops / measured fp32 matmul peak")
    floor_ms: float = Field(description="this backend's weight bytes / measured read bandwidth")
    floor_ratio: float = Field(description="p50 / floor_ms (1.0 = streaming the weights once)")


class RecallCheck(BaseModel):
    """Recall@10 of every backend on one evaluation set, and each drop against eager."""

    model_config = ConfigDict(frozen=True)

    source: str
    rows: int
    recall_at_10: dict[str, float]
    drop_vs_eager: dict[str, float]
    tolerance: float = RECALL_TOLERANCE

    def holds(self, backend: str) -> bool:
        return self.drop_vs_eager[backend] <= self.tolerance + 1e-12


class Machine(BaseModel):
    model_config = ConfigDict(frozen=True)

    processor: str
    torch_threads: int
    torch_version: str
    onnxruntime_version: str | None
    device: str


class BenchmarkReport(BaseModel):
    """Everything one benchmark run measured; ``to_markdown``/``to_html``/``model_dump_json``."""

    model_config = ConfigDict(frozen=True)

    title: str
    predictor_config: PredictorConfig
    context_turns: int
    machine: Machine
    matmul_peak_gflops: float
    read_bandwidth_gbs: float
    flops_per_row: dict[str, int] = Field(
        description="FLOPs one conversation costs each backend: eager runs the whole model, the "
        "others the serving graph (prime_model.serving), so GFLOP/s counts work actually done"
    )
    weight_bytes: dict[str, int]
    setup_seconds: dict[str, float]
    rows: list[BenchmarkRow]
    recall: RecallCheck | None = None
    notes: list[str] = Field(default_factory=list)

    def row(self, backend: str, batch_size: int) -> BenchmarkRow:
        for row in self.rows:
            if (row.backend, row.batch_size) == (backend, batch_size):
                return row
        raise KeyError(f"no row for backend {backend!r} at batch size {batch_size}")

    def to_markdown(self) -> str:
        from prime_model.benchmark_report import render_markdown  # noqa: PLC0415 - cycle

        return render_markdown(self)

    def to_html(self) -> str:
        from prime_model.benchmark_report import render_html  # noqa: PLC0415 - cycle

        return render_html(self)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def model_flops(config: PredictorConfig, context_turns: int) -> int:
    """Multiply-adds x 2 of one conversation's forward pass (S = N + 2 tokens, all layers)."""
    D, H, N = config.input_dim, config.hidden_dim, context_turns
    S, width = N + 2, config.mlp_ratio * config.hidden_dim
    embed = 2 * N * D * H + 2 * D * H
    block = 2 * S * H * (3 * H + H + 2 * width) + 2 * 2 * S * S * H
    return embed + config.num_layers * block + 2 * H * config.output_dim


def _best_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def measure_matmul_peak(
    device: torch.device | None = None, size: int = _PEAK_SIZE, repeats: int = 5
) -> float:
    """Best fp32 GFLOP/s of a square matmul with torch's threads: the compute roof."""
    device = device or torch.device("cpu")
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    return 2 * size**3 / _best_seconds(lambda: torch.mm(a, b), device, repeats) / 1e9


def measure_read_bandwidth(
    device: torch.device | None = None, nbytes: int = _BANDWIDTH_BYTES, repeats: int = 5
) -> float:
    """Best GB/s of summing a buffer far larger than the caches: the weight-streaming roof."""
    device = device or torch.device("cpu")
    buffer = torch.ones(nbytes // 4, device=device)
    return nbytes / _best_seconds(buffer.sum, device, repeats) / 1e9


def random_batch(config: PredictorConfig, batch_size: int, turns: int, seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    context = rng.standard_normal((batch_size, turns, config.input_dim)).astype(np.float32)
    query = rng.standard_normal((batch_size, config.input_dim)).astype(np.float32)
    norm = np.linalg.norm
    return Batch(
        context / norm(context, axis=-1, keepdims=True),
        query / norm(query, axis=-1, keepdims=True),
        np.ones((batch_size, turns), dtype=np.bool_),
    )


def _machine(device: torch.device) -> Machine:
    try:
        import onnxruntime  # noqa: PLC0415 - optional

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:  # noqa: PTH123
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        processor = names[0] if names else processor
    except OSError:
        pass
    return Machine(
        processor=processor,
        torch_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        onnxruntime_version=ort_version,
        device=str(device),
    )


def _build(
    model: EmbeddingPredictor, backends: Sequence[str], device: torch.device
) -> tuple[dict[str, InferencePredictor], dict[str, float], list[str]]:
    """Every non-eager predictor, warmed up; onnx-int8 reuses the fp32 export."""
    predictors: dict[str, InferencePredictor] = {}
    seconds: dict[str, float] = {}
    notes: list[str] = []
    for backend in backends:
        if backend == EAGER:
            continue
        start = time.perf_counter()
        fp32 = predictors.get("onnx")
        if backend == "onnx-int8" and fp32 is not None:
            from prime_model.onnx_runtime import OnnxPredictor  # noqa: PLC0415 - heavy

            assert isinstance(fp32, OnnxPredictor)  # noqa: S101 - built just above
            predictor: InferencePredictor = fp32.quantized()
        else:
            predictor = create_predictor(model, backend, device)
        predictor.warmup()
        seconds[backend] = time.perf_counter() - start
        if isinstance(predictor, OptimizedPredictor) and not predictor.compiled:
            notes.append(f"compiled: torch.compile failed ({predictor.fallback_reason}); eager")
        if backend == "onnx-int8":
            notes.append(
                "onnx-int8 is quantised in memory with the default options; it is accepted "
                "only if Recall@10 holds (see the recall section)"
            )
        predictors[backend] = predictor
        logger.info("%s ready in %.1f s", backend, seconds[backend])
    return predictors, seconds, notes


def _eager_call(model: EmbeddingPredictor, batch: Batch, device: torch.device) -> FloatArray:
    """The plain model forward on tensors: the baseline is not slowed by any conversion."""
    with torch.inference_mode():
        return to_numpy(
            model(
                torch.from_numpy(batch.context).to(device),
                torch.from_numpy(batch.query).to(device),
                torch.from_numpy(batch.context_mask).to(device),
            )
        )


def _time_batch(
    model: EmbeddingPredictor,
    predictors: dict[str, InferencePredictor],
    batch: Batch,
    *,
    device: torch.device,
    repeats: int,
    budget_s: float | None,
) -> tuple[dict[str, list[float]], dict[str, FloatArray]]:
    """Interleaved rounds: each round times every backend once, in the same order. Backends
    other than eager go through ``predict`` (numpy in, validation, numpy out), as users call it."""
    calls: dict[str, Callable[[], FloatArray]] = {EAGER: partial(_eager_call, model, batch, device)}
    for name, predictor in predictors.items():
        calls[name] = partial(predictor.predict, batch.context, batch.query, batch.context_mask)
    outputs = {name: call() for name, call in calls.items()}  # warm: allocations, caches
    times: dict[str, list[float]] = {name: [] for name in calls}
    started = time.perf_counter()
    for round_ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
        if budget_s is not None and round_ >= 4 and time.perf_counter() - started > budget_s:
            logger.info("batch %d: time budget reached after %d rounds", batch.size, round_ + 1)
            break
    return times, outputs


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _recall(
    model: EmbeddingPredictor,
    predictors: dict[str, InferencePredictor],
    evaluation: EncodedTurns | None,
    device: torch.device,
) -> RecallCheck | None:
    """Recall@10 per backend on ``evaluation``, or on a synthetic self-retrieval set: corpus =
    eager predictions for random conversations, each query's gold = its own eager prediction
    (eager scores 1.0 by construction; a backend loses recall when its error moves a prediction
    past its neighbours, which is stricter than real retrieval)."""
    size = model.config.max_batch_size or 256
    if evaluation is not None:
        batches = [
            Batch(
                evaluation.context[i : i + size].float().numpy(),
                evaluation.query[i : i + size].float().numpy(),
                evaluation.context_mask[i : i + size].numpy(),
            )
            for i in range(0, len(evaluation), size)
        ]
        corpus, gold = evaluation.corpus.float(), evaluation.target_index
        source = f"evaluation set ({len(evaluation)} turns, corpus {corpus.shape[0]})"
    else:
        turns = model.config.max_context_length
        batches = [
            random_batch(model.config, size, turns, seed=100 + i)
            for i in range(0, SYNTHETIC_ROWS, size)
        ]
        corpus = torch.from_numpy(np.concatenate([_eager_call(model, b, device) for b in batches]))
        gold = torch.arange(corpus.shape[0])
        source = f"synthetic self-retrieval ({corpus.shape[0]} random conversations)"
    if corpus.shape[1] != model.config.output_dim:
        return None
    recall: dict[str, float] = {}
    for name in (EAGER, *predictors):
        if name == EAGER:
            pred = np.concatenate([_eager_call(model, b, device) for b in batches])
        else:
            pred = np.concatenate([predictors[name].predict_batch(b) for b in batches])
        ranks = gold_ranks(torch.from_numpy(pred), corpus, gold)
        recall[name] = metrics_from_ranks(ranks)["recall@10"]
    drops = {name: recall[EAGER] - value for name, value in recall.items()}
    return RecallCheck(source=source, rows=len(gold), recall_at_10=recall, drop_vs_eager=drops)


def run_benchmark(
    model: EmbeddingPredictor,
    backends: Sequence[str] = BACKENDS,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    *,
    context_turns: int | None = None,
    repeats: int = 20,
    budget_s: float | None = 60.0,
    device: str | torch.device | None = None,
    evaluation: EncodedTurns | None = None,
    title: str = "PRIME predictor inference benchmark",
    seed: int = 0,
) -> BenchmarkReport:
    """Time ``backends`` against the eager model at each batch size (interleaved, after warmup).

    ``context_turns`` defaults to max_context_length; ``budget_s`` caps the timed rounds per batch
    size (at least 5 rounds run). ``evaluation`` (encoded turns) adds a Recall@10 check per
    backend; without it a synthetic self-retrieval set is used.
    """
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(f"unknown backends {unknown or '[]'}; expected some of {BACKENDS}")
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive, got {list(batch_sizes)}")
    cfg = model.config
    limit = cfg.max_batch_size
    if limit is not None and max(batch_sizes) > limit:
        raise ConfigError(f"batch size {max(batch_sizes)} exceeds max_batch_size={limit}")
    turns = cfg.max_context_length if context_turns is None else context_turns
    if not 0 <= turns <= cfg.max_context_length:
        raise ConfigError(f"context_turns must be in [0, {cfg.max_context_length}], got {turns}")
    target = torch.device(device) if device is not None else model.pred_token.device
    model = model.to(target).eval()
    ordered = [EAGER, *[b for b in dict.fromkeys(backends) if b != EAGER]]
    predictors, setup, notes = _build(model, ordered, target)
    peak, bandwidth = measure_matmul_peak(target), measure_read_bandwidth(target)
    flops = {EAGER: model_flops(cfg, turns)} | {n: serving_flops(cfg, turns) for n in predictors}
    weights = {EAGER: model_weight_bytes(model)} | {
        n: p.weight_bytes for n, p in predictors.items()
    }
    rows = []
    for batch_size in batch_sizes:
        batch = random_batch(cfg, batch_size, turns, seed + batch_size)
        times, outputs = _time_batch(
            model, predictors, batch, device=target, repeats=repeats, budget_s=budget_s
        )
        eager_p50 = statistics.median(times[EAGER])
        for name in ordered:
            p50 = statistics.median(times[name])
            floor = weights[name] / (bandwidth * 1e9)
            rows.append(
                BenchmarkRow(
                    backend=name,
                    batch_size=batch_size,
                    runs=len(times[name]),
                    p50_ms=p50 * 1e3,
                    p95_ms=_percentile(times[name], 95) * 1e3,
                    throughput=batch_size / p50,
                    speedup_vs_eager=eager_p50 / p50,
                    parity_vs_eager=parity(outputs[name], outputs[EAGER]),
                    gflops=flops[name] * batch_size / p50 / 1e9,
                    peak_fraction=flops[name] * batch_size / p50 / 1e9 / peak,
                    floor_ms=floor * 1e3,
                    floor_ratio=p50 / floor,
                )
            )
        logger.info("batch %d done (%d rounds)", batch_size, len(times[EAGER]))
    return BenchmarkReport(
        title=title,
        predictor_config=cfg,
        context_turns=turns,
        machine=_machine(target),
        matmul_peak_gflops=peak,
        read_bandwidth_gbs=bandwidth,
        flops_per_row=flops,
        weight_bytes=weights,
        setup_seconds=setup,
        rows=rows,
        recall=_recall(model, predictors, evaluation, target),
        notes=notes,
    )
