"""EmbeddingPredictor: embeddings of N context turns and a query -> one predicted target embedding.

Token layout, S = N + 2:  ``[PRED] c_1 ... c_N q`` (context oldest first), plus a last ``[CAT]``
token (history + query embedded as one text) with ``concat_input``. Positions are assigned by
recency, not by slot: [PRED] is 0, the query is N_max + 1, [CAT] N_max + 2 and the k-th most recent
real turn is N_max + 1 - k. Padded slots are masked out of attention, so a conversation's
prediction does not depend on how much padding its batch has, nor on where that padding sits.
With ``role_embedding`` each context turn also gets a learned user/system embedding.
"""

from __future__ import annotations

from typing import Final, cast

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from prime_model.config import PredictorConfig
from prime_model.errors import PredictorError

INIT_STD = 0.02
MAX_INPUT_MAGNITUDE: Final = 1e4
"""Largest |value| accepted in a context or query embedding. Encoders emit vectors of about
unit length, so this is generous; far larger values overflow float32 in the LayerNorm
variance (or already in the cast) and turn the prediction into NaN or noise that differs
between backends, so they are refused rather than served."""
FLOAT32_MAX: Final = float(torch.finfo(torch.float32).max)
NUM_ROLE_IDS: Final = 3  # 0 unknown (and padding), 1 user, 2 system: see data.schema.ROLES
GATE_SCALE: Final = 10.0
"""The concat share is ``GATE_SCALE * concat_gate``: Adam moves a parameter by about the learning
rate per step, so an unscaled scalar gate crawls (0.10 after 477 steps at 5e-4, where the free
mix's 0.5 retrieves better); scaled, it reaches its level within the first epoch."""


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


