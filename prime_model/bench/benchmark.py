"""Latency benchmark of every inference backend against the eager model, in one run.

Machines of the same class differ 2-3x in speed and are often shared, so absolute milliseconds do
not travel: what this reports are ratios measured in the same process, with backends timed in
interleaved rounds so background load hits all of them alike: speedup vs eager, p50 against the
weight-streaming floor (weight bytes / read bandwidth measured on the spot, what batch 1 costs
at best) and achieved GFLOP/s against a matmul peak measured on the spot (what batch 32 can reach;
both roofs are measured in :mod:`prime_model.bench.machine`).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

import numpy as np
import torch

from prime_model.bench.machine import (
    describe_machine,
    measure_matmul_peak,
    measure_read_bandwidth,
    model_flops,
)
from prime_model.bench.recall import EAGER, eager_call, recall_check, synthetic_turns
from prime_model.bench.report import BenchmarkReport, BenchmarkRow
from prime_model.bench.timing import interleaved_seconds
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import ConfigError
from prime_model.export.build import build_predictor, quantized
from prime_model.export.int8 import quantize_verified
from prime_model.export.quantize import AcceptanceRule, QuantizationResult, choose_quantization
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.calibration import random_batch
from prime_model.runtime.inference import (
    BACKENDS,
    Batch,
    FloatArray,
    InferencePredictor,
    model_weight_bytes,
    parity,
)
from prime_model.runtime.onnx_runtime import OnnxPredictor
from prime_model.runtime.optimized import OptimizedPredictor
from prime_model.runtime.serving import serving_flops

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZES: Final = (1, 8, 32)


def _build(
    model: EmbeddingPredictor,
    backends: Sequence[str],
    device: torch.device,
    calibration: Callable[[InferencePredictor], EncodedTurns | None],
    repeats: int,
) -> tuple[dict[str, InferencePredictor], dict[str, float], list[str], QuantizationResult | None]:
    """Every non-eager predictor, warmed up. onnx-int8 is the scheme
    :func:`~prime_model.export.quantize.choose_quantization` picks for this CPU from the fp32
    export (its first candidate, with a note, when none holds)."""
    predictors: dict[str, InferencePredictor] = {}
    seconds: dict[str, float] = {}
    notes: list[str] = []
    verdict: QuantizationResult | None = None
    for backend in backends:
        if backend == EAGER:
            continue
        start = time.perf_counter()
        if backend == "onnx-int8":
            fp32 = predictors.get("onnx") or build_predictor(model, "onnx", device)
            predictor, verdict, note = _int8(fp32, calibration(fp32), repeats)
            notes.append(note)
        else:
            predictor = build_predictor(model, backend, device)
        predictor.warmup()
        seconds[backend] = time.perf_counter() - start
        if isinstance(predictor, OptimizedPredictor) and not predictor.compiled:
            notes.append(f"compiled: torch.compile failed ({predictor.fallback_reason}); eager")
        predictors[backend] = predictor
        logger.debug("%s ready in %.1f s", backend, seconds[backend])
    return predictors, seconds, notes, verdict


def _int8(
    fp32: InferencePredictor, calibration: EncodedTurns | None, repeats: int
) -> tuple[InferencePredictor, QuantizationResult | None, str]:
    if not isinstance(fp32, OnnxPredictor):
        raise ConfigError(f"onnx-int8 needs the fp32 ONNX model, got {type(fp32).__name__}")
    if calibration is None:
        return quantized(fp32), None, "onnx-int8: this CPU's default scheme, not judged"
    rule = AcceptanceRule(repeats=repeats)
    int8, verdict = choose_quantization(fp32.onnx_model, calibration, rule=rule)
    if int8 is not None:
        return OnnxPredictor(int8), verdict, f"onnx-int8: {verdict.summary()}"
    fallback = OnnxPredictor(quantize_verified(fp32.onnx_model, verdict.options))
    return fallback, verdict, f"onnx-int8 ({verdict.options.label}) shown, but {verdict.summary()}"


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
    calls: dict[str, Callable[[], FloatArray]] = {EAGER: partial(eager_call, model, batch, device)}
    for name, predictor in predictors.items():
        calls[name] = partial(
            predictor.predict,
            batch.context,
            batch.query,
            batch.context_mask,
            batch.context_roles,
            batch.concat,
        )
    outputs = {name: call() for name, call in calls.items()}
    timed = interleaved_seconds(list(calls.values()), repeats, budget_s=budget_s)
    times = dict(zip(calls, timed, strict=True))
    logger.debug("batch %d: %d timed calls per backend", batch.size, len(timed[0]))
    return times, outputs


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


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
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")

    def calibration(fp32: InferencePredictor) -> EncodedTurns | None:
        return evaluation if evaluation is not None else synthetic_turns(fp32)

    predictors, setup, notes, verdict = _build(model, ordered, target, calibration, repeats)
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
        logger.debug("batch %d done (%d rounds)", batch_size, len(times[EAGER]))
    return BenchmarkReport(
        title=title,
        predictor_config=cfg,
        context_turns=turns,
        machine=describe_machine(target),
        matmul_peak_gflops=peak,
        read_bandwidth_gbs=bandwidth,
        flops_per_row=flops,
        weight_bytes=weights,
        setup_seconds=setup,
        rows=rows,
        recall=recall_check(model, predictors, evaluation, target),
        quantization=verdict,
        notes=notes,
    )
