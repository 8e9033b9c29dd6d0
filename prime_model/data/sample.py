"""The embedded default dataset: synthetic conversations in which context decides the target.

A conversation opens with an explicit question about a fictional entity ("What is the population
of Velmora?") and continues with follow-ups that do not name it ("and the mayor?", "where was she
born?"), topic switches (often to a near-duplicate such as Velmoran), elliptical repeats of the
last question for another entity ("And Belmora?") and returns to an earlier one ("back to the first
city: ..."). The target of each turn is the corpus passage of one (entity, attribute), so a
follow-up query alone matches that attribute's passage for every entity of the kind, while history
plus query singles it out. Everything is a pure function of the config: same config, same frame.
Each conversation's moves and phrasing are drawn in :mod:`.sample_dialogue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import pandas as pd
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig
from prime_model.data.sample_dialogue import Dialogue, SampleTurn, TurnKind
from prime_model.data.sample_kb import KnowledgeBase, build_knowledge_base
from prime_model.data.schema import COLUMNS, conform_frame

__all__ = [
    "Conversation",
    "SampleConfig",
    "SampleTurn",
    "TurnKind",
    "generate_conversations",
    "generate_corpus",
    "generate_sample",
    "sample_knowledge_base",
]


def _chance(default: float, description: str) -> Any:
    """A probability field: 0..1, with its meaning for the generated conversations."""
    return Field(default, ge=0.0, le=1.0, description=description)


class SampleConfig(FrozenConfig):
    """Size, randomness and conversational behaviour of the generated sample set."""

    num_conversations: int = Field(2000, gt=0, description="conversations to generate")
    seed: int = Field(0, ge=0, description="seeds the knowledge base and every conversation")
    min_turns: int = Field(3, gt=0, description="fewest turns in a conversation")
    max_turns: int = Field(8, gt=0, le=20, description="most turns in a conversation")
    entities_per_kind: int = Field(
        90, ge=2, le=300, description="entities of each of the six kinds (book titles run out)"
    )
    distractors_per_entity: int = Field(
        2, ge=0, le=3, description="near-duplicate look-alikes of each base entity (Velmoran)"
    )
    topic_switch_probability: float = _chance(
        0.25, "chance a turn moves to a new, explicitly named entity"
    )
    same_question_probability: float = _chance(
        0.4,
        "share of switches that repeat the last question by "
        "ellipsis ('And Belmora?') when the new entity has that attribute",
    )
    return_probability: float = _chance(0.1, "chance a turn returns to an earlier entity")
    ordinal_return_probability: float = _chance(
        0.5, "share of returns that say 'the first city', not a name"
    )
    hop_probability: float = _chance(
        0.15, "chance a turn asks about the entity the last answer named"
    )
    distractor_probability: float = _chance(
        0.5, "share of switches to a look-alike of a discussed entity"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns={self.min_turns} must be <= max_turns={self.max_turns}")
        moves = self.topic_switch_probability + self.return_probability + self.hop_probability
        if moves > 1.0:
            raise ValueError(
                "topic_switch_probability + return_probability + hop_probability must be <= 1, "
                f"got {moves:g}"
            )
        if self.distractors_per_entity >= self.entities_per_kind:
            raise ValueError(
                f"distractors_per_entity={self.distractors_per_entity} must be < "
                f"entities_per_kind={self.entities_per_kind}"
            )
        return self


@dataclass(frozen=True)
class Conversation:
    """One generated conversation: its id and its turns, in order."""

    conversation_id: str
    turns: tuple[SampleTurn, ...]


def sample_knowledge_base(config: SampleConfig) -> KnowledgeBase:
    """The knowledge base the sample set is drawn from (independent of num_conversations)."""
    return build_knowledge_base(
        config.seed, config.entities_per_kind, config.distractors_per_entity
    )


def generate_conversations(
    config: SampleConfig, kb: KnowledgeBase | None = None
) -> list[Conversation]:
    """Conversation i depends only on (seed, i), so a larger set extends a smaller one."""
    if kb is None:
        kb = sample_knowledge_base(config)
    entity_ids = list(kb.entities)
    return [
        Conversation(
            f"sample-{config.seed}-{index:05d}", Dialogue(config, kb, index, entity_ids).run()
        )
        for index in range(config.num_conversations)
    ]


def generate_sample(config: SampleConfig | None = None) -> pd.DataFrame:
    """The turn table (schema of :mod:`prime_model.data.schema`); answers sit in the history."""
    config = config or SampleConfig()
    kb = sample_knowledge_base(config)
    rows: list[tuple[str, int, list[str], str, str, str]] = []
    for conversation in generate_conversations(config, kb):
        history: list[str] = []
        for index, turn in enumerate(conversation.turns):
            target = kb.entities[turn.entity_id].passages[turn.attribute]
            rows.append(
                (conversation.conversation_id, index, history, turn.query, target, turn.target_id)
            )
            history = [*history, turn.query, turn.answer]  # a new list: rows keep their own
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    return conform_frame(frame, source="generated sample")


def generate_corpus(config: SampleConfig | None = None) -> pd.DataFrame:
    """The retrieval corpus: one passage per (entity, attribute), columns target_id, target."""
    corpus = sample_knowledge_base(config or SampleConfig()).corpus()
    return pd.DataFrame(corpus, columns=["target_id", "target"])
