"""int8 for the CPU it runs on: every candidate scheme measured, the fastest one that holds kept.

At batch 1 the predictor streams all its weights once per request and, at 10 turns of context,
does ~5 GFLOP at the seed's size, so int8 can win on bytes and on arithmetic; by how much, and
whether it stays accurate, depends on the CPU (VNNI or not, see :mod:`prime_model.runtime.cpu`).
So nothing is assumed: each candidate of :func:`~prime_model.export.int8.candidate_options` is
quantised in memory and judged against the fp32 model on an evaluation set. It passes when

- its predictions' min cosine to fp32 is at least ``min_cosine`` (0.999),
- its Recall@10 is within ``tolerance`` (0.01) of fp32's, and
- its batch-1 p50, timed side by side with fp32 here, is ``min_speedup`` (1.2x) faster.

The fastest passing candidate is accepted; when none passes, int8 is rejected with each
candidate's reason and the fp32 model serves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from prime_model.bench.timing import interleaved_p50_ms
from prime_model.config import FrozenConfig
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import ExportError
from prime_model.evaluate.metrics import gold_ranks, metrics_from_ranks
from prime_model.export.export import write_bytes_atomic
from prime_model.export.int8 import QuantizationOptions, candidate_options, quantize_verified
from prime_model.runtime.cpu import instruction_set
from prime_model.runtime.inference import Batch, FloatArray, ParityStats, parity
from prime_model.runtime.loader import INT8_MIN_COSINE
from prime_model.runtime.onnx_file import VerifiedOnnx, load_onnx
from prime_model.runtime.onnx_runtime import OnnxPredictor

logger = logging.getLogger(__name__)

RECALL_TOLERANCE: Final = 0.01
MIN_COSINE: Final = INT8_MIN_COSINE  # one value for the judgement and the re-check at load
MIN_SPEEDUP: Final = 1.2
RECALL_METRIC: Final = "recall@10"


class AcceptanceRule(FrozenConfig):
    """What an int8 candidate must hold to replace fp32 (see the module docstring)."""

    tolerance: float = Field(RECALL_TOLERANCE, ge=0.0, description="allowed Recall@10 drop")
    min_cosine: float = Field(MIN_COSINE, ge=-1.0, le=1.0, description="vs fp32, every row")
    min_speedup: float = Field(MIN_SPEEDUP, ge=0.0, description="fp32 p50 / int8 p50; 0: off")
    repeats: int = Field(20, ge=1, description="timed batch-1 calls per candidate")


class CandidateVerdict(BaseModel):
    """One candidate scheme's numbers and, when it fails, why."""

    model_config = ConfigDict(frozen=True)

    options: QuantizationOptions
    recall_int8: float
    recall_drop: float = Field(description="fp32 - int8 Recall@10; negative if int8 is better")
    parity_vs_fp32: ParityStats
    int8_bytes: int
    p50_ms: float | None = Field(None, description="batch-1 p50, None when not timed")
    speedup: float | None = Field(None, description="fp32 p50 / this p50, same run")
    reason: str | None = Field(None, description="why it fails; None when it passes")

    @property
    def passed(self) -> bool:
        return self.reason is None