class SelfAttention(nn.Module):
    """Bidirectional multi-head attention on ``scaled_dot_product_attention`` (fused kernels)."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.hidden_dim, 3 * config.hidden_dim)
        self.proj = nn.Linear(config.hidden_dim, config.hidden_dim)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        B, S, H = x.shape
        q, k, v = (
            t.view(B, S, self.num_heads, H // self.num_heads).transpose(1, 2)  # (B, nh, S, hd)
            for t in self.qkv(x).split(H, dim=-1)
        )
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).reshape(B, S, H)  # (B, S, H)
        return cast(Tensor, self.resid_dropout(self.proj(y)))


class MLP(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        width = config.mlp_ratio * config.hidden_dim
        self.fc = nn.Linear(config.hidden_dim, width)
        self.act = nn.GELU()
        self.proj = nn.Linear(width, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, self.dropout(self.proj(self.act(self.fc(x)))))


class PredictorTransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_dim)
        self.attn = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_dim)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        x = x + self.attn(self.norm1(x), attn_mask)
        return x + cast(Tensor, self.mlp(self.norm2(x)))


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


class EmbeddingPredictor(nn.Module):
    """Predicts the Y-Encoder embedding of the content a conversational query asks for.

    ``forward(context, query, context_mask)`` takes context B×N×D (N <= max_context_length, oldest
    turn first), query B×D and an optional boolean mask B×N (True = real turn) and returns B×D_out
    L2-normalised embeddings. With ``config.residual`` the output is the query embedding plus a
    correction the [PRED] token reads from the context; the correction's last projection starts at
    zero, so training can only move away from query-only where that retrieves better, which a few
    thousand real turns could not teach the pure [PRED] read-out. Inputs are validated first
    (:class:`PredictorError`) and cast to the parameters' dtype, so float64 numpy-born tensors
    work.
    """

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        # a runtime switch too, so training can turn it on without changing the saved config
        self.gradient_checkpointing = config.gradient_checkpointing
        H = config.hidden_dim
        self.context_proj = nn.Linear(config.input_dim, H)
        self.query_proj = nn.Linear(config.input_dim, H)
        self.pred_token = nn.Parameter(torch.empty(1, 1, H))
        extra = 3 if config.concat_input else 2  # [PRED], query (and [CAT])
        self.pos_embedding = nn.Parameter(torch.empty(1, config.max_context_length + extra, H))
        if config.role_embedding:  # role 0 (unknown) adds nothing: role-less input as before
            self.role_embedding = nn.Embedding(NUM_ROLE_IDS, H, padding_idx=0)
        if config.concat_input:
            self.concat_proj = nn.Linear(config.input_dim, H)
            self.concat_gate = nn.Parameter(torch.zeros(()))  # share of [CAT] in the residual
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            PredictorTransformerBlock(config) for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(H)
        self.output_proj = nn.Linear(H, config.output_dim)
        self.apply(self._init_weights)
        for param in (self.pred_token, self.pos_embedding):
            nn.init.trunc_normal_(param, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
        if config.role_embedding:
            nn.init.trunc_normal_(
                self.role_embedding.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD
            )
            with torch.no_grad():
                self.role_embedding.weight[0].zero_()
        if config.residual:  # the correction starts at zero: untrained = query-only
            nn.init.zeros_(self.output_proj.weight)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """Truncated normal (σ=0.02, cut at 2σ) for linear weights, zero biases, unit norms."""
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        context: Tensor,
        query: Tensor,
        context_mask: Tensor | None = None,
        context_roles: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        self.validate_inputs(context, query, context_mask, context_roles, concat)
        dtype = self.pred_token.dtype
        return self.forward_unchecked(
            context.to(dtype),
            query.to(dtype),
            context_mask,
            context_roles,
            None if concat is None else concat.to(dtype),
        )

    def forward_unchecked(
        self,
        context: Tensor,
        query: Tensor,
        context_mask: Tensor | None = None,
        context_roles: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        """The forward pass without validation or casting: for training, tracing and export."""
        x, attn_mask = self.embed(context, query, context_mask, context_roles, concat)
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = cast(Tensor, checkpoint(block, x, attn_mask, use_reentrant=False))
            else:
                x = block(x, attn_mask)
        return self.read_out(x[:, 0], query, concat)

    def embed(
        self,
        context: Tensor,
        query: Tensor,
        context_mask: Tensor | None = None,
        context_roles: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """The input tokens (B×S×H, positions added) and the attention key mask."""
        B, N, _ = context.shape
        turns = self.context_proj(context)  # (B, N, H)
        if self.config.role_embedding and context_roles is not None:
            turns = turns + self.role_embedding(context_roles)
        tokens = [self.pred_token.expand(B, 1, -1), turns, self.query_proj(query).unsqueeze(1)]
        if self.config.concat_input:
            if concat is None:
                raise PredictorError("this model reads concat (history + query as one text)")
            tokens.append(self.concat_proj(concat).unsqueeze(1))  # (B, 1, H)
        x = torch.cat(tokens, dim=1)  # (B, S, H)
        positions, attn_mask = self._positions_and_mask(B, N, context_mask, context.device)
        return self.embed_dropout(x + self.pos_embedding[0, positions]), attn_mask

    def read_out(self, pred: Tensor, query: Tensor, concat: Tensor | None = None) -> Tensor:
        """The [PRED] token's final state (B×H) -> the L2-normalised prediction (B×D_out).

        One place for every forward (eager, serving, export), so none can drop the residual.
        """
        out = self.output_proj(self.norm(pred))  # (B, D_out)
        if self.config.residual:
            out = query + out  # a correction of the query's own embedding
            if self.config.concat_input and concat is not None:
                out = out + GATE_SCALE * self.concat_gate * concat  # the free mix, share learned
        return F.normalize(out, dim=-1)

    def _positions_and_mask(
        self,
        B: int,
        N: int,
        context_mask: Tensor | None,
        device: torch.device,
    ) -> tuple[Tensor, Tensor | None]:
        """Recency positions (B or 1, S) and a key mask (B, 1, 1, S), None when unpadded."""
        n_max = self.config.max_context_length
        edge = torch.arange(n_max + 1, self.pos_embedding.shape[1], device=device)  # q ([CAT])
        if context_mask is None:
            context_pos = torch.arange(n_max + 1 - N, n_max + 1, device=device)  # (N,)
            return torch.cat([edge[:1] * 0, context_pos, edge]).unsqueeze(0), None
        real = context_mask.long()  # (B, N)
        later = real.flip(1).cumsum(1).flip(1) - real  # real turns after each slot
        context_pos = (n_max - later) * real  # padded slots -> 0, never attended to
        positions = torch.cat([(edge[:1] * 0).expand(B, 1), context_pos, edge.expand(B, -1)], dim=1)
        keep = torch.ones(B, 1, dtype=torch.bool, device=device)
        key_mask = torch.cat([keep, context_mask, keep.expand(B, edge.numel())], dim=1)  # (B, S)
        return positions, key_mask[:, None, None, :]

    def validate_inputs(
        self,
        context: Tensor,
        query: Tensor,
        context_mask: Tensor | None = None,
        context_roles: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> None:
        """Raise :class:`PredictorError` naming what is wrong with the inputs, before any math."""
        for name, value in (("context", context), ("query", query)):
            if not isinstance(value, Tensor):
                raise PredictorError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            problem = layout_problem(name, value)
            if problem:
                raise PredictorError(problem)
        B, N = check_shapes(
            self.config, tuple(context.shape), tuple(query.shape), inference=not self.training
        )
        device, dtype = self.pred_token.device, self.pred_token.dtype
        self._validate_values("context", context, device, dtype)
        self._validate_values("query", query, device, dtype)
        if context_mask is not None:
            self._validate_mask(context_mask, B, N, device)
        if context_roles is not None:
            _validate_roles(context_roles, B, N, device)
        if self.config.concat_input != (concat is not None):
            raise PredictorError(
                "this model reads concat (B×D: history + query embedded as one text); pass it"
                if self.config.concat_input
                else "concat given but this model has no concat_input; leave it out"
            )
        if concat is not None:
            if not isinstance(concat, Tensor) or tuple(concat.shape) != tuple(query.shape):
                raise PredictorError(
                    f"concat must be a tensor shaped like query {tuple(query.shape)}, got "
                    f"{getattr(concat, 'shape', type(concat).__name__)}"
                )
            self._validate_values("concat", concat, device, dtype)

    @staticmethod
    def _validate_values(
        name: str, value: Tensor, device: torch.device, dtype: torch.dtype
    ) -> None:
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

    @staticmethod
    def _validate_mask(context_mask: Tensor, B: int, N: int, device: torch.device) -> None:
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


def _validate_roles(context_roles: Tensor, B: int, N: int, device: torch.device) -> None:
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
