from __future__ import annotations

import difflib
import math
import re
import zlib
from collections import Counter
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from prime_model import ConfigError, PrimeError
from prime_model.data.sample import (
    Conversation,
    SampleConfig,
    TurnKind,
    generate_conversations,
    generate_corpus,
    generate_sample,
    sample_knowledge_base,
)
from prime_model.data.sample_kb import KnowledgeBase, target_id
from prime_model.data.sample_vocab import KINDS
from prime_model.data.schema import COLUMNS, DTYPES

SMALL = SampleConfig(num_conversations=150, seed=7)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_sample(SMALL)


@pytest.fixture(scope="module")
def conversations() -> list[Conversation]:
    return generate_conversations(SMALL)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return sample_knowledge_base(SMALL)


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"min_turns": 5, "max_turns": 4}, "min_turns=5 must be <= max_turns=4"),
        ({"topic_switch_probability": 0.6, "return_probability": 0.3}, "must be <= 1"),
        ({"entities_per_kind": 3, "distractors_per_entity": 3}, "distractors_per_entity=3"),
        ({"num_conversations": 0}, "num_conversations"),
        ({"seed": -1}, "seed"),
        ({"max_turns": 21}, "max_turns"),
        ({"hop_probability": 1.5}, "hop_probability"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_raises_config_error(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)) as info:
        SampleConfig(**overrides)
    assert isinstance(info.value, PrimeError)


# --- shape of the turn table --------------------------------------------------------------------


