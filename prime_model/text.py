"""What a value or a text shows: bounded reprs for error messages and blank-text detection.

Every error message that names an untrusted value goes through :func:`shown`, so a 10 MB string
or a billion-digit integer cannot flood a log; :func:`is_blank` is the one meaning of "empty".
"""

from __future__ import annotations

import re
import reprlib
from typing import Final

INVISIBLE: Final = (
    r"\s\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4"
    r"\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff"
    r"\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)
"""Regex class body of what shows nothing: whitespace, every format (``Cf``) character (zero-width
spaces and joiners, BOM, bidi controls, ...), variation selectors and the Hangul fillers."""
BLANK_PATTERN: Final = rf"^[{INVISIBLE}]*$"
"""A text that is empty, or whitespace and invisible characters only."""
_BLANK: Final = re.compile(rf"[{INVISIBLE}]*")


class _BoundedRepr(reprlib.Repr):
    """``reprlib`` that also survives integers beyond Python's int-to-str digit limit."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<int of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)


_REPR: Final = _BoundedRepr()
_REPR.maxstring = 160
_REPR.maxother = 160
_REPR.maxlevel = 4


def shown(value: object, limit: int = 200) -> str:
    """A repr of ``value`` for an error message, never longer than ``limit`` characters.

    Costs what the shown part costs, so a billion-laughs value or a 10 MB string is safe to name.
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ must not replace the real error
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        keep = max(limit - 5, 1)
        text = f"{text[:keep]}...{text[-2:]}" if limit >= 8 else text[:limit]
    return text


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: ``str.strip`` keeps U+200B, U+2060, U+FEFF, ..."""
    return _BLANK.fullmatch(text) is not None
