"""The conversation-aware API: turns registered once, then a retrieval encodes only its query
and answers as the stateless request with the same history and roles would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from prime_model.encode.memory_cache import LruEncoder
from prime_model.errors import ConfigError, RequestError, RetrievalError, UnknownConversationError
from prime_model.http.app import create_app
from prime_model.http.conversations import ConversationStore
from prime_model.http.request import MAX_TEXT_CHARS, parse_invoke_body, parse_request
from prime_model.http.service import Retriever
from tests.prime_model.http.test_roles import KEEP, FittingEncoder, flagged_retriever
from tests.prime_model.retrieve.support import TINY, tiny_retriever

SYSTEM = "The Eiffel Tower is 324 metres tall and was finished in 1889."


def ids(answer: Any) -> list[str]:
    return [hit.id for hit in answer.hits]


def test_a_registered_conversation_answers_like_its_stateless_request() -> None:
    inner = FittingEncoder(dim=16)
    retriever = flagged_retriever(LruEncoder(inner))  # roles + concat input
    stored = retriever.register("c1", [("user", "how tall is it?"), ("system", SYSTEM)])
    assert stored["turns"] == 2 and stored["registered"] == 2
    assert inner.calls == [["how tall is it?", SYSTEM]]
    inner.calls.clear()
    answer = retriever.answer(parse_request({"conversation_id": "c1", "query": "when?"}))
    joined = f"how tall is it? {SYSTEM} when?"[-KEEP:]
    assert inner.calls == [["when?", joined]]  # no history text encoded again
    stateless = parse_request(
        {
            "history": [
                {"role": "user", "text": "how tall is it?"},
                {"role": "system", "text": SYSTEM},
            ],
            "query": "when?",
        }
    )
    assert ids(answer) == ids(retriever.answer(stateless))
    assert [h.score for h in answer.hits] == pytest.approx(
        [h.score for h in retriever.answer(stateless).hits]
    )
    # the query is now the conversation's last user turn
    follow_up = retriever.answer(parse_request({"conversation_id": "c1", "query": "by whom?"}))
    history = [*stateless.history, "when?"]
    again = parse_request(
        {"history": history, "history_roles": ["user", "system", "user"], "query": "by whom?"}
    )
    assert ids(follow_up) == ids(retriever.answer(again))
    roles = [t.role for t in retriever.conversations.turns("c1")]
    assert roles == ["user", "system", "user", "user"]


def test_only_the_models_context_length_is_kept() -> None:
    retriever = tiny_retriever()
    many = [("system", f"turn {i}") for i in range(TINY.max_context_length + 3)]
    assert retriever.register("c", many)["turns"] == TINY.max_context_length
    texts = [t.text for t in retriever.conversations.turns("c")]
    assert texts == [text for _, text in many[-TINY.max_context_length :]]


def test_an_unknown_conversation_is_a_typed_error_and_nothing_is_stored() -> None:
    retriever = tiny_retriever()
    with pytest.raises(UnknownConversationError, match="register its turns first"):
        retriever.answer(parse_request({"conversation_id": "nope", "query": "q"}))
    assert len(retriever.conversations) == 0


@pytest.mark.parametrize("extra", [{"history": []}, {"history": ["a"]}, {"history_roles": None}])
def test_a_conversation_id_with_a_history_is_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(RequestError, match=r"conversation_id and history.* are both given"):
        parse_request({"conversation_id": "c1", "query": "q", **extra})


def test_bad_conversation_ids_and_invoke_bodies_are_refused() -> None:
    with pytest.raises(RequestError, match=r"conversation_id is 'a/b'; expected 1 to 128"):
        parse_request({"conversation_id": "a/b", "query": "q"})
    body = b'{"parameters": {"conversation_id": "c1", "query": "q"}}'
    with pytest.raises(RequestError, match="conversation_id is for POST /retrieve"):
        parse_invoke_body(body)


def test_a_store_that_does_not_fit_the_model_fails_at_start_up() -> None:
    with pytest.raises(RetrievalError, match="keeps 3 turns, the predictor reads 6"):
        Retriever(
            tiny_retriever().predictor,
            tiny_retriever().encoder,
            tiny_retriever().index,
            model_version="v",
            conversations=ConversationStore(3),
        )


def test_token_caps_without_a_tokenizer_fail_at_start_up() -> None:
    from prime_model.http.serving_config import ServingConfig  # noqa: PLC0415

    base = tiny_retriever()
    with pytest.raises(ConfigError, match="need the Y-Encoder's tokenizer"):
        Retriever(
            base.predictor,
            base.encoder,
            base.index,
            model_version="v",
            config=ServingConfig(history_max_tokens=8),
        )


# ------------------------------------------------------------------------------ HTTP


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(tiny_retriever(), workers=2))


def test_http_register_then_retrieve(client: TestClient) -> None:
    one = client.post("/conversations/c-1/turns", json={"role": "user", "text": "who built it?"})
    assert one.status_code == 200, one.text
    assert set(one.json()) == {"conversation_id", "registered", "turns", "took_ms"}
    listed = client.post(
        "/conversations/c-1/turns",
        json=[{"role": "system", "text": SYSTEM}, {"role": "system", "text": "More."}],
    )
    assert listed.json()["turns"] == 3
    answer = client.post("/retrieve", json={"conversation_id": "c-1", "query": "when?", "top_k": 3})
    assert answer.status_code == 200, answer.text
    stateless = client.post(
        "/retrieve",
        json={
            "history": [
                {"role": "user", "text": "who built it?"},
                {"role": "system", "text": SYSTEM},
                {"role": "system", "text": "More."},
            ],
            "query": "when?",
            "top_k": 3,
        },
    )
    assert answer.json()["hits"] == stateless.json()["hits"]
    info = client.get("/info").json()
    assert info["conversations"]["conversations"] == 1
    assert info["history_max_tokens"] is None


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/conversations/c1/turns", {"role": "bot", "text": "t"}, 422, "role is 'bot'"),
        ("/conversations/c1/turns", {"text": "t"}, 422, "expected {\"role\""),
        ("/conversations/c1/turns", [{"role": "user", "text": "t"}] * 1001, 422, "1001 turns"),
        ("/conversations/c1/turns", {"role": "user", "text": "x" * (MAX_TEXT_CHARS + 1)}, 422,
         f"expected at most {MAX_TEXT_CHARS}"),
        ("/conversations/" + "x" * 129 + "/turns", {"role": "user", "text": "t"}, 422,
         "expected 1 to 128 characters"),
        ("/conversations/c%20d/turns", {"role": "user", "text": "t"}, 422, "'c d'"),
        ("/retrieve", {"conversation_id": "ghost", "query": "q"}, 404,
         "conversation 'ghost' is unknown"),
        ("/retrieve", {"conversation_id": "c1", "history": ["a"], "query": "q"}, 422,
         "are both given"),
    ],
)  # fmt: skip
def test_http_errors(client: TestClient, path: str, body: Any, status: int, message: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    if status == 404:
        assert response.json()["error"] == "UnknownConversationError"


def test_http_an_empty_list_starts_a_conversation(client: TestClient) -> None:
    started = client.post("/conversations/new/turns", json=[])
    assert started.status_code == 200 and started.json()["turns"] == 0
    first = client.post("/retrieve", json={"conversation_id": "new", "query": "hello?"})
    assert first.status_code == 200, first.text
    alone = client.post("/retrieve", json={"query": "hello?"})
    assert first.json()["hits"] == alone.json()["hits"]
    again = client.post("/conversations/new/turns", json={"role": "system", "text": "Hi."})
    assert again.json()["turns"] == 2  # the first query, then the response


def test_http_registration_bodies_that_are_not_json(client: TestClient) -> None:
    response = client.post(
        "/conversations/c1/turns", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "or a list of such objects" in response.json()["message"]


def test_stored_vectors_are_read_only() -> None:
    retriever = tiny_retriever()
    retriever.register("c", [("system", "a")])
    vector = retriever.conversations.turns("c")[0].vector
    with pytest.raises(ValueError, match="read-only"):
        vector[0] = 1.0
    assert np.isfinite(vector).all()
