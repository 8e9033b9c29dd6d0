"""What :class:`~prime_model.model.EmbeddingPredictor` reads: one :class:`ModelInputs` bundle,
and the checks on it, which run at the boundary only.

The public ``forward`` and every inference backend (:mod:`prime_model.runtime.inputs`) run them,
so all refuse the same inputs with the same words; the training loop calls ``forward_unchecked``
on turns :class:`~prime_model.encode.encoding.EncodedTurns` already checked, so none of this
(nor its host syncs) runs per training step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import torch
from torch import Tensor

from prime_model.config import PredictorConfig
from prime_model.errors import PredictorError

MAX_INPUT_MAGNITUDE: Final = 1e4
"""Largest |value| accepted in a context or query embedding. Encoders emit vectors of about
unit length, so this is generous; far larger values overflow float32 in the LayerNorm
variance (or already in the cast) and turn the prediction into NaN or noise that differs
between backends, so they are refused rather than served."""
FLOAT32_MAX: Final = float(torch.finfo(torch.float32).max)
NUM_ROLE_IDS: Final = 3  # 0 unknown (and padding), 1 user, 2 system: see data.schema.ROLES


@dataclass(frozen=True)
class ModelInputs:
    """One batch as the model reads it: context B×N×D (oldest turn first), query B×D, and
    optionally a bool mask B×N (True = real turn), role ids B×N (0 unknown, 1 user, 2 system)
    and concat B×D (history + query embedded as one text). The one bundle every forward path
    (eager, training, serving, export) hands on."""

    context: Tensor
    query: Tensor
    context_mask: Tensor | None = None
    context_roles: Tensor | None = None
    concat: Tensor | None = None

    def to(self, dtype: torch.dtype) -> ModelInputs:
        """The embeddings in ``dtype`` (the parameters'); mask and role ids as they are."""
        concat = None if self.concat is None else self.concat.to(dtype)
        return replace(
            self, context=self.context.to(dtype), query=self.query.to(dtype), concat=concat
        )

    def args(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """Positional, in forward's order (for a compiled or traced function)."""
        return (self.context, self.query, self.context_mask, self.context_roles, self.concat)


def value_problem(
    name: str, dtype: str, *, finite: bool, finite_as_float32: bool, max_abs: float
) -> str | None:
    """Why an input's values cannot be served, or None: one wording for every backend.

    ``finite``: as given; ``finite_as_float32``: after the cast to the compute dtype;
    ``max_abs``: the largest magnitude after that cast (only read when both are finite).
    """
    if not finite:
        return f"{name} contains NaN or infinite values; expected finite embeddings"
    if not finite_as_float32:
        return (
            f"{name} ({dtype}) has values beyond float32's range (|x| > {FLOAT32_MAX:.2e}), "
            f"which become infinite when cast to float32; expected |x| <= "
            f"{MAX_INPUT_MAGNITUDE:.0e}"
        )
    if max_abs > MAX_INPUT_MAGNITUDE:
        return (
            f"{name} has values of magnitude up to {max_abs:.3e}, beyond the accepted "
            f"|x| <= {MAX_INPUT_MAGNITUDE:.0e} (embeddings are about unit length; larger values "
            "overflow float32 inside the model): check the encoder's output"
        )
    return None


def layout_problem(name: str, value: Tensor) -> str | None:
    """Sparse and nested tensors have no dense values to check or compute on."""
    if value.layout != torch.strided:
        return (
            f"{name} is a sparse tensor (layout {value.layout}); expected a dense tensor: "
            "call .to_dense() first"
        )
    if value.is_nested:
        return f"{name} is a nested tensor; expected a dense, rectangular tensor"
    return None


def check_shapes(
    config: PredictorConfig,
    context_shape: tuple[int, ...],
    query_shape: tuple[int, ...],
    *,
    inference: bool,
) -> tuple[int, int]:
    """(B, N) of a request, or :class:`PredictorError` naming the shape that does not fit.

    Shared by the model and every inference backend, so all of them refuse the same inputs with
    the same words. ``max_batch_size`` binds at inference only.
    """
    if len(context_shape) != 3:
        raise PredictorError(f"context must have 3 dims (B×N×D), got shape {context_shape}")
    if len(query_shape) != 2:
        raise PredictorError(f"query must have 2 dims (B×D), got shape {query_shape}")
    B, N, D = context_shape
    if B == 0:
        raise PredictorError("empty batch: context and query have B=0 rows; expected B >= 1")
    if query_shape[0] != B:
        raise PredictorError(f"batch sizes differ: context has B={B}, query has B={query_shape[0]}")
    if config.input_dim != D or query_shape[1] != config.input_dim:
        raise PredictorError(
            f"embedding dim mismatch: context D={D}, query D={query_shape[1]}; "
            f"expected input_dim={config.input_dim}"
        )
    if config.max_context_length < N:
        raise PredictorError(
            f"context has N={N} turns, more than max_context_length={config.max_context_length}; "
            "keep the most recent turns"
        )
    if inference and config.max_batch_size is not None and config.max_batch_size < B:
        raise PredictorError(
            f"batch of B={B} exceeds max_batch_size={config.max_batch_size} for inference; "
            "split the batch or raise PredictorConfig.max_batch_size (None lifts the limit)"
        )
    return B, N


def check_inputs(
    config: PredictorConfig, inputs: ModelInputs, weights: Tensor, *, inference: bool
) -> None:
    """Raise :class:`PredictorError` naming what is wrong with ``inputs`` for a model of
    ``config`` whose parameters look like ``weights`` (device, dtype), before any math."""
    for name, value in (("context", inputs.context), ("query", inputs.query)):
        if not isinstance(value, Tensor):
            raise PredictorError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        problem = layout_problem(name, value)
        if problem:
            raise PredictorError(problem)
    context, query = inputs.context, inputs.query
    B, N = check_shapes(config, tuple(context.shape), tuple(query.shape), inference=inference)
    device, dtype = weights.device, weights.dtype
    _check_values("context", context, device, dtype)
    _check_values("query", query, device, dtype)
    if inputs.context_mask is not None:
        _check_mask(inputs.context_mask, B, N, device)
    if inputs.context_roles is not None:
        _check_roles(inputs.context_roles, B, N, device)
    concat = inputs.concat
    if config.concat_input != (concat is not None):
        raise PredictorError(
            "this model reads concat (B×D: history + query embedded as one text); pass it"
            if config.concat_input
            else "concat given but this model has no concat_input; leave it out"
        )
    if concat is not None:
        if not isinstance(concat, Tensor) or tuple(concat.shape) != tuple(query.shape):
            raise PredictorError(
                f"concat must be a tensor shaped like query {tuple(query.shape)}, got "
                f"{getattr(concat, 'shape', type(concat).__name__)}"
            )
        _check_values("concat", concat, device, dtype)


def _check_values(name: str, value: Tensor, device: torch.device, dtype: torch.dtype) -> None:
    if not value.is_floating_point():
        raise PredictorError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if value.device != device:
        raise PredictorError(
            f"{name} is on {value.device} but the model is on {device}; move it with .to()"
        )
    cast_value = value.detach().to(dtype)  # what forward computes on
    finite_as_cast = bool(torch.isfinite(cast_value).all())
    problem = value_problem(
        name,
        str(value.dtype).removeprefix("torch."),
        finite=finite_as_cast or bool(torch.isfinite(value).all()),
        finite_as_float32=finite_as_cast,
        max_abs=float(cast_value.abs().max()) if finite_as_cast and value.numel() else 0.0,
    )
    if problem:
        raise PredictorError(problem)


def _check_mask(context_mask: Tensor, B: int, N: int, device: torch.device) -> None:
    if not isinstance(context_mask, Tensor):
        raise PredictorError(
            f"context_mask must be a torch.Tensor, got {type(context_mask).__name__}"
        )
    problem = layout_problem("context_mask", context_mask)
    if problem:
        raise PredictorError(problem)
    if context_mask.dtype != torch.bool:
        raise PredictorError(
            f"context_mask must be bool (True = real turn), got {context_mask.dtype}"
        )
    if tuple(context_mask.shape) != (B, N):
        raise PredictorError(
            f"context_mask must have shape (B, N) = {(B, N)}, got {tuple(context_mask.shape)}"
        )
    if context_mask.device != device:
        raise PredictorError(
            f"context_mask is on {context_mask.device} but the model is on {device}"
        )


def _check_roles(context_roles: Tensor, B: int, N: int, device: torch.device) -> None:
    """Role ids (0 unknown, 1 user, 2 system) per context slot."""
    if not isinstance(context_roles, Tensor) or context_roles.dtype != torch.long:
        got = getattr(context_roles, "dtype", type(context_roles).__name__)
        raise PredictorError(f"context_roles must be an int64 tensor, got {got}")
    if tuple(context_roles.shape) != (B, N) or context_roles.device != device:
        raise PredictorError(
            f"context_roles must have shape (B, N) = {(B, N)} on {device}, got "
            f"{tuple(context_roles.shape)} on {context_roles.device}"
        )
    if context_roles.numel() and (
        int(context_roles.min()) < 0 or int(context_roles.max()) >= NUM_ROLE_IDS
    ):
        raise PredictorError(
            f"context_roles holds ids outside [0, {NUM_ROLE_IDS}); expected 0 unknown, 1 user, "
            "2 system"
        )
