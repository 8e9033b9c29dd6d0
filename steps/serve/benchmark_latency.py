from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import HTMLString

from prime_model.bench.latency import BenchmarkConfig, LatencyBenchmark
from prime_model.bench.latency import benchmark_latency as measure
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoding import EncodedTurns
from steps._metadata import log_step_metadata


@step
def benchmark_latency(
    predictor_checkpoint: PredictorCheckpoint,
    encoded_test: EncodedTurns,
    benchmark: BenchmarkConfig,
) -> tuple[
    Annotated[LatencyBenchmark, "latency_benchmark"], Annotated[HTMLString, "latency_report"]
]:
    """p50/p95, speedup and parity of every backend vs eager, measured side by side."""
    result = measure(predictor_checkpoint.model, encoded_test, benchmark)
    log_step_metadata(
        {"latency": result.summary()}, artifact_name="latency_benchmark", infer_artifact=True
    )
    return result, HTMLString(result.to_html())
