"""Lone surrogates: code points U+D800..U+DFFF standing alone, valid in a Python ``str`` and in
JSON (as ``\\ud800`` escapes) but with no UTF-8 form, so a tokenizer, Parquet or a hash of the
text fails far from where it came in. Every reader of untrusted text refuses them at its door.
"""

from __future__ import annotations

import re
from typing import Final

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point: valid in JSON (``"\\ud800"``) and in a
    Python ``str``, but with no UTF-8 form, so a tokenizer, Parquet or a hash of it fails."""
    return _SURROGATE.search(text) is not None


def lone_surrogate_at(value: object) -> str | None:
    """Where in a parsed JSON value a string (or key) holds a lone surrogate, as ``a.b[2]``;
    None when nowhere. Iterative: depth is bounded by the parser, not by Python's stack."""
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return where or "the value"
        elif isinstance(item, dict):
            for key, child in item.items():
                if has_lone_surrogate(key):
                    return f"a key in {where or 'the top-level object'}"
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def may_hold_surrogate(json_text: str) -> bool:
    """Whether parsing ``json_text`` can yield a lone surrogate: a cheap scan that lets
    :func:`lone_surrogate_at` walk only the rare documents with ``\\ud8xx``-style escapes."""
    return _SURROGATE_ESCAPE.search(json_text) is not None or has_lone_surrogate(json_text)
