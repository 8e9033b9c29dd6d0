"""int8 dynamic quantisation of an exported predictor, accepted only if retrieval holds.

At batch 1 the predictor streams all its weights once per request, so int8 weights (a quarter of
the bytes) are the big CPU lever. Dynamic quantisation needs no calibration data: weights are
quantised offline, activations per call. A quantised model is accepted only when its Recall@10 on
an evaluation set is within ``tolerance`` (0.01) of the fp32 model's; otherwise it is reported as
rejected, with the measured drop, and not written.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import ExportError
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.serve.inference import Batch, FloatArray, ParityStats, parity
from prime_model.serve.int8 import (
    CANDIDATE_OPTIONS,
    DEFAULT_OPTIONS,
    QuantizationOptions,
    quantize_verified,
)
from prime_model.serve.onnx_file import VerifiedOnnx, load_onnx, write_bytes_atomic
from prime_model.serve.onnx_runtime import OnnxPredictor

logger = logging.getLogger(__name__)

RECALL_TOLERANCE: Final = 0.01
RECALL_METRIC: Final = "recall@10"


class QuantizationResult(BaseModel):
    """The verdict on one quantised model, with the numbers it rests on."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    path: Path | None = Field(description="where the int8 model was written; None if rejected")
    options: QuantizationOptions
    recall_fp32: float
    recall_int8: float
    recall_drop: float = Field(description="fp32 - int8 Recall@10; negative if int8 is better")
    tolerance: float
    parity_vs_fp32: ParityStats
    int8_bytes: int
    fp32_bytes: int
    p50_ms_int8: float | None = Field(None, description="batch-1 latency, when measured")
    p50_ms_fp32: float | None = None

    def summary(self) -> str:
        verdict = "accepted" if self.accepted else "REJECTED"
        return (
            f"int8 ({self.options.label}) {verdict}: Recall@10 {self.recall_int8:.4f} vs fp32 "
            f"{self.recall_fp32:.4f} (drop {self.recall_drop:+.4f}, tolerance "
            f"{self.tolerance}); min cosine to fp32 {self.parity_vs_fp32.min_cosine:.5f}; "
            f"{self.int8_bytes / 1e6:.0f} MB vs {self.fp32_bytes / 1e6:.0f} MB"
        )


def accept_quantization(
    recall_fp32: float, recall_int8: float, tolerance: float = RECALL_TOLERANCE
) -> tuple[bool, float]:
    """(accepted, drop): accepted when int8 Recall@10 is at most ``tolerance`` below fp32's."""
    if tolerance < 0:
        raise ExportError(f"tolerance must be >= 0, got {tolerance}")
    drop = recall_fp32 - recall_int8
    return drop <= tolerance + 1e-12, drop


def predict_all(predictor: OnnxPredictor, encoded: EncodedTurns) -> FloatArray:
    size = predictor.config.max_batch_size or 256
    chunks = []
    for start in range(0, len(encoded), size):
        part = slice(start, start + size)
        chunks.append(
            predictor.predict_batch(
                Batch(
                    np.ascontiguousarray(encoded.context[part].float().numpy()),
                    np.ascontiguousarray(encoded.query[part].float().numpy()),
                    np.ascontiguousarray(encoded.context_mask[part].numpy()),
                )
            )
        )
    return np.concatenate(chunks)


def recall_at_10(predictions: FloatArray, encoded: EncodedTurns) -> float:
    ranks = gold_ranks(torch.from_numpy(predictions), encoded.corpus, encoded.target_index)
    return metrics_from_ranks(ranks)[RECALL_METRIC]


def _p50_ms(predictors: Sequence[OnnxPredictor], batch: Batch, repeats: int) -> list[float]:
    """Interleaved batch-1 timings, so background load hits every candidate alike."""
    times: list[list[float]] = [[] for _ in predictors]
    for predictor in predictors:
        predictor.predict_batch(batch)
    for _ in range(repeats):
        for slot, predictor in zip(times, predictors, strict=True):
            start = time.perf_counter()
            predictor.predict_batch(batch)
            slot.append(time.perf_counter() - start)
    return [statistics.median(t) * 1e3 for t in times]


def _fp32_source(fp32: str | Path | VerifiedOnnx) -> VerifiedOnnx:
    return fp32 if isinstance(fp32, VerifiedOnnx) else load_onnx(fp32)


