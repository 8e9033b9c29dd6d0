"""prime_model.text: bounded reprs and blank-text detection."""

from __future__ import annotations

import sys
import unicodedata

from prime_model.text import is_blank, shown


def test_shown_is_bounded_and_survives_hostile_values() -> None:
    assert shown("abc") == "'abc'"
    assert len(shown("x" * 10_000_000)) <= 200
    assert len(shown(list(range(100_000)), limit=50)) <= 50
    assert "digits" in shown(10**5000)  # repr() itself would raise ValueError

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert shown(Hostile()).startswith("<Hostile")  # the repr's own error is not raised
    nested: list[object] = []
    for _ in range(10_000):
        nested = [nested]
    assert len(shown(nested)) <= 200


def test_is_blank_covers_every_format_character() -> None:
    assert is_blank("") and is_blank(" \t\n\u3000\u2028")
    for char in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u3164"):
        assert is_blank(char * 3), hex(ord(char))
    assert not is_blank("a\u200b")
    assert not is_blank("\u200bx")
    format_chars = [
        c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) == "Cf"
    ]
    assert format_chars
    assert [hex(ord(c)) for c in format_chars if not is_blank(c)] == []
