"""The one chooser: which stored export (or torch backend) answers, and that it never exports."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from prime_model import PredictorError, load_checkpoint, save_checkpoint
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.export.export import export_verified
from prime_model.export.int8 import quantize_verified
from prime_model.runtime import loader
from prime_model.runtime.cpu import InstructionSet, instruction_set
from prime_model.runtime.inference import EagerPredictor
from prime_model.runtime.loader import create_predictor, int8_holds_here
from prime_model.runtime.onnx_file import VerifiedOnnx
from prime_model.runtime.onnx_runtime import OnnxPredictor
from prime_model.runtime.optimized import OptimizedPredictor
from tests.prime_model.runtime.inference_support import CONFIG, eager, random_inputs, tiny_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> PredictorCheckpoint:
    return load_checkpoint(save_checkpoint(tiny_model(), tmp_path_factory.mktemp("ckpt") / "m"))


@pytest.fixture(scope="module")
def fp32(checkpoint: PredictorCheckpoint) -> VerifiedOnnx:
    return export_verified(checkpoint.model, weights_sha256=checkpoint.metadata.weights_sha256)


@pytest.fixture(scope="module")
def int8(fp32: VerifiedOnnx) -> VerifiedOnnx:
    """An int8 model whatever this CPU's verdict: what auto picks is under test, not the verdict."""
    return quantize_verified(fp32)


def test_auto_prefers_stored_int8_then_fp32_then_eager(
    fp32: VerifiedOnnx, checkpoint: PredictorCheckpoint, int8: VerifiedOnnx
) -> None:
    auto = create_predictor(checkpoint, onnx_fp32=fp32, onnx_int8=int8)
    assert isinstance(auto, OnnxPredictor) and auto.onnx_model is int8
    stored = create_predictor(checkpoint, onnx_fp32=fp32)
    assert isinstance(stored, OnnxPredictor) and stored.onnx_model is fp32
    assert isinstance(create_predictor(checkpoint), EagerPredictor)  # nothing exported: no export
    context, query, mask = random_inputs(3, CONFIG.max_context_length)
    expected = eager(checkpoint.model, context, query, mask)
    np.testing.assert_allclose(stored.predict(context, query, mask), expected, atol=1e-5)
    cosine = np.sum(auto.predict(context, query, mask) * expected, axis=1)
    assert cosine.min() > 0.95  # not garbage; how close int8 must be is the export's rule


def test_int8_judged_on_another_cpu_is_rechecked_before_it_serves(
    fp32: VerifiedOnnx,
    checkpoint: PredictorCheckpoint,
    int8: VerifiedOnnx,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert int8_holds_here(int8, fp32, min_cosine=2.0)  # judged here: no recheck
    elsewhere = InstructionSet(architecture="x86_64", features=("avx2",))
    if instruction_set().label == elsewhere.label:
        elsewhere = InstructionSet(architecture="x86_64", features=("avx512f", "avx512_vnni"))
    monkeypatch.setattr(loader, "instruction_set", lambda: elsewhere)
    assert int8_holds_here(int8, fp32, min_cosine=-1.0)
    with caplog.at_level(logging.WARNING, logger="prime_model.runtime.loader"):
        assert not int8_holds_here(int8, fp32, min_cosine=2.0)
    assert f"on this {elsewhere.label} one its min cosine" in caplog.text
    monkeypatch.setattr(loader, "INT8_MIN_COSINE", 2.0)
    auto = create_predictor(checkpoint, onnx_fp32=fp32, onnx_int8=int8)
    assert isinstance(auto, OnnxPredictor) and auto.onnx_model is fp32


def test_explicit_backends_run_what_was_stored(
    fp32: VerifiedOnnx, checkpoint: PredictorCheckpoint, int8: VerifiedOnnx
) -> None:
    assert isinstance(create_predictor(checkpoint, "eager", onnx_fp32=fp32), EagerPredictor)
    onnx = create_predictor(checkpoint, "onnx", onnx_fp32=fp32, onnx_int8=int8)
    assert isinstance(onnx, OnnxPredictor) and onnx.onnx_model is fp32
    compiled = create_predictor(checkpoint.model, "compiled", buckets=(2,))
    assert isinstance(compiled, OptimizedPredictor) and compiled.buckets == (2, 8)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_an_onnx_backend_without_an_export_says_to_run_prime_export(
    checkpoint: PredictorCheckpoint, fp32: VerifiedOnnx, backend: str
) -> None:
    with pytest.raises(PredictorError, match="prime export"):
        create_predictor(checkpoint, backend, onnx_fp32=None if backend == "onnx" else fp32)


def test_files_run_as_exported_and_an_fp32_file_is_not_quantised_here(
    tmp_path: Path, fp32: VerifiedOnnx, int8: VerifiedOnnx
) -> None:
    fp32_file, int8_file = tmp_path / "model.onnx", tmp_path / "model-int8.onnx"
    fp32_file.write_bytes(fp32.data)
    int8_file.write_bytes(int8.data)
    assert create_predictor(fp32_file).backend == "onnx"
    assert create_predictor(int8_file).backend == "onnx-int8"
    assert create_predictor(int8_file, "onnx").backend == "onnx-int8"  # the file decides
    with pytest.raises(PredictorError, match=r"is an fp32 model.*prime export"):
        create_predictor(fp32_file, "onnx-int8")


def test_errors_name_the_problem(tmp_path: Path, fp32: VerifiedOnnx) -> None:
    model = tiny_model()
    with pytest.raises(PredictorError, match="unknown backend 'tpu'"):
        create_predictor(model, "tpu")
    with pytest.raises(PredictorError, match="invalid device"):
        create_predictor(model, "eager", device="nonsense:0")
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(fp32.data)
    with pytest.raises(PredictorError, match="needs the torch model"):
        create_predictor(onnx_file, "compiled")
    text = tmp_path / "weights.txt"
    text.write_text("not a model", encoding="utf-8")
    with pytest.raises(PredictorError, match=r"not a \.onnx model"):
        create_predictor(text)
    with pytest.raises(PredictorError, match="cannot build a predictor from a int"):
        create_predictor(3)  # type: ignore[arg-type]
