"""Progress lines off a terminal: chunked encoding with the same vectors, one call otherwise."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from prime_model.encode import progress
from prime_model.encode.progress import ProgressEncoder
from tests.conftest import CountingEncoder


def test_off_a_terminal_long_inputs_log_a_line_per_chunk(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "is_terminal", lambda: False)
    inner = CountingEncoder()
    texts = [f"text {i}" for i in range(10)]
    with caplog.at_level(logging.INFO, logger=progress.__name__):
        vectors = ProgressEncoder(inner, chunk=4).encode(texts)
    np.testing.assert_array_equal(vectors, CountingEncoder().encode(texts))
    assert [len(c) for c in inner.calls] == [4, 4, 2]
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "encoding: 4 of 10 texts",
        "encoding: 8 of 10 texts",
        "encoding: 10 of 10 texts",
    ]


def test_short_inputs_and_terminals_go_through_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inner = CountingEncoder()
    ProgressEncoder(inner, chunk=4).encode(["a", "b"])
    monkeypatch.setattr(progress, "is_terminal", lambda: True)
    ProgressEncoder(inner, chunk=4).encode([str(i) for i in range(9)])
    assert [len(c) for c in inner.calls] == [2, 9]


def test_it_keeps_the_inner_encoders_name_dim_and_token_fitting() -> None:
    inner = CountingEncoder(dim=5, name="stub")
    wrapped = ProgressEncoder(inner)
    assert (wrapped.name, wrapped.dim) == ("stub", 5)
    assert wrapped.fit_to_limit(["x"]) == ["x"]  # the stub has none: texts unchanged
    inner.fit_to_limit = lambda texts: [t[-1:] for t in texts]  # type: ignore[attr-defined]
    assert wrapped.fit_to_limit(["abc"]) == ["c"]
