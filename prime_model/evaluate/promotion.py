"""The quality gate: when a newly trained model may replace the production one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import FrozenConfig
from prime_model.evaluate.report import MODEL, EvaluationTable


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

    @property
    def verdict(self) -> str:
        return "promoted to production" if self.promote else "not promoted"

    def explanation(self) -> list[str]:
        """Why, in words: the failed checks, or every check that passed."""
        if not self.promote:
            return list(self.reasons)
        production = (
            "nothing was in production yet"
            if self.incumbent is None
            else f"not below the production version's {self.incumbent:.4f}"
        )
        return [
            f"{self.metric}={self.score:.4f} is above the floor {self.floor}",
            f"above the best baseline's {self.best_baseline:.4f}",
            production,
        ]

    def metadata(self, evaluation: EvaluationTable) -> dict[str, Any]:
        """What the dashboard's Metadata tabs show: the decision first, then headline metrics.

        Flat keys with scalar values, so each one is a row there rather than a JSON blob.
        """
        best = evaluation.best_baseline
        headline: dict[str, Any] = {
            f"model {metric}": round(value, 4) for metric, value in evaluation.rows[MODEL].items()
        }
        headline |= {
            f"{best} {metric}": round(value, 4) for metric, value in evaluation.rows[best].items()
        }
        gain = evaluation.relative_gain
        headline["gain vs best baseline"] = "n/a" if gain is None else f"{gain * 100:+.1f} %"
        return {
            "gate_decision": {
                "decision": self.verdict,
                "why": "; ".join(self.explanation()),
                "metric": self.metric,
                "score": self.score,
                "floor": self.floor,
                "best_baseline": self.best_baseline,
                "production_score": "none" if self.incumbent is None else self.incumbent,
            },
            "headline_metrics": headline | {"best baseline": best},
        }


def decide_promotion(
    score: float,
    best_baseline: float,
    incumbent: float | None,
    gate: GateConfig,
    same_as: str | None = None,
) -> PromotionDecision:
    """Promote only above the floor, above the best baseline and not below production, and
    never a copy of production (``same_as``: the production version with the same weights): a
    rerun with nothing new must not move ``production`` to a duplicate of itself."""
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
        (
            same_as is not None,
            f"the same weights as production version {same_as}: production stays there",
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
