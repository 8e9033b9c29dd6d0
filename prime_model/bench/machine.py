"""What the machine can do and what a forward pass costs: the benchmark's two roofs.

The fp32 matmul peak (the compute roof batch 32 runs into) and the read bandwidth (the
weight-streaming roof of batch 1) are measured on the spot, since machines of one class differ
2-3x and are often shared; the FLOPs of the eager forward pass are counted from the config.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Final

import torch
from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import PredictorConfig
from prime_model.runtime.cpu import instruction_set

_PEAK_SIZE: Final = 2048
_BANDWIDTH_BYTES: Final = 512 * 1024 * 1024  # far beyond any L3


class Machine(BaseModel):
    model_config = ConfigDict(frozen=True)

    processor: str
    instruction_set: str = Field("unknown", description="int8-relevant class, e.g. avx2")
    cpu_features: tuple[str, ...] = ()
    torch_threads: int
    torch_version: str
    onnxruntime_version: str | None
    device: str


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


def describe_machine(device: torch.device) -> Machine:
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
    cpu = instruction_set()
    return Machine(
        processor=processor,
        instruction_set=cpu.label,
        cpu_features=cpu.features,
        torch_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        onnxruntime_version=ort_version,
        device=str(device),
    )
