"""The embedded default dataset: synthetic conversations in which context decides the target.

A conversation opens with an explicit question about a fictional entity ("What is the population
of Velmora?") and continues with follow-ups that do not name it ("and the mayor?", "where was she
born?"), topic switches (often to a near-duplicate such as Velmoran), elliptical repeats of the
last question for another entity ("And Belmora?") and returns to an earlier one ("back to the first
city: ..."). The target of each turn is the corpus passage of one (entity, attribute), so a
follow-up query alone matches that attribute's passage for every entity of the kind, while history
plus query singles it out. Everything is a pure function of the config: same config, same frame.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

import pandas as pd
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig
from prime_model.data.sample_kb import KnowledgeBase, build_knowledge_base, target_id
from prime_model.data.sample_vocab import texts_for
from prime_model.data.schema import COLUMNS, conform_frame

_SWITCH_PREFIXES = ("Now let's talk about {ref}. {Q}", "Switching to {ref}: {q}")
_SAME_QUESTION = ("And {ref}?", "What about {ref}?", "How about {ref}?", "Same question for {ref}.")
_RETURN_PREFIXES = (
    "Back to {ref}: {q}",
    "Going back to {ref}, {q}",
    "Returning to {ref} - {q}",
    "Let's go back to {ref}. {Q}",
)
_HOP_PREFIXES = ("{Q}", "{Q}", "What about {ref}? {Q}", "And {ref} - {q}")
_ORDINAL_REFS = ("the first {noun}", "the first {noun} we talked about")


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
    topic_switch_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="chance a turn moves to a new, explicitly named entity"
    )
    same_question_probability: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="share of switches that repeat the last question by "
        "ellipsis ('And Belmora?') when the new entity has that attribute",
    )
    return_probability: float = Field(
        0.1, ge=0.0, le=1.0, description="chance a turn returns to an earlier entity"
    )
    ordinal_return_probability: float = Field(
        0.5, ge=0.0, le=1.0, description="share of returns that say 'the first city', not a name"
    )
    hop_probability: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="chance a turn asks about the entity the last answer named",
    )
    distractor_probability: float = Field(
        0.5, ge=0.0, le=1.0, description="share of switches to a look-alike of a discussed entity"
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


class TurnKind(StrEnum):
    """How a turn relates to the conversation so far."""

    OPEN = "open"  # first turn: entity and attribute named
    FOLLOW_UP = "follow_up"  # same entity, new attribute, entity not named
    HOP = "hop"  # the entity the last answer named, by pronoun or role ("the founder")
    SWITCH = "switch"  # a new entity, named
    SAME_QUESTION = "same_question"  # a new entity, named; attribute left to context
    RETURN = "return"  # an earlier entity, by name or by "the first city"


@dataclass(frozen=True)
class SampleTurn:
    """One generated turn, with the labels the turn table has no column for."""

    kind: TurnKind
    entity_id: str
    attribute: str
    query: str
    answer: str
    template: str  # the question's template, to measure variety
    names_entity: bool  # False where only the history tells which entity is meant

    @property
    def target_id(self) -> str:
        return target_id(self.entity_id, self.attribute)


@dataclass(frozen=True)
class Conversation:
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
            f"sample-{config.seed}-{index:05d}", _Dialogue(config, kb, index, entity_ids).run()
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


@dataclass
class _Dialogue:
    """State of one conversation being generated: who was discussed, what was asked."""

    config: SampleConfig
    kb: KnowledgeBase
    index: int
    entity_ids: list[str]
    turns: list[SampleTurn] = field(default_factory=list)
    discussed: list[str] = field(default_factory=list)  # entity ids, in order of first mention
    asked: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        seed = f"prime-sample:{self.config.seed}:{self.index}"
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not crypto

    def run(self) -> tuple[SampleTurn, ...]:
        """Open on a named question, then draw each turn's move from the configured odds."""
        cfg = self.config
        length = self.rng.randint(cfg.min_turns, cfg.max_turns)
        self._record(self._explicit(TurnKind.OPEN, self.rng.choice(self.entity_ids)))
        thresholds = (cfg.return_probability, cfg.topic_switch_probability, cfg.hop_probability)
        moves = (self._return, self._switch, self._hop)
        while len(self.turns) < length:
            roll, turn = self.rng.random(), None
            for threshold, move in zip(thresholds, moves, strict=True):
                if roll < threshold:
                    turn = move()
                    break
                roll -= threshold
            self._record(turn or self._follow_up() or self._switch())
        return tuple(self.turns)

    def _record(self, turn: SampleTurn) -> None:
        self.turns.append(turn)
        self.asked.add((turn.entity_id, turn.attribute))
        if turn.entity_id not in self.discussed:
            self.discussed.append(turn.entity_id)

    def _unasked(self, entity_id: str) -> list[str]:
        attrs = self.kb.entities[entity_id].passages
        return [a for a in attrs if (entity_id, a) not in self.asked]

    def _ask(
        self, kind: TurnKind, entity_id: str, attr: str, form: str, ref: str = ""
    ) -> SampleTurn:
        """Fill ``form`` ({ref}; {Q}/{q}: the question) and answer from the entity's facts."""
        entity = self.kb.entities[entity_id]
        texts = texts_for(entity.kind, attr)
        explicit = kind in (TurnKind.OPEN, TurnKind.SWITCH) and "{ref}" not in form
        question = ""  # "And Belmora?" leaves the question itself to the context
        if kind is not TurnKind.SAME_QUESTION:
            question = self.rng.choice(texts.named if explicit else texts.followups)
        text = entity.render(question, attr)
        query = form.format(ref=ref, Q=text, q=text[:1].lower() + text[1:])
        answer = entity.render(self.rng.choice(texts.answers), attr)
        named = kind in (TurnKind.OPEN, TurnKind.SWITCH, TurnKind.SAME_QUESTION) or (
            kind is TurnKind.RETURN and ref == entity.name
        )
        return SampleTurn(kind, entity_id, attr, query, answer, f"{form}|{question}", named)

    def _explicit(self, kind: TurnKind, entity_id: str) -> SampleTurn:
        """A named question, bare ("Who founded X?") or after an announcing prefix."""
        form = "{Q}"
        if kind is TurnKind.SWITCH and self.rng.random() < 0.3:
            form = self.rng.choice(_SWITCH_PREFIXES)
        attr = self.rng.choice(self._unasked(entity_id))
        return self._ask(kind, entity_id, attr, form, self.kb.entities[entity_id].name)

    def _follow_up(self) -> SampleTurn | None:
        """Same entity, another attribute, by pronoun or ellipsis ("and the mayor?")."""
        current = self.turns[-1].entity_id
        attrs = self._unasked(current)
        if not attrs:
            return None
        return self._ask(TurnKind.FOLLOW_UP, current, self.rng.choice(attrs), "{Q}")

    def _hop(self) -> SampleTurn | None:
        """The entity the last answer named ("Who founded it?" ... "Where was she born?")."""
        last = self.turns[-1]
        ref = self.kb.entities[last.entity_id].facts[last.attribute].ref
        if ref is None or not self._unasked(ref):
            return None
        role = texts_for(self.kb.entities[last.entity_id].kind, last.attribute).role
        form = self.rng.choice(_HOP_PREFIXES)
        return self._ask(TurnKind.HOP, ref, self.rng.choice(self._unasked(ref)), form, role)

    def _return(self) -> SampleTurn | None:
        """An earlier entity, by name or as "the first city" when several cities came up."""
        current = self.turns[-1].entity_id
        earlier = [e for e in self.discussed if e != current and self._unasked(e)]
        if not earlier:
            return None
        entity = self.kb.entities[self.rng.choice(earlier)]
        same_kind = [e for e in self.discussed if self.kb.entities[e].kind == entity.kind]
        ref = entity.name
        if (
            len(same_kind) > 1
            and same_kind[0] == entity.id
            and self.rng.random() < self.config.ordinal_return_probability
        ):
            ref = self.rng.choice(_ORDINAL_REFS).format(noun=entity.kind)
        form = self.rng.choice(_RETURN_PREFIXES)
        attr = self.rng.choice(self._unasked(entity.id))
        return self._ask(TurnKind.RETURN, entity.id, attr, form, ref)

    def _switch(self) -> SampleTurn:
        """A new entity, often a look-alike of one discussed; by ellipsis if the kind allows."""
        last = self.turns[-1]
        entity_id = self._new_entity(last.entity_id)
        if (
            self.kb.entities[entity_id].kind == self.kb.entities[last.entity_id].kind
            and last.attribute in self._unasked(entity_id)
            and self.rng.random() < self.config.same_question_probability
        ):
            form = self.rng.choice(_SAME_QUESTION)
            name = self.kb.entities[entity_id].name
            return self._ask(TurnKind.SAME_QUESTION, entity_id, last.attribute, form, name)
        return self._explicit(TurnKind.SWITCH, entity_id)

    def _new_entity(self, current: str) -> str:
        """Not yet discussed: a look-alike, one of the same kind, or any entity."""
        if self.rng.random() < self.config.distractor_probability:
            looks = [
                s
                for d in (current, *self.discussed)
                for s in self.kb.siblings(d)
                if s not in self.discussed
            ]
            if looks:
                return looks[0] if self.rng.random() < 0.5 else self.rng.choice(looks)
        pool = self.entity_ids
        if self.rng.random() < 0.5:
            pool = self.kb.by_kind[self.kb.entities[current].kind]
        candidates = [
            e for e in self.rng.sample(pool, min(len(pool), 20)) if e not in self.discussed
        ]
        if candidates:
            return candidates[0]
        fresh = [e for e in self.entity_ids if e not in self.discussed]
        return self.rng.choice(fresh or [e for e in self.entity_ids if self._unasked(e)])
