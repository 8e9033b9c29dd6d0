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
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from prime_model.config import PredictorConfig
from prime_model.devices import check_device
from prime_model.errors import PredictorError
from prime_model.model import EmbeddingPredictor, check_shapes, layout_problem, value_problem

logger = logging.getLogger(__name__)

ArrayLike: TypeAlias = npt.NDArray[Any] | Tensor
FloatArray: TypeAlias = npt.NDArray[np.float32]
BoolArray: TypeAlias = npt.NDArray[np.bool_]

DEFAULT_BUCKETS: Final = (1, 8, 32)
BACKENDS: Final = ("eager", "compiled", "onnx", "onnx-int8")


@dataclass(frozen=True)
class Batch:
    """Validated inputs: context B×N×D and query B×D float32, mask B×N bool (True = real turn)."""

    context: FloatArray
    query: FloatArray
    context_mask: BoolArray

    @property
    def size(self) -> int:
        return int(self.query.shape[0])

    def rows(self, start: int, stop: int) -> Batch:
        return Batch(
            self.context[start:stop], self.query[start:stop], self.context_mask[start:stop]
        )

    def padded(self, batch_size: int, context_length: int) -> Batch:
        """Zero rows appended up to ``batch_size`` and masked-out turns prepended (the oldest
        side) up to ``context_length``: the model ignores both, so real rows are unchanged."""
        B, N, D = self.context.shape
        if batch_size == B and context_length == N:
            return self
        context = np.zeros((batch_size, context_length, D), dtype=np.float32)
        context[:B, context_length - N :] = self.context
        mask = np.zeros((batch_size, context_length), dtype=np.bool_)
        mask[:B, context_length - N :] = self.context_mask
        query = np.zeros((batch_size, D), dtype=np.float32)
        query[:B] = self.query
        return Batch(context, query, mask)


_HALF_DTYPES: Final = (torch.bfloat16, torch.float16)


def _as_numpy(name: str, value: object) -> npt.NDArray[Any]:
    if isinstance(value, Tensor):
        problem = layout_problem(name, value)
        if value.device.type == "meta":
            problem = f"{name} is on the meta device and holds no values; expected a real tensor"
        if problem:
            raise PredictorError(problem)
        value = value.detach().cpu()
        # numpy has no bfloat16/float16-on-every-platform story: widen those first
        return (value.float() if value.dtype in _HALF_DTYPES else value).numpy()
    if isinstance(value, np.ndarray):
        return value
    raise PredictorError(
        f"{name} must be a numpy array or a torch.Tensor, got {type(value).__name__}"
    )


def _float32(name: str, value: npt.NDArray[Any]) -> FloatArray:
    if value.dtype.kind != "f":
        raise PredictorError(f"{name} must be a floating-point array, got dtype {value.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
        out = np.ascontiguousarray(value, dtype=np.float32)
    finite_as_float32 = bool(np.isfinite(out).all())
    problem = value_problem(
        name,
        str(value.dtype),
        finite=finite_as_float32 or bool(np.isfinite(value).all()),
        finite_as_float32=finite_as_float32,
        max_abs=float(np.abs(out).max()) if finite_as_float32 and out.size else 0.0,
    )
    if problem:
        raise PredictorError(problem)
    return out


def prepare_inputs(
    config: PredictorConfig,
    context: ArrayLike,
    query: ArrayLike,
    context_mask: ArrayLike | None = None,
) -> Batch:
    """Convert to contiguous float32/bool numpy and check shapes and values like the model does.

    A missing mask means every turn is real; the model treats that exactly like an all-True mask.
    """
    ctx = _as_numpy("context", context)
    qry = _as_numpy("query", query)
    B, N = check_shapes(config, ctx.shape, qry.shape, inference=True)
    if context_mask is None:
        mask = np.ones((B, N), dtype=np.bool_)
    else:
        raw = _as_numpy("context_mask", context_mask)
        if raw.dtype != np.bool_:
            raise PredictorError(f"context_mask must be bool (True = real turn), got {raw.dtype}")
        if raw.shape != (B, N):
            raise PredictorError(f"context_mask must have shape (B, N) = {(B, N)}, got {raw.shape}")
        mask = np.ascontiguousarray(raw)
    return Batch(_float32("context", ctx), _float32("query", qry), mask)


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
    ) -> FloatArray:
        """Predicted target embeddings (B×D_out float32, unit rows) for B conversations.

        context B×N×D (oldest turn first, N <= max_context_length), query B×D and an optional
        bool mask B×N (True = real turn), as numpy arrays or tensors on any device.
        """
        batch = prepare_inputs(self.config, context, query, context_mask)
        return self.predict_batch(batch)

    def predict_batch(self, batch: Batch) -> FloatArray:
        """``predict`` for inputs already validated by :func:`prepare_inputs` (benchmarks)."""
        out = self._predict(batch)
        return np.ascontiguousarray(out, dtype=np.float32)

    @abstractmethod
    def _predict(self, batch: Batch) -> FloatArray: ...

    def warmup(self) -> None:
        """Run once before serving so the first request pays no lazy set-up (allocator arenas,
        kernel selection); backends with static shapes warm each shape. Idempotent."""
        if getattr(self, "_warmed_up", False):
            return
        D, N = self.config.input_dim, self.config.max_context_length
        self.predict_batch(
            Batch(
                np.zeros((1, N, D), dtype=np.float32),
                np.zeros((1, D), dtype=np.float32),
                np.ones((1, N), dtype=np.bool_),
            )
        )
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
            out = self.model(
                torch.from_numpy(batch.context).to(self.device),
                torch.from_numpy(batch.query).to(self.device),
                torch.from_numpy(batch.context_mask).to(self.device),
            )
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

    def forward(self, context: Tensor, query: Tensor, context_mask: Tensor | None = None) -> Tensor:
        return torch.from_numpy(self.predictor.predict(context, query, context_mask))
