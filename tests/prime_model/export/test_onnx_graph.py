"""The fp32 graph: dynamic axes, PRIME metadata, and the opsets it refuses to fake."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from prime_model import save_checkpoint
from prime_model.checkpoint import read_checkpoint_metadata
from prime_model.errors import ExportError
from prime_model.export.onnx_graph import MIN_OPSET, to_onnx_model, weights_sha256
from prime_model.runtime.onnx_file import INPUT_NAMES, OUTPUT_NAME, read_metadata
from tests.prime_model.runtime.inference_support import exported, tiny_model


def test_weights_hash_matches_the_checkpoints(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "ckpt")
    assert weights_sha256(model) == read_checkpoint_metadata(path).weights_sha256


def test_the_graph_has_dynamic_batch_and_turns_and_signed_metadata() -> None:
    model = onnx.load_model_from_string(exported().data)
    inputs = {value.name: value for value in model.graph.input}
    assert tuple(inputs) == INPUT_NAMES
    assert [value.name for value in model.graph.output] == [OUTPUT_NAME]
    context_dims = inputs["context"].type.tensor_type.shape.dim
    assert not context_dims[0].HasField("dim_value") and not context_dims[1].HasField("dim_value")
    metadata, _ = read_metadata(model, "export")
    assert metadata.kind == "fp32" and metadata.weights_sha256 == weights_sha256(tiny_model())


def test_an_opset_below_the_exporters_floor_is_refused() -> None:
    with pytest.raises(ExportError, match=f"opset {MIN_OPSET - 1} is not supported"):
        to_onnx_model(tiny_model(), opset=MIN_OPSET - 1)
