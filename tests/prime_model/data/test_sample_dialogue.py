"""One conversation drawn on its own: reproducible from (seed, index), within its bounds."""

from __future__ import annotations

from prime_model.data.sample import SampleConfig, sample_knowledge_base
from prime_model.data.sample_dialogue import Dialogue, TurnKind

CONFIG = SampleConfig(num_conversations=1, seed=5, entities_per_kind=10, min_turns=4, max_turns=6)


def test_a_conversation_depends_only_on_seed_and_index() -> None:
    kb = sample_knowledge_base(CONFIG)
    ids = list(kb.entities)
    first = Dialogue(CONFIG, kb, 3, ids).run()
    assert first == Dialogue(CONFIG, kb, 3, ids).run()
    assert first != Dialogue(CONFIG, kb, 4, ids).run()


def test_it_opens_on_a_named_question_and_keeps_its_length() -> None:
    kb = sample_knowledge_base(CONFIG)
    for index in range(20):
        turns = Dialogue(CONFIG, kb, index, list(kb.entities)).run()
        assert CONFIG.min_turns <= len(turns) <= CONFIG.max_turns
        assert turns[0].kind is TurnKind.OPEN and turns[0].names_entity
        asked = [(t.entity_id, t.attribute) for t in turns]
        assert len(set(asked)) == len(asked)  # never the same question twice
