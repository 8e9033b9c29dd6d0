"""ONNX Runtime on a verified file: inputs checked first, any context length, typed failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prime_model import PredictorError
from prime_model.runtime.loader import create_predictor
from prime_model.runtime.onnx_runtime import OnnxPredictor, session_options
from tests.prime_model.runtime.inference_support import eager, exported, random_inputs, tiny_model


def test_onnx_backend_validates_before_onnx_runtime_sees_anything(tmp_path: Path) -> None:
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(exported().data)
    predictor = create_predictor(onnx_file)
    with pytest.raises(PredictorError, match="expected input_dim=16"):
        predictor.predict(np.zeros((1, 2, 8), np.float32), np.zeros((1, 8), np.float32))
    empty_context = predictor.predict(np.zeros((2, 0, 16), np.float32), np.ones((2, 16)))
    assert empty_context.shape == (2, 16)


def test_runs_the_file_like_eager_and_names_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(exported().data)
    predictor = OnnxPredictor.from_file(path, threads=1)
    assert predictor.backend == "onnx" and predictor.metadata.kind == "fp32"
    assert predictor.weight_bytes == exported().weight_bytes
    context, query, mask = random_inputs(3, 4)
    np.testing.assert_allclose(
        predictor.predict(context, query, mask),
        eager(tiny_model(), context, query, mask),
        atol=1e-5,
    )
    assert session_options(2).intra_op_num_threads == 2


def test_an_onnx_backend_on_a_device_without_its_provider_is_a_predictor_error() -> None:
    with pytest.raises(PredictorError, match="run on cpu or cuda"):
        OnnxPredictor(exported(), device=torch.device("meta"))
