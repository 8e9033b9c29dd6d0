"""The conversation store: bounded, expiring, thread-safe; ids and registration bodies checked."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from prime_model.errors import ConfigError, RequestError, UnknownConversationError
from prime_model.http.conversations import (
    ConversationStore,
    StoredTurn,
    check_conversation_id,
    parse_turns,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def turn(text: str, role: str = "system") -> StoredTurn:
    return StoredTurn(role, text, np.full(4, len(text), dtype=np.float32))


def test_turns_come_back_oldest_first_and_only_the_last_max_turns() -> None:
    store = ConversationStore(3)
    assert store.add("c1", [turn("a"), turn("b")]) == 2
    assert store.append("c1", turn("q", "user"))
    assert store.add("c1", [turn("c"), turn("d")]) == 3
    held = store.turns("c1")
    assert [(t.role, t.text) for t in held] == [("user", "q"), ("system", "c"), ("system", "d")]
    assert store.info()["chars"] == 3  # dropped turns no longer count
    assert not store.append("never-registered", turn("q", "user"))


def test_unknown_and_expired_conversations_say_what_to_do() -> None:
    clock = Clock()
    store = ConversationStore(4, ttl_s=60, clock=clock)
    with pytest.raises(UnknownConversationError, match=r"'c1' is unknown .* register its turns"):
        store.turns("c1")
    store.add("c1", [turn("a")])
    clock.now += 59
    assert len(store.turns("c1")) == 1  # reading touches it: 60 s more from here
    clock.now += 59
    store.append("c1", turn("q", "user"))
    clock.now += 60
    with pytest.raises(UnknownConversationError, match="expired after 60 s without a new turn"):
        store.turns("c1")
    assert store.info()["expired"] == 1 and len(store) == 0
    with pytest.raises(UnknownConversationError, match="POST /conversations/c1/turns"):
        store.turns("c1")  # gone for good


def test_least_recently_used_conversations_are_evicted_past_the_bounds() -> None:
    store = ConversationStore(4, max_conversations=2)
    store.add("a", [turn("x")])
    store.add("b", [turn("x")])
    store.turns("a")  # a is now the most recent
    store.add("c", [turn("x")])
    assert {k for k in ("a", "b", "c") if _held(store, k)} == {"a", "c"}
    by_chars = ConversationStore(4, max_chars=10)
    by_chars.add("a", [turn("12345")])
    by_chars.add("b", [turn("123456")])  # 11 characters in all: a goes
    assert not _held(by_chars, "a") and _held(by_chars, "b")
    by_chars.add("b", [turn("x" * 20)])  # one conversation over the budget stays
    assert _held(by_chars, "b") and by_chars.info()["evicted"] == 1


def _held(store: ConversationStore, conversation_id: str) -> bool:
    try:
        store.turns(conversation_id)
    except UnknownConversationError:
        return False
    return True


def test_concurrent_appends_are_all_kept() -> None:
    store = ConversationStore(10_000)
    store.add("c", [])

    def add_many(worker: int) -> None:
        for i in range(200):
            assert store.append("c", turn(f"{worker}-{i}", "user"))

    threads = [threading.Thread(target=add_many, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.turns("c")) == 800 and store.info()["chars"] == sum(
        len(f"{w}-{i}") for w in range(4) for i in range(200)
    )


@pytest.mark.parametrize(
    "settings", [{"max_turns": 0}, {"ttl_s": 0}, {"max_conversations": 0}, {"max_chars": -1}]
)
def test_bad_store_settings_are_config_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="expected a positive number"):
        ConversationStore(**{"max_turns": 3, **settings})


@pytest.mark.parametrize("good", ["c1", "user-42:chat_7.b", "x" * 128])
def test_usable_ids(good: str) -> None:
    assert check_conversation_id(good) == good


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 129, "é", "a b", 5, None])
def test_bad_ids_are_request_errors_saying_what_is_expected(bad: object) -> None:
    with pytest.raises(RequestError, match=r"expected 1 to 128 characters from A-Z a-z 0-9"):
        check_conversation_id(bad)


def test_a_turn_or_a_list_of_turns_parses() -> None:
    assert parse_turns({"role": "system", "text": "It is 324 m."}, 100) == [
        ("system", "It is 324 m.")
    ]
    body = [{"role": "user", "text": "How tall?"}, {"role": "system", "text": "324 m."}]
    assert parse_turns(body, 100) == [("user", "How tall?"), ("system", "324 m.")]
    assert parse_turns([], 100) == []  # a conversation with no turns yet


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"role": "bot", "text": "t"}, r"the turn.role is 'bot'; expected one of \('user', 'sys"),
        ({"role": "user"}, r"the turn is \['role'\]; expected \{\"role\""),
        ({"role": "user", "text": "t", "x": 1}, r"is \['role', 'text', 'x'\]"),
        ([{"role": "user", "text": " "}], r"turns\[0\].text is ' '; expected the turn's text"),
        ([{"role": "user", "text": 3}], r"turns\[0\].text is 3"),
        ({"role": "user", "text": "x" * 11}, "has 11 characters; expected at most 10"),
        ({"role": "user", "text": "\ud800"}, "lone surrogate"),
        ([{"role": "user", "text": "t"}] * 1001, "holds 1001 turns; expected at most 1000"),
        ("text", r"the turn is 'str'; expected"),
    ],
)
def test_bad_turns_are_request_errors(body: Any, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_turns(body, 10)
