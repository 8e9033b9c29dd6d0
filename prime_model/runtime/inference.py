"""One inference interface for every backend: numpy arrays or torch tensors in, float32 numpy out.

Callers of a served predictor should not care whether it runs the eager model, a compiled graph or
ONNX Runtime, so every backend subclasses :class:`InferencePredictor`: inputs are converted and
validated once here, with the model's rules and messages (:class:`PredictorError`), before any
backend sees them, so a bad request never surfaces as a raw torch or onnxruntime traceback.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Final, cast

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from prime_model.config import PredictorConfig
from prime_model.devices import check_device
from prime_model.errors import PredictorError
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.inputs import (
    CONCAT_NEEDED,
    ArrayLike,
    Batch,
    BoolArray,
    FloatArray,
    IntArray,
    as_tensors,
    prepare_inputs,
    zero_batch,
)

logger = logging.getLogger(__name__)

__all__ = [  # Batch and friends live in prime_model.runtime.inputs; importers keep this path
    "BACKENDS",
    "DEFAULT_BUCKETS",
    "ArrayLike",
    "Batch",
    "BoolArray",
    "EagerPredictor",
    "FloatArray",
    "InferencePredictor",
    "IntArray",
    "ParityStats",
    "PredictorModule",
    "batch_buckets",
    "bucket_for",
    "model_weight_bytes",
    "parity",
    "prepare_inputs",
    "to_numpy",
]

DEFAULT_BUCKETS: Final = (1, 8, 32)
BACKENDS: Final = ("eager", "compiled", "onnx", "onnx-int8")


def batch_buckets(
    max_batch_size: int | None, requested: Sequence[int] = DEFAULT_BUCKETS
) -> tuple[int, ...]:
    """Sorted static batch sizes: the requested ones the config allows, plus max_batch_size."""
    if not requested or any(size < 1 for size in requested):
        raise PredictorError(f"batch buckets must be positive sizes, got {tuple(requested)}")
    sizes = {size for size in requested if max_batch_size is None or size <= max_batch_size}
    if max_batch_size is not None:
        sizes.add(max_batch_size)
    return tuple(sorted(sizes))


def bucket_for(batch_size: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``batch_size`` rows (callers chunk by the largest)."""
    return next(size for size in buckets if size >= batch_size)


class InferencePredictor(ABC):
    """What every backend offers: ``predict`` → L2-normalised float32 numpy, and ``warmup``.

    ``backend`` names what actually runs ("eager", "compiled", "onnx", "onnx-int8").
    """

    def __init__(self, config: PredictorConfig, device: torch.device, backend: str) -> None:
        self.config = config
        self.device = device
        self.backend = backend

    def predict(
        self,
        context: ArrayLike,
        query: ArrayLike,
        context_mask: ArrayLike | None = None,
        context_roles: ArrayLike | None = None,
        concat: ArrayLike | None = None,
    ) -> FloatArray:
        """Predicted target embeddings (B×D_out float32, unit rows) for B conversations.

        context B×N×D (oldest turn first, N <= max_context_length), query B×D, an optional
        bool mask B×N (True = real turn), optional role ids B×N (0 unknown, 1 user, 2 system)
        and, for a model with ``concat_input``, concat B×D (history + query as one text), as
        numpy arrays or tensors on any device.
        """
        batch = prepare_inputs(
            self.config, context, query, context_mask, context_roles=context_roles, concat=concat
        )
        return self.predict_batch(batch)

    def predict_batch(self, batch: Batch) -> FloatArray:
        """``predict`` for inputs already validated by :func:`prepare_inputs` (benchmarks)."""
        if self.config.concat_input and batch.concat is None:  # every backend, one message
            raise PredictorError(CONCAT_NEEDED)
        out = self._predict(batch)
        return np.ascontiguousarray(out, dtype=np.float32)

    @abstractmethod
    def _predict(self, batch: Batch) -> FloatArray: ...

    def warmup(self) -> None:
        """Run once before serving so the first request pays no lazy set-up (allocator arenas,
        kernel selection); backends with static shapes warm each shape. Idempotent."""
        if getattr(self, "_warmed_up", False):
            return
        self.predict_batch(zero_batch(self.config, 1, self.config.max_context_length))
        self._warmed_up = True

    @property
    @abstractmethod
    def weight_bytes(self) -> int:
        """Bytes of weights one forward pass reads (the batch-1 memory-traffic floor)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, device={self.device})"


def to_numpy(out: Tensor) -> FloatArray:
    """A float32 CPU copy (CUDA graphs reuse their output buffers, so copy at once)."""
    return cast(FloatArray, out.float().cpu().numpy())


def model_weight_bytes(model: EmbeddingPredictor) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


class EagerPredictor(InferencePredictor):
    """The plain model forward under ``inference_mode``: the baseline every backend is held to."""

    def __init__(self, model: EmbeddingPredictor, device: str | torch.device | None = None) -> None:
        target = check_device(device) if device is not None else model.pred_token.device
        super().__init__(model.config, target, "eager")
        self.model = model.to(target).eval()

    def _predict(self, batch: Batch) -> FloatArray:
        with torch.inference_mode():
            out = self.model(*as_tensors(batch, self.device, self.config).args())
        return to_numpy(out)

    @property
    def weight_bytes(self) -> int:
        return model_weight_bytes(self.model)


class ParityStats(BaseModel):
    """How far a backend's outputs are from the reference's on the same inputs."""

    model_config = ConfigDict(frozen=True)

    rows: int = Field(ge=0)
    max_abs_diff: float = Field(ge=0.0)
    min_cosine: float
    mean_cosine: float


def parity(candidate: FloatArray, reference: FloatArray) -> ParityStats:
    """Max element-wise difference and row cosines (rows are unit vectors, but normalise anyway)."""
    if candidate.shape != reference.shape:
        raise PredictorError(
            f"parity needs equal shapes, got {candidate.shape} and {reference.shape}"
        )
    a = candidate.astype(np.float64)
    b = reference.astype(np.float64)
    cosine = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
    return ParityStats(
        rows=int(a.shape[0]),
        max_abs_diff=float(np.abs(a - b).max(initial=0.0)),
        min_cosine=float(cosine.min(initial=1.0)),
        mean_cosine=float(cosine.mean()) if cosine.size else 1.0,
    )


class PredictorModule(EmbeddingPredictor):
    """Any backend behind the :class:`EmbeddingPredictor` interface (``config``, ``pred_token``'s
    device, ``eval``/``train``, ``forward``), so code written for the torch model, such as
    :func:`prime_model.evaluate.evaluation.evaluate`, scores an ONNX or compiled predictor
    unchanged. It holds no weights; ``forward`` returns CPU float32 tensors."""

    def __init__(self, predictor: InferencePredictor) -> None:
        nn.Module.__init__(self)  # not EmbeddingPredictor.__init__: it would allocate weights
        self.config = predictor.config
        self.gradient_checkpointing = False
        self.predictor = predictor
        self.pred_token = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """:meth:`InferencePredictor.predict`'s arguments (the model's forward's), as a tensor."""
        return torch.from_numpy(self.predictor.predict(*args, **kwargs))
