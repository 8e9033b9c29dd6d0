"""Exports stored for serving, and which of them answers a backend request."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from prime_model import PredictorError, load_checkpoint, save_checkpoint
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoding import EncodedTurns
from prime_model.serve import quantize, serving_models
from prime_model.runtime.cpu import InstructionSet, instruction_set
from prime_model.runtime.inference import EagerPredictor
from prime_model.export.int8 import QuantizationOptions, candidate_options, quantize_verified
from prime_model.runtime.onnx_file import VerifiedOnnx
from prime_model.runtime.onnx_runtime import OnnxPredictor
from prime_model.export.quantize import MIN_COSINE, AcceptanceRule
from prime_model.export.serving_models import (
    ExportConfig,
    ServingModels,
    export_serving_models,
    int8_holds_here,
    serving_predictor,
)
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, eager, random_inputs, tiny_model

ANYTHING_GOES = AcceptanceRule(tolerance=1.0, min_cosine=-1.0, min_speedup=0.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> PredictorCheckpoint:
    return load_checkpoint(save_checkpoint(tiny_model(), tmp_path_factory.mktemp("ckpt") / "m"))


@pytest.fixture(scope="module")
def evaluation() -> EncodedTurns:
    return make_encoded(m=40, n=CONFIG.max_context_length, d=CONFIG.input_dim, k=30)


@pytest.fixture(scope="module")
def models(checkpoint: PredictorCheckpoint, evaluation: EncodedTurns) -> ServingModels:
    return export_serving_models(checkpoint, evaluation, ExportConfig())


def test_exports_fp32_and_keeps_int8_only_when_accepted(
    models: ServingModels, checkpoint: PredictorCheckpoint
) -> None:
    assert models.fp32.metadata.kind == "fp32"
    assert models.fp32.metadata.weights_sha256 == checkpoint.metadata.weights_sha256
    assert models.quantization is not None
    assert models.quantization.accepted == (models.int8 is not None)
    assert len(models.quantization.candidates) == len(candidate_options())  # all, on this CPU
    if models.int8 is not None:  # accepted here: it met the rule here
        assert models.int8.metadata.kind == "int8"
        assert models.int8.weight_bytes < models.fp32.weight_bytes
        assert models.quantization.parity_vs_fp32.min_cosine >= MIN_COSINE
    else:
        assert models.quantization.reason


def test_int8_off_and_rejected_int8_are_not_kept(
    checkpoint: PredictorCheckpoint, evaluation: EncodedTurns, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = export_serving_models(checkpoint, evaluation, ExportConfig(int8=False))
    assert off.int8 is None and off.quantization is None

    forced = ExportConfig(quantization=QuantizationOptions(), acceptance=ANYTHING_GOES)
    one = export_serving_models(checkpoint, evaluation, forced)
    assert one.int8 is not None and one.quantization is not None
    assert [c.options for c in one.quantization.candidates] == [QuantizationOptions()]

    recalls = iter([0.9, 0.5])  # fp32, then the int8 candidate
    monkeypatch.setattr(quantize, "recall_at_10", lambda *args: next(recalls))
    # only the Recall@10 criterion can fail: cosine and speed are this CPU's business
    only_recall = ANYTHING_GOES.model_copy(update={"tolerance": 0.01})
    strict = forced.model_copy(update={"acceptance": only_recall})
    rejected = export_serving_models(checkpoint, evaluation, strict)
    assert rejected.int8 is None
    assert rejected.quantization is not None and not rejected.quantization.accepted
    assert "Recall@10 drop 0.4000 > 0.01" in (rejected.quantization.reason or "")


@pytest.fixture(scope="module")
def int8(models: ServingModels) -> VerifiedOnnx:
    """An int8 model whatever this CPU's verdict: what auto picks is under test, not the verdict."""
    return quantize_verified(models.fp32)


def test_auto_prefers_stored_int8_then_fp32(
    models: ServingModels, checkpoint: PredictorCheckpoint, int8: VerifiedOnnx
) -> None:
    auto = serving_predictor(checkpoint, onnx_fp32=models.fp32, onnx_int8=int8)
    assert isinstance(auto, OnnxPredictor) and auto.onnx_model is int8
    fp32 = serving_predictor(checkpoint, onnx_fp32=models.fp32)
    assert isinstance(fp32, OnnxPredictor) and fp32.onnx_model is models.fp32
    context, query, mask = random_inputs(3, CONFIG.max_context_length)
    expected = eager(checkpoint.model, context, query, mask)
    np.testing.assert_allclose(fp32.predict(context, query, mask), expected, atol=1e-5)
    cosine = np.sum(auto.predict(context, query, mask) * expected, axis=1)
    assert cosine.min() > 0.95  # not garbage; how close int8 must be is the export's rule


def test_int8_judged_on_another_cpu_is_rechecked_before_it_serves(
    models: ServingModels,
    checkpoint: PredictorCheckpoint,
    int8: VerifiedOnnx,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert int8_holds_here(int8, models.fp32, min_cosine=2.0)  # judged here: no recheck
    elsewhere = InstructionSet(architecture="x86_64", features=("avx2",))
    if instruction_set().label == elsewhere.label:
        elsewhere = InstructionSet(architecture="x86_64", features=("avx512f", "avx512_vnni"))
    monkeypatch.setattr(serving_models, "instruction_set", lambda: elsewhere)
    assert int8_holds_here(int8, models.fp32, min_cosine=-1.0)
    with caplog.at_level(logging.WARNING, logger="prime_model.export.serving_models"):
        assert not int8_holds_here(int8, models.fp32, min_cosine=2.0)
    assert f"on this {elsewhere.label} one its min cosine" in caplog.text
    monkeypatch.setattr(serving_models, "MIN_COSINE", 2.0)
    auto = serving_predictor(checkpoint, onnx_fp32=models.fp32, onnx_int8=int8)
    assert isinstance(auto, OnnxPredictor) and auto.onnx_model is models.fp32


def test_explicit_backends_and_errors(
    models: ServingModels, checkpoint: PredictorCheckpoint, int8: VerifiedOnnx
) -> None:
    assert isinstance(serving_predictor(checkpoint, "eager", onnx_fp32=models.fp32), EagerPredictor)
    onnx = serving_predictor(checkpoint, "onnx", onnx_fp32=models.fp32, onnx_int8=int8)
    assert isinstance(onnx, OnnxPredictor) and onnx.onnx_model is models.fp32
    exported = serving_predictor(checkpoint, "onnx")  # nothing stored: exported on the fly
    assert isinstance(exported, OnnxPredictor) and exported.backend == "onnx"
    with pytest.raises(PredictorError, match="unknown backend 'tpu'"):
        serving_predictor(checkpoint, "tpu")
    with pytest.raises(PredictorError, match="invalid device"):
        serving_predictor(checkpoint, "onnx", device="nonsense:0")


def test_export_writes_nothing_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline stores exports as artifacts; the library call itself leaves no files."""
    monkeypatch.chdir(tmp_path)
    model = tiny_model()
    checkpoint = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt"))
    before = sorted(p.name for p in tmp_path.iterdir())
    export_serving_models(checkpoint, make_encoded(m=8, n=4, d=16, k=8), ExportConfig(int8=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
