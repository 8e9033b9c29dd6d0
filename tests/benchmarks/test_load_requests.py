"""The load test's requests and orders, without a server: what each client sends, in what order."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.load_clients import _for_pass
from benchmarks.load_requests import (
    PASS_MARK,
    TurnRequest,
    client_orders,
    conversation_steps,
    dealt,
    frame_turns,
    read_conversations,
    retrieve_body,
    retrieve_steps,
    turn_text_stats,
)
from benchmarks.load_test import plans_for
from prime_model.errors import ConfigError, DataValidationError


def _frame(roles: bool = True) -> pd.DataFrame:
    """Two conversations, rows out of order: a (3 turns) and b (2 turns)."""
    rows = [
        ("b", 1, ["hi b", "long answer b"], "q b1"),
        ("a", 0, [], "q a0"),
        ("a", 2, ["q a0", "ans a0", "q a1", "ans a1"], "q a2"),
        ("b", 0, [], "hi b"),
        ("a", 1, ["q a0", "ans a0"], "q a1"),
    ]
    frame = pd.DataFrame(
        {
            "conversation_id": [r[0] for r in rows],
            "turn": [r[1] for r in rows],
            "history": [r[2] for r in rows],
            "query": [r[3] for r in rows],
            "target": ["t"] * len(rows),
            "target_id": [None] * len(rows),
        }
    )
    if roles:
        frame["history_roles"] = [["user", "system"] * (len(r[2]) // 2) for r in rows]
    return frame


def _broken() -> pd.DataFrame:
    """The same, but turn a2's history does not extend a1's (an edited conversation)."""
    frame = _frame()
    histories = list(frame["history"])
    histories[2] = ["other", "ans a0", "q a1", "ans a1"]
    frame["history"] = pd.Series(histories, dtype=object)
    return frame


def test_turns_are_grouped_by_conversation_in_turn_order_and_cut() -> None:
    turns = frame_turns(_frame(), max_turns=3)
    assert [(t.conversation_id, t.turn) for t in turns] == [
        ("b", 0), ("b", 1), ("a", 0), ("a", 1), ("a", 2),
    ]  # fmt: skip
    last = turns[-1]
    assert last.history == ("ans a0", "q a1", "ans a1")  # the 3 most recent
    assert last.roles == ("system", "user", "system")  # cut alike
    assert frame_turns(_frame(roles=False), 10)[1].roles is None


def test_bodies_carry_roles_as_turn_objects_when_known() -> None:
    with_roles = TurnRequest("a", 1, ("hello", "hi there"), ("user", None), "and then?")
    body = json.loads(retrieve_body(with_roles, top_k=5))
    assert body == {
        "history": [{"role": "user", "text": "hello"}, {"text": "hi there"}],
        "query": "and then?",
        "top_k": 5,
    }
    plain = json.loads(retrieve_body(TurnRequest("a", 1, ("hello",), None, "q")))
    assert plain["history"] == ["hello"] and plain["top_k"] == 10


def test_the_parsed_body_is_what_the_server_reads() -> None:
    from prime_model.http.request import parse_request  # noqa: PLC0415

    turn = frame_turns(_frame(), max_turns=10)[-1]
    request = parse_request(retrieve_body(turn))
    assert request.history == list(turn.history)
    assert request.history_roles == list(turn.roles or ())


def test_conversation_order_gives_each_client_whole_conversations_in_order() -> None:
    turns = frame_turns(_frame(), max_turns=10)
    one = client_orders(turns, 1, "conversation")
    assert one == [turns]
    two = client_orders(turns, 2, "conversation")
    assert {t.conversation_id for t in two[0]} == {"b"}
    assert {t.conversation_id for t in two[1]} == {"a"}
    assert [t.turn for t in two[1]] == [0, 1, 2]
    # every history was the previous request's history + query + answer: cached on a server
    for before, after in zip(two[1], two[1][1:], strict=False):
        assert after.history[: len(before.history) + 1] == (*before.history, before.query)
    with pytest.raises(ConfigError, match="2 conversations for 3 clients"):
        client_orders(turns, 3, "conversation")


def test_shuffled_order_is_seeded_and_covers_every_turn_once() -> None:
    turns = frame_turns(_frame(), max_turns=10)
    parts = client_orders(turns, 2, "shuffled", seed=1)
    assert parts == client_orders(turns, 2, "shuffled", seed=1)
    sent = [t for part in parts for t in part]
    assert sorted(sent, key=turns.index) == turns
    orders = {tuple(t for part in client_orders(turns, 1, "shuffled", s) for t in part)
              for s in range(10)}  # fmt: skip
    assert len(orders) > 1 and any(o != tuple(turns) for o in orders)


@pytest.mark.parametrize(
    ("clients", "order", "message"),
    [(0, "conversation", "clients=0"), (1, "random", "order 'random'")],
)
def test_bad_orders_are_refused(clients: int, order: str, message: str) -> None:
    turns = frame_turns(_frame(), max_turns=10)
    with pytest.raises(ConfigError, match=message):
        client_orders(turns, clients, order)
    with pytest.raises(ConfigError, match="no turns"):
        client_orders([], 1, "shuffled")


def test_steps_and_dealing() -> None:
    turns = frame_turns(_frame(), max_turns=10)
    steps = retrieve_steps(turns)
    assert [len(s) for s in steps] == [1] * len(turns)
    assert steps[0][0].kind == "retrieve" and steps[0][0].path == "/retrieve"
    cycled = dealt(steps, 2)  # each client: every step, from its own offset
    assert cycled[0] == steps and cycled[1] == [*steps[2:], *steps[:2]]


def test_text_stats_count_system_turns_apart() -> None:
    stats = turn_text_stats(frame_turns(_frame(), max_turns=10))
    assert stats["turns"] == 5 and stats["conversations"] == 2
    assert stats["system_p50"] == pytest.approx(len("ans a0"))
    assert stats["query_p50"] == 4.0


def test_reading_a_public_file_keeps_roles_and_limits_conversations(tmp_path: Path) -> None:
    path = tmp_path / "canard.json"
    record = {
        "History": ["Title", "Section", "Who was he?", "A painter."],
        "Question": "Where did he live?",
        "Rewrite": "Where did the painter live?",
        "QuAC_dialog_id": "C_1",
        "Question_no": 2,
    }
    other = {**record, "QuAC_dialog_id": "C_2"}
    path.write_text(json.dumps([record, other]))
    try:
        frame = read_conversations(path, "canard", "rewrite", max_conversations=1)
    except DataValidationError as exc:  # the reader wants other fields: say which
        pytest.fail(f"fixture does not match the CANARD reader: {exc}")
    assert list(frame["conversation_id"].unique()) == ["C_1"]
    turns = frame_turns(frame, max_turns=10)
    assert turns[0].roles is not None and "system" in turns[0].roles
    with pytest.raises(ConfigError, match="max_conversations=0"):
        read_conversations(path, "canard", max_conversations=0)
    with pytest.raises(DataValidationError):
        read_conversations(tmp_path / "missing.json", "canard")


def test_each_turn_knows_what_was_said_since_the_previous_one() -> None:
    a0, a1, a2 = [t for t in frame_turns(_frame(), max_turns=3) if t.conversation_id == "a"]
    assert (a0.new_turns, a0.continues) == ((), False)
    assert a1.continues and a1.new_turns == (("ans a0", "system"),)  # q a0 was a0's query
    assert a2.continues and a2.new_turns == (("ans a1", "system"),)
    broken = _broken()
    b2 = [t for t in frame_turns(broken, max_turns=3) if (t.conversation_id, t.turn) == ("a", 2)]
    assert not b2[0].continues and [text for text, _ in b2[0].new_turns] == list(b2[0].history)


def test_conversation_steps_register_the_new_turns_then_retrieve_by_id() -> None:
    turns = [t for t in frame_turns(_frame(), max_turns=3) if t.conversation_id == "a"]
    steps = conversation_steps(turns, top_k=3)
    assert [[c.kind for c in step] for step in steps] == [
        ["retrieve"], ["register", "retrieve"], ["register", "retrieve"],
    ]  # fmt: skip
    assert json.loads(steps[0][0].body) == {"history": [], "query": "q a0", "top_k": 3}
    register, retrieve = steps[1]  # the conversation opens with the whole (cut) history
    cid = json.loads(retrieve.body)["conversation_id"]
    assert cid == "a.t1" + PASS_MARK and register.path == f"/conversations/{cid}/turns"
    assert json.loads(register.body) == [
        {"role": "user", "text": "q a0"}, {"role": "system", "text": "ans a0"},
    ]  # fmt: skip
    assert json.loads(retrieve.body) == {"conversation_id": cid, "query": "q a1", "top_k": 3}
    register, retrieve = steps[2]  # then only what was said since: the system response
    assert json.loads(register.body) == [{"role": "system", "text": "ans a1"}]
    assert json.loads(retrieve.body)["conversation_id"] == cid
    again = conversation_steps([t for t in frame_turns(_broken(), 3) if t.conversation_id == "a"])
    assert json.loads(again[2][1].body)["conversation_id"] == "a.t2" + PASS_MARK
    assert len(json.loads(again[2][0].body)) == 3  # its whole cut history, registered
    # each pass is a new conversation, so a cycle never appends to the last one
    path, body = _for_pass(register.path, register.body, 2)
    assert path == "/conversations/a.t1.p2/turns" and body == register.body
    assert _for_pass("/retrieve", retrieve.body, 1)[1] == retrieve.body.replace(
        PASS_MARK.encode(), b".p1"
    )
    from prime_model.http.conversations import ID_PATTERN  # noqa: PLC0415

    assert ID_PATTERN.fullmatch(_for_pass(cid, b"", 0)[0])


def test_the_conversation_api_needs_roles_and_conversation_order() -> None:
    no_roles = frame_turns(_frame(roles=False), max_turns=3)
    with pytest.raises(ConfigError, match="without a role"):
        conversation_steps(no_roles)
    turns = frame_turns(_frame(), max_turns=3)
    with pytest.raises(ConfigError, match="in order; got --order shuffled"):
        plans_for(turns, [], "shuffled", 1, "conversation")
    with pytest.raises(ConfigError, match="needs --conversations"):
        plans_for(None, [b"{}"], "cycled", 1, "conversation")
    with pytest.raises(ConfigError, match="api 'grpc'"):
        plans_for(turns, [], "conversation", 1, "grpc")
    plans = plans_for(turns, [], "conversation", 2, "conversation")
    assert len(plans) == 2 and plans[1][1][0].kind == "register"
    assert plans_for(turns, [], "shuffled", 1)[0][0][0].kind == "retrieve"
