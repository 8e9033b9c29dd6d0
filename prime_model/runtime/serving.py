"""The forward pass the optimised backends serve: the model's math, minus work nobody reads.

Only the [PRED] token's final state becomes the prediction, so in the last block the other S-1
tokens need keys and values (the [PRED] query attends to them) but no query, no attention output,
no residual MLP. Computing just the [PRED] row there removes ~19% of the FLOPs of the default
preset at every batch size; the result is the same up to float rounding (the export and the
compiled backend are checked against the eager model). Eval only: the tokens come from
``model.embed`` (roles and the [CAT] token included), whose dropout is off in eval mode.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn

from prime_model.config import PredictorConfig
from prime_model.model import EmbeddingPredictor, PredictorTransformerBlock
from prime_model.model_inputs import ModelInputs


class ServingForward(nn.Module):
    """``forward(context, query, context_mask, context_roles, concat)`` → what
    ``model.forward_unchecked`` returns (roles and concat as the model's config reads them).

    The last block's fused qkv projection is split into a [PRED]-only query projection and a
    key/value projection, as separate weights so that exporters and quantisers see constant
    matrices. They are copies taken at construction: later edits to the model's weights are not
    seen (the compiled and ONNX backends snapshot the weights anyway).
    """

    def __init__(self, model: EmbeddingPredictor) -> None:
        super().__init__()
        self.model = model
        qkv = cast(PredictorTransformerBlock, model.blocks[-1]).attn.qkv
        H = model.config.hidden_dim
        self.last_q = nn.Linear(H, H)
        self.last_kv = nn.Linear(H, 2 * H)
        with torch.no_grad():
            self.last_q.weight.copy_(qkv.weight[:H])
            self.last_q.bias.copy_(qkv.bias[:H])
            self.last_kv.weight.copy_(qkv.weight[H:])
            self.last_kv.bias.copy_(qkv.bias[H:])
        self.to(model.pred_token.device, model.pred_token.dtype).requires_grad_(False)

    def forward(
        self,
        context: Tensor,
        query: Tensor,
        context_mask: Tensor,
        context_roles: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        m = self.model
        x, attn_mask = m.embed(ModelInputs(context, query, context_mask, context_roles, concat))
        for block in list(m.blocks)[:-1]:
            x = block(x, attn_mask)
        pred = self._last_block_pred(x, attn_mask)  # (B, H)
        return m.read_out(pred, query, concat)

    def _last_block_pred(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        block = cast(PredictorTransformerBlock, self.model.blocks[-1])
        B, S, H = x.shape
        heads = self.model.config.num_heads
        h = block.norm1(x)
        q = self.last_q(h[:, :1]).view(B, 1, heads, H // heads).transpose(1, 2)  # (B, nh, 1, hd)
        k, v = (
            t.view(B, S, heads, H // heads).transpose(1, 2)  # (B, nh, S, hd)
            for t in self.last_kv(h).split(H, dim=-1)
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, nh, 1, hd)
        pred = x[:, 0] + block.attn.proj(y.transpose(1, 2).reshape(B, H))  # (B, H)
        return cast(Tensor, pred + block.mlp(block.norm2(pred)))


def serving_flops(config: PredictorConfig, context_turns: int) -> int:
    """FLOPs of :class:`ServingForward` for one conversation (compare ``model_flops``)."""
    D, H, N = config.input_dim, config.hidden_dim, context_turns
    edge = 2 if config.concat_input else 1  # query (and [CAT]) projections
    S, width = N + 1 + edge, config.mlp_ratio * config.hidden_dim
    embed = 2 * N * D * H + edge * 2 * D * H
    block = 2 * S * H * (3 * H + H + 2 * width) + 2 * 2 * S * S * H
    last = 2 * S * H * 2 * H + 2 * H * H + 2 * 2 * S * H + 2 * H * H + 2 * 2 * H * width
    return embed + (config.num_layers - 1) * block + last + 2 * H * config.output_dim
