"""The model card page, from plain data: versions and stages, metrics, decision, lineage."""

from __future__ import annotations

from prime_model.evaluate.model_card import (
    ArtifactRef,
    ModelCard,
    VersionRow,
    lineage_from_outputs,
    render_model_card,
)
from prime_model.evaluate.promotion import GateConfig, decide_promotion
from prime_model.evaluate.report import EvaluationTable

ROWS = {
    "model": {"recall@10": 0.8125, "mrr": 0.61},
    "query-only": {"recall@10": 0.5, "mrr": 0.4},
    "concat-text": {"recall@10": 0.625, "mrr": 0.45},
    "mean-of-turns": {"recall@10": 0.55, "mrr": 0.42},
}


def _table() -> EvaluationTable:
    return EvaluationTable(
        num_turns=16, rows=ROWS, best_baseline="concat-text", relative_gain=0.3,
        relative_gains={"recall@10": 0.3, "mrr": 0.355}, corpus_size=40,
        encoder_name="<enc>", max_context_length=4,
    )  # fmt: skip


def _ref(name: str, n: int, fingerprint: str | None = None) -> ArtifactRef:
    return ArtifactRef(
        name=name, artifact_id=f"id-{name}-{n}", version=str(n), fingerprint=fingerprint
    )


OUTPUTS = {
    "turns": _ref("turns", 3, "f" * 64),
    "validated_turns": _ref("validated_turns", 3),
    "validation_report": _ref("validation_report", 3),
    "encoded_train": _ref("encoded_train", 2, "e" * 64),
    "encoded_test": _ref("encoded_test", 2),
    "predictor_checkpoint": _ref("predictor_checkpoint", 5),
    "onnx_model": _ref("onnx_model", 5),
    "onnx_int8_model": _ref("onnx_int8_model", 4),
}


def _card(score: float = 0.8125, incumbent: float | None = 0.75) -> ModelCard:
    decision = decide_promotion(score, 0.625, incumbent, GateConfig(floor=0.5))
    versions = [
        VersionRow(name="3", number=3, stage="production", created="2026-01-03 10:00", score=score),
        VersionRow(name="2", number=2, stage="archived", created="2026-01-02 10:00", score=0.75),
        VersionRow(name="1", number=1, stage=None, created="2026-01-01 10:00"),
    ]
    return ModelCard(
        model_name="prime-predictor", version="3", description="PRIME predictor", run_name="r-3",
        evaluation=_table(), decision=decision, versions=versions,
        lineage=lineage_from_outputs(OUTPUTS),
    )  # fmt: skip


def test_lineage_in_pipeline_order_and_only_lineage_outputs() -> None:
    stages = lineage_from_outputs(OUTPUTS)
    assert [s.role for s in stages] == ["dataset", "encoded data", "checkpoint", "ONNX exports"]
    assert [a.name for a in stages[0].artifacts] == ["turns", "validated_turns"]
    assert [a.name for a in stages[3].artifacts] == ["onnx_model", "onnx_int8_model"]
    assert "validation_report" not in {a.name for s in stages for a in s.artifacts}
    only_checkpoint = lineage_from_outputs(
        {"predictor_checkpoint": OUTPUTS["predictor_checkpoint"]}
    )
    assert [s.role for s in only_checkpoint] == ["checkpoint"]


def test_card_shows_versions_stages_metrics_decision_and_lineage() -> None:
    page = render_model_card(_card())
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert "Model card: prime-predictor version 3" in page
    for stage in ("production", "archived", "none"):
        assert f'<span class="stage {stage}">{stage}</span>' in page
    assert "3 (this one)" in page and '<tr class="current">' in page
    for system, values in ROWS.items():
        assert f"<td>{system}</td>" in page
        assert f"<td>{values['recall@10']:.3f}</td>" in page
    assert "Gate: promoted to production" in page and "not below the production" in page
    for ref in OUTPUTS.values():
        if ref.name != "validation_report":
            assert ref.artifact_id in page and f"<b>{ref.name}</b> v{ref.version}" in page
    assert "f" * 64 in page and "e" * 64 in page  # fingerprints
    assert "&lt;enc&gt;" in page and "<enc>" not in page  # escaped


def test_a_failed_gate_shows_why() -> None:
    page = render_model_card(_card(score=0.6, incumbent=None))
    assert "Gate: not promoted" in page and 'class="gate fail"' in page
    assert "is not above the best baseline&#x27;s 0.6250" in page
