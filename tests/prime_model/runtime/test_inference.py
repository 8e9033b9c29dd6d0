"""The one interface every backend offers: buckets, eager, parity, and the model-shaped adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prime_model import PredictorError
from prime_model.runtime.inference import (
    EagerPredictor,
    PredictorModule,
    batch_buckets,
    bucket_for,
    parity,
)
from prime_model.runtime.onnx_runtime import OnnxPredictor
from tests.prime_model.runtime.inference_support import (
    CONFIG,
    eager,
    exported,
    random_inputs,
    tiny_model,
)


def test_buckets_respect_max_batch_size() -> None:
    assert batch_buckets(32) == (1, 8, 32)
    assert batch_buckets(8) == (1, 8)
    assert batch_buckets(12) == (1, 8, 12)
    assert batch_buckets(None, (4, 1)) == (1, 4)
    assert [bucket_for(b, (1, 8, 32)) for b in (1, 2, 8, 9, 32)] == [1, 8, 8, 32, 32]
    with pytest.raises(PredictorError, match="positive"):
        batch_buckets(8, (0, 4))


def test_batches_over_max_batch_size_are_refused_like_the_model_does() -> None:
    context, query, _ = random_inputs(9, 2)
    with pytest.raises(PredictorError, match="exceeds max_batch_size=8"):
        EagerPredictor(tiny_model()).predict(context, query)


def test_parity_compares_rows_and_refuses_other_shapes() -> None:
    a = np.eye(3, dtype=np.float32)
    same = parity(a, a)
    assert same.rows == 3 and same.max_abs_diff == 0.0 and same.min_cosine == pytest.approx(1.0)
    assert parity(a, -a).min_cosine == pytest.approx(-1.0)
    with pytest.raises(PredictorError, match="equal shapes"):
        parity(a, a[:2])


def test_predictor_module_lets_model_code_score_any_backend() -> None:
    module = PredictorModule(OnnxPredictor(exported()))
    context, query, mask = random_inputs(3, 4)
    out = module(torch.from_numpy(context), torch.from_numpy(query), torch.from_numpy(mask))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), eager(tiny_model(), context, query, mask), atol=1e-5)
    assert module.config == CONFIG and module.pred_token.device.type == "cpu"