def test_frame_follows_the_turn_schema(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    assert not frame.duplicated(["conversation_id", "turn"]).any()
    assert frame["conversation_id"].nunique() == SMALL.num_conversations


def test_turns_are_numbered_and_sized(frame: pd.DataFrame) -> None:
    for _, group in frame.groupby("conversation_id"):
        assert list(group["turn"]) == list(range(len(group)))
        assert SMALL.min_turns <= len(group) <= SMALL.max_turns


def test_history_interleaves_questions_and_answers(frame: pd.DataFrame) -> None:
    for _, group in frame.groupby("conversation_id"):
        rows = group.to_dict("records")
        for row in rows:
            assert len(row["history"]) == 2 * row["turn"]
        for previous, row in pairwise(rows):
            assert row["history"][:-2] == previous["history"]
            assert row["history"][-2] == previous["query"]
            assert row["history"][-1] != previous["target"]  # a short answer, not the passage


def test_no_empty_strings(frame: pd.DataFrame) -> None:
    for column in ("conversation_id", "query", "target", "target_id"):
        assert frame[column].map(lambda s: isinstance(s, str) and s.strip() != "").all()
    assert all(text.strip() for history in frame["history"] for text in history)


def test_every_target_is_its_corpus_passage(frame: pd.DataFrame) -> None:
    corpus = generate_corpus(SMALL)
    assert list(corpus.columns) == ["target_id", "target"]
    assert corpus["target_id"].is_unique
    assert corpus["target"].map(str.strip).astype(bool).all()
    passages = dict(zip(corpus["target_id"], corpus["target"], strict=True))
    assert all(passages[i] == t for i, t in zip(frame["target_id"], frame["target"], strict=True))
    kinds = {i.split(":")[0] for i in corpus["target_id"]}
    assert kinds == set(KINDS)
    assert all(re.fullmatch(r"[a-z]+:[a-z0-9_]+:[a-z_]+", i) for i in corpus["target_id"])


# --- determinism --------------------------------------------------------------------------------


def test_same_config_same_frame(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_sample(SMALL), frame)
    pd.testing.assert_frame_equal(generate_corpus(SMALL), generate_corpus(SMALL))


def test_other_seed_other_data(frame: pd.DataFrame) -> None:
    other = SMALL.model_copy(update={"seed": 8})
    assert generate_sample(other)["query"].tolist() != frame["query"].tolist()
    assert generate_corpus(other)["target"].tolist() != generate_corpus(SMALL)["target"].tolist()


def test_a_larger_set_extends_a_smaller_one(conversations: list[Conversation]) -> None:
    smaller = generate_conversations(SMALL.model_copy(update={"num_conversations": 40}))
    assert smaller == conversations[:40]


def test_default_config_is_the_documented_size() -> None:
    config = SampleConfig()
    assert (config.num_conversations, config.min_turns, config.max_turns) == (2000, 3, 8)
    assert len(generate_corpus()) == sum(
        len(e.passages) for e in sample_knowledge_base(config).entities.values()
    )


def test_tiny_knowledge_base_and_long_conversations_do_not_run_dry() -> None:
    config = SampleConfig(
        num_conversations=20,
        entities_per_kind=2,
        distractors_per_entity=1,
        min_turns=20,
        max_turns=20,
    )
    frame = generate_sample(config)
    assert len(frame) == 400
    assert not frame.duplicated(["conversation_id", "target_id"]).any()


# --- conversational structure -------------------------------------------------------------------


def test_turn_kinds_follow_their_rules(
    conversations: list[Conversation], kb: KnowledgeBase
) -> None:
    for conversation in conversations:
        turns = conversation.turns
        assert turns[0].kind is TurnKind.OPEN
        seen = {turns[0].entity_id}
        for previous, turn in pairwise(turns):
            name = kb.entities[turn.entity_id].name
            assert (name in turn.query) == turn.names_entity, turn.query
            if turn.kind is TurnKind.FOLLOW_UP:
                assert turn.entity_id == previous.entity_id
            elif turn.kind is TurnKind.HOP:
                assert (
                    kb.entities[previous.entity_id].facts[previous.attribute].ref == turn.entity_id
                )
            elif turn.kind is TurnKind.SAME_QUESTION:
                assert turn.attribute == previous.attribute
                assert turn.entity_id not in seen
            elif turn.kind is TurnKind.SWITCH:
                assert turn.entity_id not in seen
            elif turn.kind is TurnKind.RETURN:
                assert turn.entity_id in seen and turn.entity_id != previous.entity_id
            seen.add(turn.entity_id)
        assert len({t.target_id for t in turns}) == len(turns)  # never the same question twice


def test_variety_of_queries_entities_and_moves(conversations: list[Conversation]) -> None:
    turns = [t for c in conversations for t in c.turns]
    assert len({t.template for t in turns}) >= 100
    assert {t.entity_id.split(":")[0] for t in turns} == set(KINDS)
    moves = Counter(t.kind for t in turns)
    assert set(moves) == set(TurnKind)
    assert moves[TurnKind.FOLLOW_UP] > len(turns) / 3
    assert any(t.kind is TurnKind.RETURN and "the first" in t.query for t in turns)
    assert sum(not t.names_entity for t in turns) > len(turns) / 3


def test_look_alike_distractors(conversations: list[Conversation], kb: KnowledgeBase) -> None:
    """Every entity has same-kind siblings whose names share a word or most letters with it."""
    for entity_id, entity in kb.entities.items():
        siblings = kb.siblings(entity_id)
        assert len(siblings) == SMALL.distractors_per_entity
        assert all(kb.entities[s].kind == entity.kind for s in siblings)
        head = kb.entities[min([entity_id, *siblings], key=list(kb.entities).index)].name
        if entity.name != head:
            ratio = difflib.SequenceMatcher(None, head, entity.name).ratio()
            shared = set(head.split()) & set(entity.name.split()) - {"The", "the"}
            assert shared or ratio >= 0.6, (head, entity.name)
    to_sibling = 0
    for conversation in conversations:
        for previous, turn in pairwise(conversation.turns):
            to_sibling += turn.entity_id in kb.siblings(previous.entity_id)
    assert to_sibling >= len(conversations) / 5


def test_linked_facts_agree(kb: KnowledgeBase) -> None:
    for company_id in kb.by_kind["company"]:
        company = kb.entities[company_id].facts
        product = company["product"].ref
        assert product is not None
        assert kb.entities[product].facts["maker"].ref == company_id
        ceo = company["ceo"].ref
        assert ceo is not None
        assert kb.entities[ceo].facts["employer"].ref == company_id
    for river_id in kb.by_kind["river"]:
        city = kb.entities[river_id].facts["largest_city"].ref
        assert city is not None
        assert kb.entities[city].facts["river"].ref == river_id
    assert target_id("city:velmora", "mayor") == "city:velmora:mayor"


# --- context matters: the reason the set exists -------------------------------------------------


class StubEncoder:
    """Hashed bag of words weighted by corpus IDF, L2-normalised: lexical, deterministic, tiny."""

    dim = 1024

    def __init__(self, corpus: list[str]) -> None:
        counts = Counter(token for text in corpus for token in set(self._tokens(text)))
        self.idf = {token: math.log(len(corpus) / n) for token, n in counts.items()}

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    def encode(self, texts: list[str]) -> NDArray[np.float64]:
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            for token in self._tokens(text):
                out[row, zlib.crc32(token.encode()) % self.dim] += self.idf.get(token, 0.0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: NDArray[np.float64] = out / np.maximum(norms, 1e-12)
        return normalised


def _recall_at_10(
    encoder: StubEncoder, corpus: NDArray[np.float64], texts: list[str], gold: list[int]
) -> float:
    top = np.argsort(-(encoder.encode(texts) @ corpus.T), axis=1)[:, :10]
    return float(np.mean([g in row for g, row in zip(gold, top, strict=True)]))


def test_follow_ups_need_the_history() -> None:
    """Query alone: the attribute's passage of any entity; history + query: the right one."""
    config = SampleConfig(num_conversations=100, seed=3)
    frame = generate_sample(config)
    corpus = generate_corpus(config)
    turns = [t for c in generate_conversations(config) for t in c.turns]
    follow_ups = frame[[not t.names_entity for t in turns]]
    assert len(follow_ups) > 250
    encoder = StubEncoder(corpus["target"].tolist())
    passages = encoder.encode(corpus["target"].tolist())
    position = {tid: i for i, tid in enumerate(corpus["target_id"])}
    gold = [position[tid] for tid in follow_ups["target_id"]]
    query_only = _recall_at_10(encoder, passages, follow_ups["query"].tolist(), gold)
    joined = [
        " ".join([*h, q]) for h, q in zip(follow_ups["history"], follow_ups["query"], strict=True)
    ]
    with_history = _recall_at_10(encoder, passages, joined, gold)
    # measured (seed 3): query-only 0.03, history + query 0.28
    assert query_only < 0.08
    assert with_history > 0.2
    assert with_history > 4 * query_only
    opening = frame[frame["turn"] == 0]
    opening_gold = [position[tid] for tid in opening["target_id"]]
    # measured: 0.87; the first question names its entity and needs no context
    assert _recall_at_10(encoder, passages, opening["query"].tolist(), opening_gold) > 0.7
