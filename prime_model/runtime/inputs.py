"""Inference inputs: any array in, one validated :class:`Batch` out, with the model's rules.

Every backend takes its inputs from here, so a bad request gets the same
:class:`~prime_model.errors.PredictorError` from eager, compiled and ONNX Runtime alike. Besides
context, query and mask, a batch may carry ``context_roles`` (B×N int64: 0 unknown, 1 user,
2 system) and ``concat`` (B×D: history + query embedded as one text); a model reads them only
with ``role_embedding`` / ``concat_input`` in its config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from prime_model.config import PredictorConfig
from prime_model.errors import PredictorError
from prime_model.model_inputs import (
    NUM_ROLE_IDS,
    ModelInputs,
    check_shapes,
    layout_problem,
    value_problem,
)

ArrayLike: TypeAlias = npt.NDArray[Any] | Tensor
FloatArray: TypeAlias = npt.NDArray[np.float32]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]

CONCAT_NEEDED: Final = (
    "this model reads concat (B×D: history + query embedded as one text by the Y-Encoder); pass it"
)


@dataclass(frozen=True)
class Batch:
    """Validated inputs: context B×N×D and query B×D float32, mask B×N bool (True = real turn);
    optionally roles B×N int64 and concat B×D float32 (None: not given)."""

    context: FloatArray
    query: FloatArray
    context_mask: BoolArray
    context_roles: IntArray | None = None
    concat: FloatArray | None = None

    @property
    def size(self) -> int:
        return int(self.query.shape[0])

    def rows(self, start: int, stop: int) -> Batch:
        roles, concat = self.context_roles, self.concat
        return Batch(
            self.context[start:stop],
            self.query[start:stop],
            self.context_mask[start:stop],
            None if roles is None else roles[start:stop],
            None if concat is None else concat[start:stop],
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
        roles = None
        if self.context_roles is not None:  # padded turns: role 0, like padding in training
            roles = np.zeros((batch_size, context_length), dtype=np.int64)
            roles[:B, context_length - N :] = self.context_roles
        concat = None
        if self.concat is not None:
            concat = np.zeros((batch_size, self.concat.shape[1]), dtype=np.float32)
            concat[:B] = self.concat
        return Batch(context, query, mask, roles, concat)


def zero_batch(config: PredictorConfig, batch_size: int, turns: int) -> Batch:
    """All-zero inputs of one shape, with every input the model reads (warm-up, compilation)."""
    D = config.input_dim
    return Batch(
        np.zeros((batch_size, turns, D), dtype=np.float32),
        np.zeros((batch_size, D), dtype=np.float32),
        np.ones((batch_size, turns), dtype=np.bool_),
        np.zeros((batch_size, turns), dtype=np.int64) if config.role_embedding else None,
        np.zeros((batch_size, D), dtype=np.float32) if config.concat_input else None,
    )


def optional_inputs(
    config: PredictorConfig, batch: Batch
) -> tuple[IntArray | None, FloatArray | None]:
    """(roles, concat) exactly as a model of ``config`` reads them: roles only with
    ``role_embedding`` (all unknown when none were given), concat only with ``concat_input``.

    A graph or compiled function has a fixed signature, so this decides what it is fed."""
    roles = None
    if config.role_embedding:
        roles = batch.context_roles
        if roles is None:
            roles = np.zeros(batch.context_mask.shape, dtype=np.int64)
    if config.concat_input and batch.concat is None:
        raise PredictorError(CONCAT_NEEDED)
    return roles, batch.concat if config.concat_input else None


def as_tensors(
    batch: Batch, device: torch.device | str = "cpu", config: PredictorConfig | None = None
) -> ModelInputs:
    """The batch as tensors on ``device``; with ``config``, roles and concat exactly as
    :func:`optional_inputs` feeds them."""
    roles, concat = (
        (batch.context_roles, batch.concat) if config is None else optional_inputs(config, batch)
    )
    return ModelInputs(
        torch.from_numpy(batch.context).to(device),
        torch.from_numpy(batch.query).to(device),
        torch.from_numpy(batch.context_mask).to(device),
        None if roles is None else torch.from_numpy(roles).to(device),
        None if concat is None else torch.from_numpy(concat).to(device),
    )


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


def _roles(value: ArrayLike, B: int, N: int) -> IntArray:
    raw = _as_numpy("context_roles", value)
    if raw.dtype.kind not in "iu":
        raise PredictorError(
            f"context_roles must be integer role ids (0 unknown, 1 user, 2 system), got dtype "
            f"{raw.dtype}"
        )
    if raw.shape != (B, N):
        raise PredictorError(f"context_roles must have shape (B, N) = {(B, N)}, got {raw.shape}")
    if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= NUM_ROLE_IDS):
        raise PredictorError(
            f"context_roles holds ids outside [0, {NUM_ROLE_IDS}) (min {int(raw.min())}, max "
            f"{int(raw.max())}); expected 0 unknown, 1 user, 2 system"
        )
    return np.ascontiguousarray(raw, dtype=np.int64)


def _concat(config: PredictorConfig, value: ArrayLike | None, B: int) -> FloatArray | None:
    if value is None:
        if config.concat_input:
            raise PredictorError(CONCAT_NEEDED)
        return None
    if not config.concat_input:
        raise PredictorError("concat given but this model has no concat_input; leave it out")
    raw = _as_numpy("concat", value)
    if raw.shape != (B, config.input_dim):
        raise PredictorError(
            f"concat must have shape (B, D) = {(B, config.input_dim)} like query, got {raw.shape}"
        )
    return _float32("concat", raw)


def prepare_inputs(
    config: PredictorConfig,
    context: ArrayLike,
    query: ArrayLike,
    context_mask: ArrayLike | None = None,
    *,
    context_roles: ArrayLike | None = None,
    concat: ArrayLike | None = None,
) -> Batch:
    """Convert to contiguous float32/bool/int64 numpy and check shapes and values like the model.

    A missing mask means every turn is real; the model treats that exactly like an all-True mask.
    Missing roles mean unknown (a model without ``role_embedding`` ignores roles); ``concat`` is
    required exactly when the model has ``concat_input``.
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
    roles = None if context_roles is None else _roles(context_roles, B, N)
    return Batch(
        _float32("context", ctx), _float32("query", qry), mask, roles, _concat(config, concat, B)
    )
