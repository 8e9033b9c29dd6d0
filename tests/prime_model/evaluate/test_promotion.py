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
