"""Token caps on texts before they are encoded: keep the start or the end of a long text.

A long text costs the Y-Encoder time roughly in proportion to its tokens. ``keep_heads`` keeps the
START of a long history turn (its first sentences usually say what it is about); ``keep_tails``
keeps the END of history + query, so the query survives the encoder's limit. Both use one rule:
cut where a word starts, so the cut text re-tokenises to the kept tokens and every engine (torch,
ONNX) caps a text identically.
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
    return [_keep(text, tokenizer, max_tokens, head=True) for text in texts]


def keep_tails(texts: Sequence[str], tokenizer: Any, max_seq_length: int | None) -> list[str]:
    """Each text's end that fits ``max_seq_length`` tokens with [CLS]/[SEP] (None: unchanged).

    Shared by every encoder that offers ``fit_to_limit``, so training (torch) and serving (ONNX)
    cut history + query texts identically.
    """
    if max_seq_length is None:
        return list(texts)
    specials = int(tokenizer.num_special_tokens_to_add(pair=False))
    limit = max(1, int(max_seq_length) - specials)
    return [_keep(text, tokenizer, limit, head=False) for text in texts]


def _keep(text: str, tokenizer: Any, limit: int, *, head: bool) -> str:
    """The start (``head``) or end of ``text`` holding at most ``limit`` tokens.

    Cutting inside a word would leave a word piece that re-tokenises differently, so with a fast
    tokenizer the cut moves to a word start next to the boundary token (back for a head, forward
    for a tail); with no word start there (text without spaces) it falls at that token. If the cut
    text is empty or re-tokenises over the limit, or the tokenizer gives no offsets, the kept
    token ids are decoded instead.
    """
    fast = bool(getattr(tokenizer, "is_fast", False))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast, verbose=False)
    ids: list[int] = list(encoding["input_ids"])
    if len(ids) <= limit:
        return text
    kept_ids = ids[:limit] if head else ids[len(ids) - limit :]
    if fast:
        offsets = encoding["offset_mapping"]
        part = _cut_at_word(text, offsets, limit, head=head)
        kept = tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"]
        if part and len(kept) <= limit:
            return part
    return str(tokenizer.decode(kept_ids))


def _cut_at_word(text: str, offsets: Sequence[Any], limit: int, *, head: bool) -> str:
    """A head ends at the last word start among tokens 1..limit (token ``limit`` is the first
    dropped); a tail begins at the first word start among its kept tokens."""
    if head:
        starts = [int(start) for start, _ in offsets[1 : limit + 1]]
        at_word = [s for s in starts if s > 0 and text[s - 1].isspace()]
        return text[: (at_word or starts)[-1]].rstrip()
    starts = [int(start) for start, _ in offsets[len(offsets) - limit :]]
    at_word = [s for s in starts if s == 0 or text[s - 1].isspace()]
    return text[(at_word or starts)[0] :]
