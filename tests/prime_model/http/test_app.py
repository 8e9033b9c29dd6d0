"""The HTTP contract of ``prime serve``: happy path and every bad-request class, in process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from prime_model.errors import ExportError
from prime_model.http.app import create_app
from prime_model.http.request import MAX_BODY_BYTES
from prime_model.http.service import Retriever
from tests.prime_model.retrieve.support import tiny_retriever


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    return tiny_retriever()


@pytest.fixture(scope="module")
def client(retriever: Retriever) -> TestClient:
    return TestClient(create_app(retriever, workers=2))


def test_retrieve_returns_top_k_with_the_model_version(client: TestClient) -> None:
    response = client.post(
        "/retrieve", json={"history": ["a turn"], "query": "a query", "top_k": 3}
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["hits"]) == 3 and body["model_version"] == "tiny:1"
    assert body["hits"][0]["id"].startswith("doc-")
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_health_and_info(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/info").json()["index"] == {"kind": "exact", "items": 50}


@pytest.mark.parametrize(
    ("body", "status", "error", "message"),
    [
        ('{"history": []}', 422, "RequestError", "query: Field required"),
        ('{"query": 3}', 422, "RequestError", "query: Input should be a valid string"),
        ('{"query": "q", "history": [1]}', 422, "RequestError", "history.0"),
        ('{"query": ""}', 422, "RequestError", "query is empty"),
        ('{"query": "q", "history": ["t","t","t","t","t","t","t"]}', 422, "RequestError",
         "history has 7 turns; this model reads at most 6"),
        ('{"query": "q", "top_k": 0}', 422, "RequestError", "top_k"),
        ("[]", 400, "MalformedRequestError", "is a JSON list"),
        ("{", 400, "MalformedRequestError", "invalid JSON"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_4xx_with_the_library_message(
    client: TestClient, body: str, status: int, error: str, message: str
) -> None:
    response = client.post("/retrieve", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    payload = response.json()
    assert payload["error"] == error
    assert message in payload["message"]
    assert "Traceback" not in response.text


def test_oversized_bodies_are_refused_announced_or_streamed(client: TestClient) -> None:
    big = json.dumps({"query": "x" * (MAX_BODY_BYTES + 10)})
    response = client.post("/retrieve", content=big)
    assert response.status_code == 413
    assert response.json()["error"] == "RequestTooLargeError"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        yield b'{"query": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    assert client.post("/retrieve", content=chunks()).status_code == 413


def test_a_failure_after_validation_is_a_typed_500(
    retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise ExportError("ONNX Runtime failed")

    monkeypatch.setattr(retriever.predictor, "predict", broken)
    client = TestClient(create_app(retriever), raise_server_exceptions=False)
    response = client.post("/retrieve", json={"query": "q"})
    assert response.status_code == 500
    assert response.json() == {"error": "ExportError", "message": "ONNX Runtime failed"}
