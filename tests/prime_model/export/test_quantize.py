"""int8 chosen for the CPU the tests run on: what must hold on every CPU, never one CPU's numbers.

Accepted means the chosen candidate met every criterion of the rule here; rejected means a stated
reason per candidate. Which scheme wins, and whether any does, is this machine's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest

from prime_model import ConfigError, ExportError
from prime_model.encode.encoding import EncodedTurns
from prime_model.export import quantize as quantize_module
from prime_model.export.int8 import QuantizationOptions, quantize_verified
from prime_model.export.quantize import (
    AcceptanceRule,
    QuantizationResult,
    accept_quantization,
    choose_quantization,
    predict_all,
    quantize_onnx,
)
from prime_model.runtime.cpu import instruction_set
from prime_model.runtime.loader import create_predictor
from prime_model.runtime.onnx_file import load_onnx
from prime_model.runtime.onnx_runtime import OnnxPredictor
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, exported

# the write path and the selection logic, with no criterion that this CPU could fail
ANYTHING_GOES = AcceptanceRule(tolerance=1.0, min_cosine=-1.0, min_speedup=0.0, repeats=2)
DYNAMIC = QuantizationOptions()
WEIGHT_ONLY = QuantizationOptions(scheme="weight-only", bits=8, block_size=16)


@pytest.fixture(scope="module")
def evaluation() -> EncodedTurns:
    return make_encoded(m=48, n=CONFIG.max_context_length, d=CONFIG.input_dim, k=40)


@pytest.fixture(scope="module")
def measured(evaluation: EncodedTurns) -> QuantizationResult:
    """The real judgement of every default candidate on this CPU (speed included)."""
    return choose_quantization(exported(), evaluation, rule=AcceptanceRule(repeats=4))[1]


def _fixed_timings(fp32_ms: float, int8_ms: Sequence[float]) -> Callable[..., list[float]]:
    return lambda calls, repeats: [fp32_ms, *int8_ms][: len(calls)]


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


def test_every_candidate_is_judged_by_the_rule_on_this_cpu(measured: QuantizationResult) -> None:
    rule = AcceptanceRule()
    assert measured.cpu == instruction_set().label and len(measured.candidates) == 5
    assert measured.p50_ms_fp32 is not None and measured.p50_ms_fp32 > 0
    for candidate in measured.candidates:
        assert candidate.p50_ms is not None and candidate.speedup is not None
        assert candidate.speedup == pytest.approx(measured.p50_ms_fp32 / candidate.p50_ms)
        holds = (
            candidate.parity_vs_fp32.min_cosine >= rule.min_cosine
            and candidate.recall_drop <= rule.tolerance + 1e-12
            and candidate.speedup >= rule.min_speedup
        )
        assert candidate.passed is holds
        if not holds:
            assert candidate.reason and any(
                word in candidate.reason for word in ("cosine", "Recall@10", "faster")
            )
    passing = [c for c in measured.candidates if c.passed]
    assert measured.accepted is bool(passing)
    if measured.accepted:  # the fastest passing one, and its numbers are the headline
        fastest = min(passing, key=lambda c: c.p50_ms or 0.0)
        assert measured.options == fastest.options and measured.reason is None
        assert measured.parity_vs_fp32.min_cosine >= rule.min_cosine
        assert measured.recall_drop <= rule.tolerance + 1e-12
    else:
        assert measured.reason is not None and "REJECTED" in measured.summary()
        for candidate in measured.candidates:
            assert candidate.options.label in measured.reason


def test_the_fastest_passing_candidate_is_chosen(
    evaluation: EncodedTurns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize_module, "interleaved_p50_ms", _fixed_timings(10.0, [6.0, 2.0]))
    rule = ANYTHING_GOES.model_copy(update={"min_speedup": 1.5})
    int8, result = choose_quantization(exported(), evaluation, [DYNAMIC, WEIGHT_ONLY], rule)
    assert result.accepted and result.options == WEIGHT_ONLY and result.p50_ms_int8 == 2.0
    assert int8 is not None and int8.metadata.quantization is not None
    assert int8.metadata.quantization["scheme"] == "weight-only"
    assert [c.speedup for c in result.candidates] == [pytest.approx(10 / 6), 5.0]


def test_int8_that_is_not_faster_here_is_rejected_with_the_reason(
    evaluation: EncodedTurns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize_module, "interleaved_p50_ms", _fixed_timings(5.0, [5.0, 6.0]))
    rule = ANYTHING_GOES.model_copy(update={"min_speedup": 1.2})
    int8, result = choose_quantization(exported(), evaluation, [DYNAMIC, WEIGHT_ONLY], rule)
    assert int8 is None and not result.accepted
    assert result.reason is not None and result.reason.count("faster than fp32 here") == 2
    assert "1.00x" in result.reason and "0.83x" in result.reason


def test_accepted_int8_is_written_with_its_metadata(
    tmp_path: Path, evaluation: EncodedTurns
) -> None:
    target = tmp_path / "int8.onnx"
    result = quantize_onnx(exported(), target, evaluation, [DYNAMIC], ANYTHING_GOES)
    assert result.accepted and result.path == target and target.is_file()
    assert result.int8_bytes < result.fp32_bytes / 2
    loaded = load_onnx(target)
    assert loaded.metadata.kind == "int8"
    assert loaded.metadata.weights_sha256 == exported().metadata.weights_sha256
    quantization = loaded.metadata.quantization
    assert quantization is not None and quantization["source_sha256"] == exported().sha256
    assert quantization["scheme"] == "dynamic" and quantization["cpu"] == instruction_set().label
    predictor = create_predictor(target)
    assert predictor.backend == "onnx-int8"
    assert "accepted" in result.summary()


def test_rejected_int8_is_reported_with_its_drop_and_not_written(
    tmp_path: Path,
    evaluation: EncodedTurns,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recalls: Iterator[float] = iter([0.9, 0.85])  # fp32 first, then int8
    monkeypatch.setattr(quantize_module, "recall_at_10", lambda *args: next(recalls))
    target = tmp_path / "int8.onnx"
    rule = ANYTHING_GOES.model_copy(update={"tolerance": 0.01})
    with caplog.at_level(logging.WARNING, logger="prime_model.export.quantize"):
        result = quantize_onnx(exported(), target, evaluation, [DYNAMIC], rule)
    assert not result.accepted and result.path is None and not target.exists()
    assert result.recall_drop == pytest.approx(0.05)
    assert "REJECTED" in caplog.text and "Recall@10 drop 0.0500 > 0.01" in caplog.text


def test_weight_only_int8_replaces_every_weight_matmul_and_stays_close_to_fp32(
    evaluation: EncodedTurns,
) -> None:
    int8 = quantize_verified(exported(), WEIGHT_ONLY)
    ops = [node.op_type for node in onnx.load_model_from_string(int8.data).graph.node]
    assert "Gemm" not in ops and ops.count("MatMulNBits") >= 4 * CONFIG.num_layers
    reference = predict_all(OnnxPredictor(exported()), evaluation)
    got = predict_all(OnnxPredictor(int8), evaluation)
    # 8-bit blocks with a scale each and no 16-bit saturation: close on any CPU
    assert np.sum(got * reference, axis=1).min() > 0.999


def test_keeping_attention_fp32_leaves_its_matmuls_unquantised() -> None:
    everything = onnx.load_model_from_string(quantize_verified(exported(), DYNAMIC).data)
    partial = onnx.load_model_from_string(
        quantize_verified(exported(), QuantizationOptions(keep_attention_fp32=True)).data
    )

    def quantised(model: onnx.ModelProto) -> int:
        return sum(
            n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in model.graph.node
        )

    # qkv and out-projection stay fp32 in every block; the last block's qkv is split in two
    assert quantised(everything) - quantised(partial) == 2 * CONFIG.num_layers + 1


def test_only_fp32_models_are_quantised_and_bad_requests_are_typed(
    evaluation: EncodedTurns, tmp_path: Path
) -> None:
    int8 = quantize_verified(exported())
    with pytest.raises(ExportError, match="expected an fp32 model"):
        quantize_verified(int8)
    empty = make_encoded(m=0, n=CONFIG.max_context_length, d=CONFIG.input_dim)
    with pytest.raises(ExportError, match="evaluation set is empty"):
        quantize_onnx(exported(), tmp_path / "x.onnx", empty)
    with pytest.raises(ExportError, match="no quantisation candidates"):
        choose_quantization(exported(), evaluation, [])
    assert not list(tmp_path.iterdir())


def test_a_bad_acceptance_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid AcceptanceRule"):
        AcceptanceRule(min_cosine=2.0)
    with pytest.raises(ConfigError, match="invalid AcceptanceRule"):
        AcceptanceRule(repeats=0)
