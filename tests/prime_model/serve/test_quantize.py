from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from prime_model import ExportError
from prime_model.encode.encoding import EncodedTurns
from prime_model.serve.int8 import QuantizationOptions, quantize_verified
from prime_model.serve.onnx_file import load_onnx
from prime_model.serve.optimized import create_predictor
from prime_model.serve.quantize import accept_quantization, compare_quantization, quantize_onnx
from tests.conftest import make_encoded
from tests.prime_model.serve.inference_support import (
    CONFIG,
    eager,
    exported,
    random_inputs,
    tiny_model,
)


@pytest.fixture(scope="module")
def evaluation() -> EncodedTurns:
    return make_encoded(m=48, n=CONFIG.max_context_length, d=CONFIG.input_dim, k=40)


@pytest.mark.parametrize(
    ("fp32", "int8", "accepted"),
    [
        (0.80, 0.80, True),
        (0.80, 0.795, True),
        (0.80, 0.79, True),  # exactly at the tolerance
        (0.80, 0.85, True),  # int8 better: a negative drop
        (0.80, 0.789, False),
        (0.80, 0.60, False),
    ],
)
def test_acceptance_is_recall_within_tolerance(fp32: float, int8: float, accepted: bool) -> None:
    verdict, drop = accept_quantization(fp32, int8, tolerance=0.01)
    assert verdict is accepted
    assert drop == pytest.approx(fp32 - int8)


def test_negative_tolerance_is_an_error() -> None:
    with pytest.raises(ExportError, match="tolerance must be >= 0"):
        accept_quantization(0.5, 0.5, tolerance=-0.1)


def test_accepted_int8_is_written_with_its_metadata(
    tmp_path: Path, evaluation: EncodedTurns
) -> None:
    target = tmp_path / "int8.onnx"
    # 48 turns: one flipped rank moves Recall@10 by 0.02, so this tests the write path with a
    # tolerance the tiny random model always meets; the 0.01 verdict is tested above
    result = quantize_onnx(exported(), target, evaluation, tolerance=0.1)
    assert result.accepted and result.path == target and target.is_file()
    assert result.recall_drop <= 0.1 and result.parity_vs_fp32.min_cosine > 0.999
    assert result.int8_bytes < result.fp32_bytes / 2
    loaded = load_onnx(target)
    assert loaded.metadata.kind == "int8"
    assert loaded.metadata.weights_sha256 == exported().metadata.weights_sha256
    assert loaded.metadata.quantization is not None
    assert loaded.metadata.quantization["source_sha256"] == exported().sha256
    assert loaded.metadata.quantization["per_channel"] is True
    predictor = create_predictor(target)
    assert predictor.backend == "onnx-int8"
    context, query, mask = random_inputs(4, 3)
    got, want = predictor.predict(context, query, mask), eager(tiny_model(), context, query, mask)
    assert (got * want).sum(1).min() > 0.999
    assert "accepted" in result.summary()


def test_rejected_int8_is_reported_with_its_drop_and_not_written(
    tmp_path: Path,
    evaluation: EncodedTurns,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recalls: Iterator[float] = iter([0.9, 0.85])  # fp32 first, then int8

    monkeypatch.setattr("prime_model.serve.quantize.recall_at_10", lambda *args: next(recalls))
    target = tmp_path / "int8.onnx"
    with caplog.at_level(logging.WARNING, logger="prime_model.serve.quantize"):
        result = quantize_onnx(exported(), target, evaluation)
    assert not result.accepted and result.path is None and not target.exists()
    assert result.recall_drop == pytest.approx(0.05)
    assert "REJECTED" in result.summary() and "drop +0.0500" in caplog.text


def test_keeping_attention_fp32_leaves_its_matmuls_unquantised() -> None:
    everything = onnx.load_model_from_string(quantize_verified(exported()).data)
    partial = onnx.load_model_from_string(
        quantize_verified(exported(), QuantizationOptions(keep_attention_fp32=True)).data
    )

    def quantised(model: onnx.ModelProto) -> int:
        return sum(
            n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in model.graph.node
        )

    # qkv and out-projection stay fp32 in every block; the last block's qkv is split in two
    assert quantised(everything) - quantised(partial) == 2 * CONFIG.num_layers + 1


def test_compare_quantization_reports_every_candidate(evaluation: EncodedTurns) -> None:
    candidates = [QuantizationOptions(per_channel=False), QuantizationOptions()]
    results = compare_quantization(exported(), evaluation, candidates, repeats=2)
    assert [r.options for r in results] == candidates
    for result in results:
        assert result.p50_ms_int8 is not None and result.p50_ms_fp32 is not None
        assert np.isfinite(result.recall_int8) and result.path is None


def test_only_fp32_models_are_quantised(evaluation: EncodedTurns, tmp_path: Path) -> None:
    int8 = quantize_verified(exported())
    with pytest.raises(ExportError, match="expected an fp32 model"):
        quantize_verified(int8)
    empty = make_encoded(m=0, n=CONFIG.max_context_length, d=CONFIG.input_dim)
    with pytest.raises(ExportError, match="evaluation set is empty"):
        quantize_onnx(exported(), tmp_path / "x.onnx", empty)
