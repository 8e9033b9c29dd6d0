"""The quality gate: when a newly trained model may replace the production one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import FrozenConfig


class GateConfig(FrozenConfig):
    metric: str = Field("recall@10", description="the test-set metric the gate compares")
    floor: float = Field(0.5, ge=0.0, le=1.0, description="the model must score above this")


class PromotionDecision(BaseModel):
    """A failed gate is a decision with reasons, not an error: the run still succeeds."""

    model_config = ConfigDict(frozen=True)

    promote: bool
    reasons: list[str]
    metric: str
    score: float
    floor: float
    best_baseline: float
    incumbent: float | None = Field(description="the production version's score, if any")


def decide_promotion(
    score: float, best_baseline: float, incumbent: float | None, gate: GateConfig
) -> PromotionDecision:
    """Promote only above the floor, above the best baseline and not below production."""
    checks = [
        (score <= gate.floor, f"{gate.metric}={score:.4f} is not above the floor {gate.floor}"),
        (
            score <= best_baseline,
            f"{gate.metric}={score:.4f} is not above the best baseline's {best_baseline:.4f}",
        ),
        (
            incumbent is not None and score < incumbent,
            f"{gate.metric}={score:.4f} is below the production version's {incumbent}",
        ),
    ]
    reasons = [reason for failed, reason in checks if failed]
    return PromotionDecision(
        promote=not reasons,
        reasons=reasons,
        metric=gate.metric,
        score=score,
        floor=gate.floor,
        best_baseline=best_baseline,
        incumbent=incumbent,
    )
