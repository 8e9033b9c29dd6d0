"""One generated conversation, turn by turn: the moves (follow-up, hop, switch, return) and the
phrasing of each, drawn from a per-conversation random stream so conversation i depends only on
(seed, i). :mod:`.sample` turns these conversations into the turn table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from prime_model.data.sample_kb import KnowledgeBase, target_id
from prime_model.data.sample_vocab import texts_for

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


class DialogueOdds(Protocol):
    """What a conversation is drawn with (:class:`~prime_model.data.sample.SampleConfig`)."""

    @property
    def seed(self) -> int: ...
    @property
    def min_turns(self) -> int: ...
    @property
    def max_turns(self) -> int: ...
    @property
    def topic_switch_probability(self) -> float: ...
    @property
    def same_question_probability(self) -> float: ...
    @property
    def return_probability(self) -> float: ...
    @property
    def ordinal_return_probability(self) -> float: ...
    @property
    def hop_probability(self) -> float: ...
    @property
    def distractor_probability(self) -> float: ...


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


@dataclass
class Dialogue:
    """State of one conversation being generated: who was discussed, what was asked."""

    config: DialogueOdds
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
