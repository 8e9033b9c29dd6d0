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
from prime_model.model_inputs import NUM_ROLE_IDS, ModelInputs, check_inputs

INIT_STD = 0.02
GATE_SCALE: Final = 10.0
"""The concat share is ``GATE_SCALE * concat_gate``: Adam moves a parameter by about the learning
rate per step, so an unscaled scalar gate crawls (0.10 after 477 steps at 5e-4, where the free
mix's 0.5 retrieves better); scaled, it reaches its level within the first epoch."""


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
        inputs = ModelInputs(context, query, context_mask, context_roles, concat)
        check_inputs(self.config, inputs, self.pred_token, inference=not self.training)
        return self.forward_unchecked(inputs.to(self.pred_token.dtype))

    def forward_unchecked(self, inputs: ModelInputs) -> Tensor:
        """The forward pass without validation or casting: for training, tracing and export."""
        x, attn_mask = self.embed(inputs)
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = cast(Tensor, checkpoint(block, x, attn_mask, use_reentrant=False))
            else:
                x = block(x, attn_mask)
        return self.read_out(x[:, 0], inputs.query, inputs.concat)

    def embed(self, inputs: ModelInputs) -> tuple[Tensor, Tensor | None]:
        """The input tokens (B×S×H, positions added) and the attention key mask."""
        context = inputs.context
        B, N, _ = context.shape
        turns = self.context_proj(context)  # (B, N, H)
        if self.config.role_embedding and inputs.context_roles is not None:
            turns = turns + self.role_embedding(inputs.context_roles)
        query_token = self.query_proj(inputs.query).unsqueeze(1)
        tokens = [self.pred_token.expand(B, 1, -1), turns, query_token]
        if self.config.concat_input:
            if inputs.concat is None:
                raise PredictorError("this model reads concat (history + query as one text)")
            tokens.append(self.concat_proj(inputs.concat).unsqueeze(1))  # (B, 1, H)
        x = torch.cat(tokens, dim=1)  # (B, S, H)
        positions, attn_mask = self._positions_and_mask(B, N, inputs.context_mask, context.device)
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
