"""Which turns a version was judged on: scores are comparable only on the same evaluation set.

A Recall@10 on the generated sample and one on real conversations measure different things, so
the gate needs to know whether production's score and a new version's come from the same turns.
The fingerprint is the test split's content (the dataset fingerprint's function); the name is
for people: the data sources (the ``source`` column a multi-file table carries), else "test
split".
"""

from __future__ import annotations

from typing import Final

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from prime_model.data.schema import SOURCE_COLUMN
from prime_model.data.source import fingerprint_turns

SHORT_FINGERPRINT: Final = 12


class EvaluationSet(BaseModel):
    """The test split a version's metrics were computed on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="for people: the data sources, or 'test split'")
    fingerprint: str = Field(description="sha256 of the test turns (row order included)")
    num_turns: int = Field(ge=0)
    num_conversations: int = Field(ge=0)

    @property
    def label(self) -> str:
        """Name, size and short fingerprint: two sets with one name still read apart."""
        return (
            f"{self.name} ({self.num_turns} turns, {self.num_conversations} conversations, "
            f"sha256 {self.fingerprint[:SHORT_FINGERPRINT]})"
        )

    def same_as(self, other: EvaluationSet) -> bool:
        return self.fingerprint == other.fingerprint


def evaluation_set_of(turns: pd.DataFrame, name: str | None = None) -> EvaluationSet:
    """The evaluation set ``turns`` make; ``name`` overrides the one read off the ids."""
    ids = turns["conversation_id"].astype(str)
    return EvaluationSet(
        name=name or _source_name(turns),
        fingerprint=fingerprint_turns(turns),
        num_turns=len(turns),
        num_conversations=int(ids.nunique()),
    )


def _source_name(turns: pd.DataFrame) -> str:
    """'canard + topiocqa test split' from the turns' sources, else 'test split'."""
    if SOURCE_COLUMN not in turns.columns:
        return "test split"
    sources = sorted({str(s) for s in turns[SOURCE_COLUMN] if isinstance(s, str) and s})
    return " + ".join(sources) + " test split" if sources else "test split"


def set_change_note(production: EvaluationSet | None, new: EvaluationSet | None) -> str | None:
    """What the gate says when it cannot compare with production's score; None when it can.

    An unknown set (a version recorded before sets were) compares as it always did.
    """
    if production is None or new is None or production.same_as(new):
        return None
    return (
        f"evaluation set changed: production was judged on {production.label}, this version on "
        f"{new.label}; compared with baselines only"
    )
