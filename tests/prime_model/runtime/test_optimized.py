from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from prime_model.runtime.optimized import OptimizedPredictor
from tests.prime_model.runtime.inference_support import (
    CONFIG,
    eager,
    random_inputs,
    tiny_model,
)

UNLIMITED = CONFIG.model_copy(update={"max_batch_size": None})


@pytest.fixture(scope="module")
def compiled() -> OptimizedPredictor:
    """Buckets (1, 4) and no batch limit: 6 rows run as a full bucket plus a padded one."""
    predictor = OptimizedPredictor(tiny_model(UNLIMITED), buckets=(1, 4))
    predictor.warmup()
    return predictor


# ---- OptimizedPredictor ----


@pytest.mark.parametrize(("batch", "turns"), [(1, 4), (3, 2), (4, 0), (6, 4)])
def test_compiled_matches_eager_across_buckets(
    compiled: OptimizedPredictor, batch: int, turns: int
) -> None:
    context, query, mask = random_inputs(batch, turns, seed=batch)
    got = compiled.predict(context, query, mask)
    assert got.dtype == np.float32 and got.shape == (batch, 16)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    if turns:  # the eager model takes N=0 too, but compare where both pad the same way
        np.testing.assert_allclose(got, eager(compiled.model, context, query, mask), atol=1e-5)
    assert compiled.compiled


def test_warmup_compiles_each_bucket_once_and_is_idempotent(compiled: OptimizedPredictor) -> None:
    assert compiled.warm_buckets == (1, 4)
    graphs = counters["stats"]["unique_graphs"]
    calls: list[int] = []
    real = compiled._compiled
    assert real is not None

    def counting(*args: torch.Tensor) -> torch.Tensor:
        calls.append(args[0].shape[0])
        return real(*args)

    compiled._compiled = counting
    try:
        compiled.warmup()
        assert calls == []  # nothing left to warm
        for batch in (1, 2, 3, 4, 5):
            compiled.predict(*random_inputs(batch, 3))
    finally:
        compiled._compiled = real
    assert set(calls) == {1, 4}  # every request ran in a bucket
    assert counters["stats"]["unique_graphs"] == graphs  # and no shape was compiled again


def test_falls_back_to_eager_when_torch_compile_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    model = tiny_model()
    with caplog.at_level(logging.WARNING, logger="prime_model.runtime.optimized"):
        predictor = OptimizedPredictor(model)
    assert not predictor.compiled
    assert predictor.fallback_reason == "RuntimeError: no C++ compiler"
    assert "torch.compile failed" in caplog.text
    predictor.warmup()
    context, query, mask = random_inputs(3, 4)
    np.testing.assert_allclose(
        predictor.predict(context, query, mask), eager(model, context, query, mask), atol=1e-5
    )


def test_falls_back_when_the_compiled_graph_fails_on_first_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def lazy_failure(fn: Callable[..., torch.Tensor], **kwargs: object) -> Callable[..., Any]:
        def run(*args: object) -> None:
            raise RuntimeError("inductor crashed while compiling")

        return run

    monkeypatch.setattr(torch, "compile", lazy_failure)
    model = tiny_model()
    predictor = OptimizedPredictor(model)
    assert predictor.compiled  # compilation is lazy: nothing failed yet
    context, query, mask = random_inputs(2, 4)
    with caplog.at_level(logging.WARNING, logger="prime_model.runtime.optimized"):
        got = predictor.predict(context, query, mask)
    assert not predictor.compiled and "inductor crashed" in caplog.text
    np.testing.assert_allclose(got, eager(model, context, query, mask), atol=1e-5)
