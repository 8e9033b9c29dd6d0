"""Fast inference on torch: :class:`OptimizedPredictor` (torch.compile on static shapes).

Static shapes are what make compiled graphs pay off: every request is padded up to one of a few
batch buckets and to ``max_context_length`` turns (padded rows and turns are masked out, so real
rows do not change), so each bucket is compiled once, in :meth:`OptimizedPredictor.warmup`, and
reused; on CUDA ``reduce-overhead`` additionally captures each bucket as a CUDA graph.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import numpy as np
import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from prime_model.devices import check_device
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.inference import (
    DEFAULT_BUCKETS,
    Batch,
    FloatArray,
    InferencePredictor,
    batch_buckets,
    bucket_for,
    model_weight_bytes,
    to_numpy,
)
from prime_model.runtime.inputs import as_tensors, zero_batch
from prime_model.runtime.serving import ServingForward

logger = logging.getLogger(__name__)

# Measured on the 2-core CPU at the default preset (batch 1, 10 turns), torch 2.13: inductor with
# `freezing` (weights folded as constants and pre-packed for oneDNN) was the fastest CPU setting
# and compiled in half the time of the default mode; max-autotune gained nothing on CPU.
CPU_COMPILE_OPTIONS: Final[dict[str, Any]] = {"freezing": True}
# On CUDA: CUDA graphs remove the per-kernel launch cost that dominates a 12-token forward pass.
CUDA_COMPILE_MODE: Final = "reduce-overhead"
CUDA_GRAPH_WARMUP_RUNS: Final = 3  # cudagraph trees record on a later call than the first


def sdpa_backends(device: torch.device) -> list[SDPBackend]:
    """Fused flash / memory-efficient kernels on CUDA (math as a last resort), math on CPU,
    where a 12-token sequence gains nothing from tiling and the math path fuses under inductor."""
    if device.type == "cuda":
        return [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return [SDPBackend.MATH]


class OptimizedPredictor(InferencePredictor):
    """The model in eval mode behind ``torch.compile``, on static batch buckets and context length.

    ``compile=False`` (or a failing ``torch.compile``, logged as a warning) runs the same static
    shapes eagerly, so a platform without a working compiler still serves. ``dtype`` (e.g.
    ``torch.bfloat16`` on CUDA) runs the matmuls under autocast; outputs are always float32.
    The wrapped model is moved to ``device`` and put in eval mode.
    """

    def __init__(
        self,
        model: EmbeddingPredictor,
        *,
        device: str | torch.device | None = None,
        buckets: Sequence[int] = DEFAULT_BUCKETS,
        compile: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        target = check_device(device) if device is not None else model.pred_token.device
        super().__init__(model.config, target, "compiled")
        self.model = model.to(target).eval()
        self.buckets = batch_buckets(model.config.max_batch_size, buckets)
        self.context_length = model.config.max_context_length
        self.dtype = dtype
        self.sdpa_backends = sdpa_backends(target)
        self.serving = ServingForward(self.model)
        self.fallback_reason: str | None = None
        self._warm: set[int] = set()
        self._compiled: Callable[..., Tensor] | None = None
        if compile:
            self._compiled = self._compile()

    @property
    def compiled(self) -> bool:
        """False once compilation failed (or was never asked for): the eager path serves."""
        return self._compiled is not None

    @property
    def warm_buckets(self) -> tuple[int, ...]:
        return tuple(sorted(self._warm))

    @property
    def weight_bytes(self) -> int:
        return model_weight_bytes(self.model)

    def _compile(self) -> Callable[..., Tensor] | None:
        try:
            if self.device.type == "cuda":
                return torch.compile(
                    self._forward, mode=CUDA_COMPILE_MODE, dynamic=False, fullgraph=True
                )
            return torch.compile(
                self._forward, options=dict(CPU_COMPILE_OPTIONS), dynamic=False, fullgraph=True
            )
        except Exception as exc:  # any compiler/platform failure: serve eagerly instead
            self._fall_back(exc)
            return None

    def _fall_back(self, exc: BaseException) -> None:
        text = " ".join(str(exc).split())  # inductor's messages span lines; keep them readable
        self.fallback_reason = f"{type(exc).__name__}: {text}"[:300]
        logger.warning(
            "torch.compile failed (%s); serving this predictor eagerly on the same static shapes",
            self.fallback_reason,
        )
        self._compiled = None

    def _forward(self, *args: Tensor | None) -> Tensor:
        """:class:`ServingForward` on ``ModelInputs.args()`` (plain tensors: what compiles)."""
        with sdpa_kernel(self.sdpa_backends):
            if self.dtype is None:
                return cast(Tensor, self.serving(*args))
            with torch.autocast(self.device.type, dtype=self.dtype):
                return cast(Tensor, self.serving(*args)).float()

    def _run(self, batch: Batch, *, first: bool = False) -> FloatArray:
        """One padded bucket through the compiled graph (eager if compilation fails).

        ``first``: this call compiles; the compiler's own deprecation warnings (torch internals
        importing torch.jit) are silenced so that ``-W error`` does not turn them into failures.
        """
        args = as_tensors(batch, self.device, self.config).args()  # one signature per model
        with torch.inference_mode():
            if self._compiled is not None:
                try:
                    with warnings.catch_warnings():
                        if first:
                            warnings.simplefilter("ignore", DeprecationWarning)
                        return to_numpy(self._compiled(*args))
                except Exception as exc:  # compile errors surface on the first call
                    self._fall_back(exc)
            return to_numpy(self._forward(*args))

    def _predict(self, batch: Batch) -> FloatArray:
        largest = self.buckets[-1]
        outputs = []
        for start in range(0, batch.size, largest):
            part = batch.rows(start, start + largest)
            bucket = bucket_for(part.size, self.buckets)
            padded = part.padded(bucket, self.context_length)
            outputs.append(self._run(padded, first=bucket not in self._warm)[: part.size])
            self._warm.add(bucket)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def warmup(self) -> None:
        """Compile (and on CUDA capture) every bucket now; buckets already warm are skipped."""
        for bucket in self.buckets:
            if bucket in self._warm:
                continue
            dummy = zero_batch(self.config, bucket, self.context_length)
            runs = CUDA_GRAPH_WARMUP_RUNS if self.device.type == "cuda" and self.compiled else 1
            for run in range(runs):
                self._run(dummy, first=run == 0)
            self._warm.add(bucket)
            logger.debug("warmed up batch bucket %d (compiled=%s)", bucket, self.compiled)