def _quantize_and_judge(
    source: VerifiedOnnx,
    evaluation: EncodedTurns,
    reference: FloatArray,
    recall_fp32: float,
    *,
    options: QuantizationOptions,
    tolerance: float,
) -> tuple[VerifiedOnnx, OnnxPredictor, QuantizationResult]:
    """Quantise ``source`` with ``options`` and judge it against the fp32 ``reference``."""
    int8 = quantize_verified(source, options)
    predictor = OnnxPredictor(int8)
    candidate = predict_all(predictor, evaluation)
    recall_int8 = recall_at_10(candidate, evaluation)
    accepted, drop = accept_quantization(recall_fp32, recall_int8, tolerance)
    result = QuantizationResult(
        accepted=accepted,
        path=None,
        options=options,
        recall_fp32=recall_fp32,
        recall_int8=recall_int8,
        recall_drop=drop,
        tolerance=tolerance,
        parity_vs_fp32=parity(candidate, reference),
        int8_bytes=int8.weight_bytes,
        fp32_bytes=source.weight_bytes,
    )
    return int8, predictor, result


def judge_quantization(
    fp32: str | Path | VerifiedOnnx,
    evaluation: EncodedTurns,
    *,
    options: QuantizationOptions = DEFAULT_OPTIONS,
    tolerance: float = RECALL_TOLERANCE,
) -> tuple[VerifiedOnnx, QuantizationResult]:
    """Quantise in memory and judge: the int8 model and the verdict (``path`` is None)."""
    if len(evaluation) == 0:
        raise ExportError("the evaluation set is empty; Recall@10 needs at least one turn")
    source = _fp32_source(fp32)
    reference = predict_all(OnnxPredictor(source), evaluation)
    recall_fp32 = recall_at_10(reference, evaluation)
    int8, _, result = _quantize_and_judge(
        source, evaluation, reference, recall_fp32, options=options, tolerance=tolerance
    )
    log = logger.info if result.accepted else logger.warning
    log("%s", result.summary())
    return int8, result


def quantize_onnx(
    fp32: str | Path | VerifiedOnnx,
    path: str | Path,
    evaluation: EncodedTurns,
    *,
    options: QuantizationOptions = DEFAULT_OPTIONS,
    tolerance: float = RECALL_TOLERANCE,
) -> QuantizationResult:
    """Quantise a PRIME fp32 ONNX model to int8 and write it to ``path`` if it is accepted.

    ``evaluation``: encoded turns with a corpus and gold targets (e.g. the validation split);
    Recall@10 of both models is measured on them. A rejected model is not written.
    """
    int8, result = judge_quantization(fp32, evaluation, options=options, tolerance=tolerance)
    if not result.accepted:
        return result
    target = Path(path)
    write_bytes_atomic(target, int8.data)
    logger.info("wrote %s", target)
    return result.model_copy(update={"path": target})


def compare_quantization(
    fp32: str | Path | VerifiedOnnx,
    evaluation: EncodedTurns,
    candidates: Sequence[QuantizationOptions] = CANDIDATE_OPTIONS,
    *,
    tolerance: float = RECALL_TOLERANCE,
    repeats: int = 20,
) -> list[QuantizationResult]:
    """Every candidate's Recall@10 verdict and batch-1 p50 (interleaved with fp32); nothing is
    written. This is how :data:`DEFAULT_OPTIONS` was chosen."""
    source = _fp32_source(fp32)
    fp32_predictor = OnnxPredictor(source)
    reference = predict_all(fp32_predictor, evaluation)
    recall_fp32 = recall_at_10(reference, evaluation)
    judged, predictors = [], []
    for options in candidates:
        _, predictor, result = _quantize_and_judge(
            source, evaluation, reference, recall_fp32, options=options, tolerance=tolerance
        )
        judged.append(result)
        predictors.append(predictor)
    one = Batch(
        evaluation.context[:1].float().numpy(),
        evaluation.query[:1].float().numpy(),
        evaluation.context_mask[:1].numpy(),
    )
    fp32_ms, *int8_ms = _p50_ms([fp32_predictor, *predictors], one, repeats)
    return [
        result.model_copy(update={"p50_ms_int8": ms, "p50_ms_fp32": fp32_ms})
        for result, ms in zip(judged, int8_ms, strict=True)
    ]
