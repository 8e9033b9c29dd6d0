"""The quality gate: when a newly trained model may replace the production one.

Production's score is a bar only when it was measured on the same evaluation set as the new
version's (same test-split fingerprint): a real-data version is not judged against a
sample-data production's Recall@10. On a changed set the gate keeps the floor and the
baselines, measured on the new set, and says so.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prime_model.config import FrozenConfig
from prime_model.evaluate.evaluation_set import EvaluationSet, set_change_note
from prime_model.evaluate.oracle import REWRITE_ORACLE
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
    evaluation_set: EvaluationSet | None = Field(None, description="this version's test split")
    production_set: EvaluationSet | None = Field(None, description="production's test split")
    notes: list[str] = Field(default_factory=list, description="what the gate did not compare")

    @property
    def compared_with_production(self) -> bool:
        """False when there is no production score, or it is from another evaluation set."""
        return self.incumbent is not None and not self.set_changed

    @property
    def set_changed(self) -> bool:
        """Both sets known and different (an unknown set is one recorded before sets were)."""
        mine, theirs = self.evaluation_set, self.production_set
        return mine is not None and theirs is not None and not mine.same_as(theirs)

    @property
    def verdict(self) -> str:
        return "promoted to production" if self.promote else "not promoted"

    def explanation(self) -> list[str]:
        """Why, in words: the failed checks, or every check that passed."""
        if not self.promote:
            return [*self.reasons, *self.notes]
        production = (
            [f"not below the production version's {self.incumbent:.4f}"]
            if self.compared_with_production
            else self.notes or ["nothing was in production yet"]
        )
        return [
            f"{self.metric}={self.score:.4f} is above the floor {self.floor}",
            f"above the best baseline's {self.best_baseline:.4f}",
            *production,
        ]

    def metadata(self, evaluation: EvaluationTable) -> dict[str, Any]:
        """What the dashboard's Metadata tabs show: the decision first, then headline metrics.

        Flat keys with scalar values, so each one is a row there rather than a JSON blob.
        """
        best = evaluation.best_baseline
        headline: dict[str, Any] = {
            f"model {metric}": round(value, 4) for metric, value in evaluation.rows[MODEL].items()
        }
        for system in (best, REWRITE_ORACLE):  # the oracle where the data has rewrites
            values = evaluation.rows.get(system, {})
            headline |= {f"{system} {metric}": round(value, 4) for metric, value in values.items()}
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
                "compared_with": "production and baselines"
                if self.compared_with_production
                else "baselines only",
                "evaluation_set": _label(self.evaluation_set),
                "production_evaluation_set": _label(self.production_set),
            },
            "headline_metrics": headline | {"best baseline": best},
            "metrics_by_segment": {
                name: f"model {segment.rows[MODEL][self.metric]:.4f} vs "
                f"{segment.best_baseline} {segment.rows[segment.best_baseline][self.metric]:.4f} "
                f"({segment.num_turns} turns)"
                for name, segment in evaluation.breakdown.items()
                if self.metric in segment.rows[MODEL]
            },
        }


def _label(evaluation_set: EvaluationSet | None) -> str:
    return "unknown" if evaluation_set is None else evaluation_set.label


def decide_promotion(
    score: float,
    best_baseline: float,
    incumbent: float | None,
    gate: GateConfig,
    same_as: str | None = None,
    *,
    evaluated_on: EvaluationSet | None = None,
    production_on: EvaluationSet | None = None,
) -> PromotionDecision:
    """Promote only above the floor, above the best baseline and not below production, and
    never a copy of production (``same_as``: the production version with the same weights): a
    rerun with nothing new must not move ``production`` to a duplicate of itself.

    ``evaluated_on``/``production_on``: the sets the two scores come from; when both are known
    and differ, production's score is no bar (the note says why). An unknown set (a version
    recorded before sets were) compares as it always did.
    """
    note = None if incumbent is None else set_change_note(production_on, evaluated_on)
    changed = note is not None
    notes = [] if note is None else [note]
    checks = [
        (score <= gate.floor, f"{gate.metric}={score:.4f} is not above the floor {gate.floor}"),
        (
            score <= best_baseline,
            f"{gate.metric}={score:.4f} is not above the best baseline's {best_baseline:.4f}",
        ),
        (
            incumbent is not None and not changed and score < incumbent,
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
        evaluation_set=evaluated_on,
        production_set=production_on,
        notes=notes,
    )
