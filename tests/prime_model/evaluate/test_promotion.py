from __future__ import annotations

import pytest

from prime_model import ConfigError
from prime_model.evaluate.promotion import GateConfig, decide_promotion

GATE = GateConfig(floor=0.5)


def test_promotes_when_every_check_passes() -> None:
    decision = decide_promotion(0.9, best_baseline=0.7, incumbent=0.85, gate=GATE)
    assert decision.promote
    assert decision.reasons == []
    assert decide_promotion(0.9, 0.7, None, GATE).promote  # nothing in production yet
    assert decide_promotion(0.85, 0.7, 0.85, GATE).promote  # a tie with production is kept


@pytest.mark.parametrize(
    ("score", "baseline", "incumbent", "needle"),
    [
        (0.4, 0.3, None, "not above the floor 0.5"),
        (0.5, 0.3, None, "not above the floor"),
        (0.7, 0.7, None, "not above the best baseline's 0.7000"),
        (0.8, 0.7, 0.81, "below the production version's 0.81"),
    ],
)
def test_each_failed_check_is_a_reason(
    score: float, baseline: float, incumbent: float | None, needle: str
) -> None:
    decision = decide_promotion(score, baseline, incumbent, GATE)
    assert not decision.promote
    assert any(needle in reason for reason in decision.reasons), decision.reasons


def test_all_reasons_are_listed() -> None:
    assert len(decide_promotion(0.1, 0.2, 0.9, GATE).reasons) == 3


def test_bad_gate() -> None:
    with pytest.raises(ConfigError, match="floor"):
        GateConfig(floor=1.5)


def test_metadata_has_the_decision_why_and_headline_metrics() -> None:
    from prime_model.evaluate.report import EvaluationTable  # noqa: PLC0415

    rows = {
        "model": {"recall@10": 0.8, "mrr": 0.5},
        "query-only": {"recall@10": 0.6, "mrr": 0.4},
        "concat-text": {"recall@10": 0.7, "mrr": 0.45},
        "mean-of-turns": {"recall@10": 0.65, "mrr": 0.3},
    }
    table = EvaluationTable(
        num_turns=10, rows=rows, best_baseline="concat-text", relative_gain=0.8 / 0.7 - 1,
        relative_gains={}, corpus_size=10, encoder_name="stub", max_context_length=4,
    )  # fmt: skip
    kept = decide_promotion(0.8, 0.7, 0.85, GATE).metadata(table)
    assert kept["gate_decision"]["decision"] == "not promoted"
    assert "below the production version's 0.85" in kept["gate_decision"]["why"]
    assert kept["gate_decision"]["production_score"] == 0.85
    assert kept["headline_metrics"] == {
        "model recall@10": 0.8, "model mrr": 0.5, "concat-text recall@10": 0.7,
        "concat-text mrr": 0.45, "gain vs best baseline": "+14.3 %", "best baseline": "concat-text",
    }  # fmt: skip
    promoted = decide_promotion(0.8, 0.7, None, GATE)
    meta = promoted.metadata(table)["gate_decision"]
    assert meta["decision"] == "promoted to production"
    assert "nothing was in production yet" in meta["why"]
    assert meta["production_score"] == "none"


def test_a_copy_of_production_is_not_promoted_even_when_it_ties() -> None:
    decision = decide_promotion(0.85, 0.7, 0.85, GATE, same_as="3")
    assert not decision.promote
    assert decision.reasons == ["the same weights as production version 3: production stays there"]
