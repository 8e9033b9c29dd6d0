"""How many tokens of each text a request encodes: the serving caps (off by default).

A system response is often 1,000+ characters, and the Y-Encoder's cost grows with its tokens.
``history_max_tokens`` keeps the first N tokens of each history entry (what a turn is about comes
first); ``concat_max_tokens`` keeps the last N tokens of history + query as one text (the query
last, as training cut it), instead of the encoder's own limit. Both count tokens as the
Y-Encoder's tokenizer does, special tokens not counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

from prime_model.encode.locked_tokenizer import LockedTokenizer
from prime_model.errors import ConfigError

logger = logging.getLogger(__name__)

_MAX_WRAPPERS = 8  # caches and batchers around the encoder; never a cycle


def _find(encoder: object, attribute: str) -> Any:
    """``attribute`` of the encoder or of one it wraps (``inner``), else None."""
    for _ in range(_MAX_WRAPPERS):
        value = getattr(encoder, attribute, None)
        if value is not None:
            return value
        encoder = getattr(encoder, "inner", None)
        if encoder is None:
            break
    return None


class TextCaps:
    """The history and concat texts a request encodes, cut by the configured caps.

    Holds its own copy of the tokenizer behind a lock: fast tokenizers refuse concurrent use,
    and the encoder may be tokenising with its own at the same moment.
    """

    def __init__(
        self,
        encoder: object,
        *,
        history_max_tokens: int | None = None,
        concat_max_tokens: int | None = None,
        concat_input: bool = False,
    ) -> None:
        for name, value in [
            ("history_max_tokens", history_max_tokens),
            ("concat_max_tokens", concat_max_tokens),
        ]:
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name}={value!r}; expected a number of tokens >= 1 or None")
        self.history_max_tokens, self.concat_max_tokens = history_max_tokens, concat_max_tokens
        self._fit_lock = threading.Lock()  # a torch encoder's fit_to_limit has no lock of its own
        self._tokens: LockedTokenizer | None = None
        if history_max_tokens is not None or concat_max_tokens is not None:
            tokenizer = _find(encoder, "tokenizer")
            if tokenizer is None or not callable(tokenizer):
                raise ConfigError(
                    f"history_max_tokens/concat_max_tokens need the Y-Encoder's tokenizer, and "
                    f"{getattr(encoder, 'name', encoder)!r} offers none; expected an encoder with "
                    "a public `tokenizer` (sentence-transformers or ONNX), or no token caps"
                )
            self._tokens = LockedTokenizer(tokenizer)
        fit = _find(encoder, "fit_to_limit")
        self._fit = cast(Callable[[Sequence[str]], list[str]], fit) if callable(fit) else None
        if concat_input and concat_max_tokens is None and self._fit is None:
            logger.warning(
                "the predictor reads history + query as one text, but the Y-Encoder %r offers no "
                "fit_to_limit: a text over its token limit loses its end (the query) instead of "
                "its oldest tokens, unlike in training",
                getattr(encoder, "name", encoder),
            )

    def history(self, texts: Sequence[str]) -> list[str]:
        """Each history entry's first ``history_max_tokens`` tokens (all of it when off)."""
        if self.history_max_tokens is None or self._tokens is None or not texts:
            return list(texts)
        return self._tokens.keep_heads(texts, self.history_max_tokens)

    def concat(self, text: str) -> str:
        """History + query's last ``concat_max_tokens`` tokens; when off, what the encoder's
        ``fit_to_limit`` keeps (training's cut), else the text unchanged."""
        if self.concat_max_tokens is not None and self._tokens is not None:
            limit = self.concat_max_tokens + self._tokens.special_tokens()
            return self._tokens.keep_tails([text], limit)[0]
        if self._fit is None:
            return text
        with self._fit_lock:
            return self._fit([text])[0]

    def info(self) -> dict[str, int | None]:
        return {
            "history_max_tokens": self.history_max_tokens,
            "concat_max_tokens": self.concat_max_tokens,
        }