class QuantizationResult(BaseModel):
    """The verdict on int8 for this model on this CPU, with every candidate's numbers."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    path: Path | None = Field(description="where the int8 model was written; None if rejected")
    options: QuantizationOptions = Field(description="the accepted scheme, else the first tried")
    cpu: str = Field(description="the instruction set it was measured on, e.g. avx512-vnni")
    reason: str | None = Field(None, description="why int8 was rejected; None when accepted")
    recall_fp32: float
    recall_int8: float
    recall_drop: float
    tolerance: float
    parity_vs_fp32: ParityStats
    int8_bytes: int
    fp32_bytes: int
    p50_ms_int8: float | None = None
    p50_ms_fp32: float | None = None
    candidates: list[CandidateVerdict] = Field(default_factory=list)

    def summary(self) -> str:
        if not self.accepted:
            return f"int8 REJECTED on this {self.cpu} CPU: {self.reason}; fp32 serves"
        speed = ""
        if self.p50_ms_int8 is not None and self.p50_ms_fp32 is not None:
            speed = f"; batch-1 p50 {self.p50_ms_int8:.2f} ms vs fp32 {self.p50_ms_fp32:.2f} ms"
        return (
            f"int8 ({self.options.label}) accepted on this {self.cpu} CPU: Recall@10 "
            f"{self.recall_int8:.4f} vs fp32 {self.recall_fp32:.4f} (drop {self.recall_drop:+.4f}"
            f"); min cosine to fp32 {self.parity_vs_fp32.min_cosine:.5f}{speed}; "
            f"{self.int8_bytes / 1e6:.1f} MB vs {self.fp32_bytes / 1e6:.1f} MB"
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
    chunks = [
        predictor.predict_batch(_rows(encoded, s, s + size)) for s in range(0, len(encoded), size)
    ]
    return np.concatenate(chunks)


def _rows(encoded: EncodedTurns, start: int, stop: int) -> Batch:
    """Turns ``start:stop`` with their roles and concat where ``encoded`` holds them (a model
    that reads concat needs turns encoded with it; :meth:`InferencePredictor.predict_batch`
    says so)."""
    roles, concat = encoded.context_roles, encoded.concat
    return Batch(
        np.ascontiguousarray(encoded.context[start:stop].float().numpy()),
        np.ascontiguousarray(encoded.query[start:stop].float().numpy()),
        np.ascontiguousarray(encoded.context_mask[start:stop].numpy()),
        None if roles is None else np.ascontiguousarray(roles[start:stop].numpy()),
        None if concat is None else np.ascontiguousarray(concat[start:stop].float().numpy()),
    )


def recall_at_10(predictions: FloatArray, encoded: EncodedTurns) -> float:
    ranks = gold_ranks(torch.from_numpy(predictions), encoded.corpus, encoded.target_index)
    return metrics_from_ranks(ranks)[RECALL_METRIC]


def _reason(verdict: CandidateVerdict, rule: AcceptanceRule) -> str | None:
    if verdict.parity_vs_fp32.min_cosine < rule.min_cosine:
        return f"min cosine to fp32 {verdict.parity_vs_fp32.min_cosine:.5f} < {rule.min_cosine}"
    if verdict.recall_drop > rule.tolerance + 1e-12:
        return f"Recall@10 drop {verdict.recall_drop:.4f} > {rule.tolerance}"
    if rule.min_speedup > 0 and verdict.speedup is not None and verdict.speedup < rule.min_speedup:
        return f"only {verdict.speedup:.2f}x faster than fp32 here (needs {rule.min_speedup}x)"
    return None


def _judge(
    source: VerifiedOnnx,
    evaluation: EncodedTurns,
    candidates: Sequence[QuantizationOptions],
    rule: AcceptanceRule,
) -> tuple[list[VerifiedOnnx], list[CandidateVerdict], float, float | None]:
    """Every candidate quantised, scored and (when speed matters) timed against fp32."""
    fp32 = OnnxPredictor(source)
    reference = predict_all(fp32, evaluation)
    recall_fp32 = recall_at_10(reference, evaluation)
    models, predictors, verdicts = [], [], []
    for options in candidates:
        int8 = quantize_verified(source, options)
        predictor = OnnxPredictor(int8)
        predictions = predict_all(predictor, evaluation)
        recall_int8 = recall_at_10(predictions, evaluation)
        models.append(int8)
        predictors.append(predictor)
        verdicts.append(
            CandidateVerdict(
                options=options,
                recall_int8=recall_int8,
                recall_drop=recall_fp32 - recall_int8,
                parity_vs_fp32=parity(predictions, reference),
                int8_bytes=int8.weight_bytes,
            )
        )
    fp32_ms: float | None = None
    if rule.min_speedup > 0:
        one = _rows(evaluation, 0, 1)
        calls = [lambda p=p: p.predict_batch(one) for p in (fp32, *predictors)]
        fp32_ms, *int8_ms = interleaved_p50_ms(calls, rule.repeats)
        verdicts = [
            v.model_copy(update={"p50_ms": ms, "speedup": fp32_ms / ms})
            for v, ms in zip(verdicts, int8_ms, strict=True)
        ]
    verdicts = [v.model_copy(update={"reason": _reason(v, rule)}) for v in verdicts]
    return models, verdicts, recall_fp32, fp32_ms


def choose_quantization(
    fp32: str | Path | VerifiedOnnx,
    evaluation: EncodedTurns,
    candidates: Sequence[QuantizationOptions] | None = None,
    rule: AcceptanceRule | None = None,
) -> tuple[VerifiedOnnx | None, QuantizationResult]:
    """The fastest candidate that holds (see the module docstring), or None, and the verdict.

    ``candidates`` default to :func:`~prime_model.export.int8.candidate_options` for this CPU;
    ``evaluation``: encoded turns with a corpus and gold targets (e.g. the held-out split).
    """
    rule = rule or AcceptanceRule()
    if len(evaluation) == 0:
        raise ExportError("the evaluation set is empty; Recall@10 needs at least one turn")
    options = list(candidates) if candidates is not None else list(candidate_options())
    if not options:
        raise ExportError("no quantisation candidates given; expected at least one")
    source = fp32 if isinstance(fp32, VerifiedOnnx) else load_onnx(fp32)
    models, verdicts, recall_fp32, fp32_ms = _judge(source, evaluation, options, rule)
    passing = [i for i, v in enumerate(verdicts) if v.passed]
    best = min(passing, key=lambda i: verdicts[i].p50_ms or 0.0) if passing else 0
    chosen = verdicts[best]
    reason = None if passing else "; ".join(f"{v.options.label}: {v.reason}" for v in verdicts)
    result = QuantizationResult(
        accepted=bool(passing),
        path=None,
        options=chosen.options,
        cpu=instruction_set().label,
        reason=reason,
        recall_fp32=recall_fp32,
        recall_int8=chosen.recall_int8,
        recall_drop=chosen.recall_drop,
        tolerance=rule.tolerance,
        parity_vs_fp32=chosen.parity_vs_fp32,
        int8_bytes=chosen.int8_bytes,
        fp32_bytes=source.weight_bytes,
        p50_ms_int8=chosen.p50_ms,
        p50_ms_fp32=fp32_ms,
        candidates=verdicts,
    )
    (logger.info if result.accepted else logger.warning)("%s", result.summary())
    return (models[best] if passing else None), result


def quantize_onnx(
    fp32: str | Path | VerifiedOnnx,
    path: str | Path,
    evaluation: EncodedTurns,
    candidates: Sequence[QuantizationOptions] | None = None,
    rule: AcceptanceRule | None = None,
) -> QuantizationResult:
    """:func:`choose_quantization`, then the accepted int8 model written to ``path``; a rejected
    one is not written."""
    int8, result = choose_quantization(fp32, evaluation, candidates, rule)
    if int8 is None:
        return result
    target = Path(path)
    write_bytes_atomic(target, int8.data)
    logger.info("wrote %s", target)
    return result.model_copy(update={"path": target})
