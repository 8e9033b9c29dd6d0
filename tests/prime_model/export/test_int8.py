"""The int8 schemes: what each option means, the candidates per CPU, and the Gemm rewrite."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from prime_model.errors import ConfigError
from prime_model.export.int8 import (
    QuantizationOptions,
    candidate_options,
    default_options,
    gemm_as_matmul,
)
from prime_model.runtime.cpu import InstructionSet

AVX2 = InstructionSet(architecture="x86_64", features=("avx2",))
VNNI = InstructionSet(architecture="x86_64", features=("avx2", "avx512f", "avx512_vnni"))


def test_default_options_reduce_range_only_without_vnni() -> None:
    assert default_options(AVX2).reduce_range and not default_options(VNNI).reduce_range
    assert default_options(VNNI).scheme == "dynamic" and default_options(VNNI).per_channel


def test_candidates_start_with_this_cpus_guess_and_cover_both_schemes() -> None:
    candidates = candidate_options(AVX2)
    assert candidates[0] == default_options(AVX2)
    assert candidates[1].reduce_range is False
    assert {c.scheme for c in candidates} == {"dynamic", "weight-only"}
    assert len(set(candidates)) == len(candidates)


def test_labels_name_what_was_chosen() -> None:
    assert QuantizationOptions().label == "dynamic, per-channel"
    options = QuantizationOptions(reduce_range=True, keep_attention_fp32=True)
    assert options.label == "dynamic, per-channel, reduce-range, attention fp32"
    weight_only = QuantizationOptions(scheme="weight-only", bits=4, block_size=32)
    assert weight_only.label == "weight-only int4, block 32"


@pytest.mark.parametrize("fields", [{"bits": 3}, {"block_size": 100}, {"scheme": "static"}])
def test_bad_options_are_config_errors(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="invalid QuantizationOptions"):
        QuantizationOptions(**fields)


def test_gemm_becomes_matmul_plus_bias_with_the_same_output() -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 4)).astype(np.float32)  # transB: (out, in)
    bias = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "proj", transB=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((2, 4)).astype(np.float32)
    want = _run(model, x)
    assert gemm_as_matmul(model) == 1
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
    assert "w" not in {init.name for init in model.graph.initializer}  # replaced by its (in, out)
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, x), want, rtol=1e-5)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    outputs = ReferenceEvaluator(model).run(None, {"x": x})
    assert isinstance(outputs, list)
    return np.asarray(outputs[0])
