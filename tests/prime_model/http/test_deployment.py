"""The /invoke guard: bodies that could only fail are answered 4xx before any run starts."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from prime_model.http.deployment import InvokeGuard
from prime_model.http.service import Retriever
from tests.prime_model.retrieve.support import tiny_retriever


class _Guard(InvokeGuard):
    checked: Retriever

    def retriever(self) -> Retriever:
        return self.checked


def _client() -> tuple[TestClient, list[dict[str, object]]]:
    reached: list[dict[str, object]] = []
    inner = FastAPI()

    @inner.post("/invoke")
    async def invoke(body: dict[str, object]) -> dict[str, bool]:
        reached.append(body)
        return {"success": True}

    @inner.post("/other")
    async def other() -> dict[str, bool]:
        return {"other": True}

    _Guard.checked = tiny_retriever()
    return TestClient(_Guard(inner)), reached


def test_bad_invoke_bodies_are_refused_with_the_librarys_message() -> None:
    client, reached = _client()
    turns = client.post("/invoke", json={"parameters": {"query": "q", "history": ["t"] * 50}})
    assert turns.status_code == 422 and "history has 50 turns" in turns.json()["message"]
    assert client.post("/invoke", content=b"{").status_code == 400
    assert reached == []


def test_good_bodies_and_other_paths_pass_through_unchanged() -> None:
    client, reached = _client()
    body = {"parameters": {"query": "Where was she born?", "history": ["Who founded it?"]}}
    assert client.post("/invoke", json=body).json() == {"success": True}
    assert client.post("/other").json() == {"other": True}
    assert reached == [body]
