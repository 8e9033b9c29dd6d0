"""Token caps on texts before they are encoded: keep the START of a long history turn.

A long system response costs the Y-Encoder time roughly in proportion to its tokens, while its
first sentences usually say what it is about. ``keep_heads`` is the mirror of
:func:`prime_model.encode.encoders.keep_tails` (which keeps the END of history + query, so the
query survives): same tokenizer, same rule of cutting where a word starts, so the cut text
re-tokenises to the kept tokens and every engine (torch, ONNX) caps a text identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prime_model.errors import ConfigError


def keep_heads(texts: Sequence[str], tokenizer: Any, max_tokens: int) -> list[str]:
    """Each text's start holding at most ``max_tokens`` tokens (special tokens not counted).

    Texts within the limit come back unchanged (the same string), so the embedding cache keys of
    short texts do not move when a cap is introduced.
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    return [_keep_head(text, tokenizer, max_tokens) for text in texts]


def _keep_head(text: str, tokenizer: Any, limit: int) -> str:
    """The start of ``text`` holding at most ``limit`` tokens, cut where a word starts if possible.

    Cutting inside a word would leave a word piece that re-tokenises differently, so with a fast
    tokenizer the cut moves back to the start of the word holding the first dropped token; with
    no word start to go back to (text without spaces, one word longer than the limit) it falls
    just before that token. If the cut text is empty or re-tokenises over the limit, or the
    tokenizer gives no offsets, the kept token ids are decoded instead.
    """
    fast = bool(getattr(tokenizer, "is_fast", False))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast, verbose=False)
    ids: list[int] = list(encoding["input_ids"])
    if len(ids) <= limit:
        return text
    if fast:
        starts = [int(start) for start, _ in encoding["offset_mapping"][1 : limit + 1]]
        at_word = [s for s in starts if s > 0 and text[s - 1].isspace()]
        head = text[: (at_word or starts)[-1]].rstrip()
        kept = tokenizer(head, add_special_tokens=False, verbose=False)["input_ids"]
        if head and len(kept) <= limit:
            return head
    return str(tokenizer.decode(ids[:limit]))
