"""What ``prime serve`` may tune beyond the model: token caps, the conversation store, batching.

Defaults keep a plain stateless request exactly as it was answered before these knobs existed
(no token caps); the conversation store and micro-batching only change latency, not vectors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prime_model.config import FrozenConfig
from prime_model.http.batching import DEFAULT_MAX_BATCH_TEXTS
from prime_model.http.conversations import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_CONVERSATIONS,
    DEFAULT_TTL_S,
)


class ServingConfig(FrozenConfig):
    """The serving knobs; a bad value is a :class:`~prime_model.errors.ConfigError`."""

    history_max_tokens: int | None = Field(
        None, gt=0, description="each history entry cut to its first N tokens (None: off)"
    )
    concat_max_tokens: int | None = Field(
        None,
        gt=0,
        description="history + query (concat_input models) cut to its last N tokens "
        "(None: the Y-Encoder's own limit, as in training)",
    )
    conversation_ttl_s: float = Field(
        DEFAULT_TTL_S, gt=0, description="a conversation untouched this long is forgotten"
    )
    max_conversations: int = Field(
        DEFAULT_MAX_CONVERSATIONS, gt=0, description="conversations held (least recent go)"
    )
    max_conversation_chars: int = Field(
        DEFAULT_MAX_CHARS, gt=0, description="characters of turn text held over all of them"
    )
    micro_batching: bool = Field(
        True, description="merge concurrent requests' texts into one Y-Encoder call"
    )
    max_batch_texts: int = Field(DEFAULT_MAX_BATCH_TEXTS, gt=0)
    precision: Literal["fp32", "int8"] = Field(
        "fp32", description="the Y-Encoder's ONNX graph; the index must have been built with it"
    )
