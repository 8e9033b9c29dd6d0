"""Any backend of one model, exported in memory: what benchmarks compare."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prime_model.export.build import build_predictor, quantized
from prime_model.runtime.onnx_runtime import OnnxPredictor
from tests.prime_model.runtime.inference_support import eager, exported, random_inputs, tiny_model


# onnx-int8 here is this CPU's unmeasured default scheme; the judged one is tested in test_quantize
@pytest.mark.parametrize(("backend", "atol"), [("eager", 0.0), ("onnx", 1e-5), ("onnx-int8", 0.1)])
def test_every_backend_matches_eager(backend: str, atol: float) -> None:
    model = tiny_model()
    predictor = build_predictor(model, backend)
    assert predictor.backend == backend
    predictor.warmup()
    predictor.warmup()
    context, query, mask = random_inputs(5, 3, seed=7)
    got = predictor.predict(torch.from_numpy(context), query, torch.from_numpy(mask))
    want = eager(model, context, query, mask)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=atol)
    assert (got * want).sum(1).min() > (0.99 if backend == "onnx-int8" else 0.99999)


def test_quantized_is_int8_once() -> None:
    int8 = quantized(OnnxPredictor(exported()))
    assert int8.backend == "onnx-int8" and quantized(int8) is int8
