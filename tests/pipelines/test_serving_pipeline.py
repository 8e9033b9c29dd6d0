"""serving_pipeline: the production version's retriever, as a run, behind /invoke validation
and as a real ZenML deployment (local deployer) answering HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from zenml.client import Client
from zenml.enums import ExecutionStatus, ModelStages

from pipelines import serving, serving_pipeline
from pipelines.registry import production_version, serving_artifacts
from prime_model.artifacts import MODEL_NAME
from prime_model.http.request import RetrievalRequest
from prime_model.http.service import Retriever
from prime_model.http.serving_config import ServingConfig
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def retriever(production: str) -> Retriever:
    return serving.load_production_retriever()


def test_the_retriever_serves_the_production_version_and_its_corpus(
    production: str, retriever: Retriever
) -> None:
    version = Client().get_model_version(MODEL_NAME, ModelStages.PRODUCTION)
    assert retriever.model_version == f"{MODEL_NAME}:{version.name}"
    corpus = serving_artifacts(production_version()).index
    answer = retriever.answer(RetrievalRequest(history=["Who founded it?"], query="When?", top_k=5))
    assert len(answer.hits) == 5
    assert {hit.id for hit in answer.hits} <= set(corpus.ids)
    assert answer.backend in ("onnx", "onnx-int8")  # the stored export, not a re-export


def test_a_corpus_the_user_names_is_served_with_the_versions_encoder(
    production: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    items = [{"id": f"doc-{i}", "text": f"Answer number {i} about a city."} for i in range(12)]
    corpus.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    retriever = serving.load_production_retriever(corpus)
    assert retriever.info()["index"]["items"] == 12
    answer = retriever.answer(RetrievalRequest(history=["Who founded it?"], query="When?", top_k=3))
    assert {hit.id for hit in answer.hits} <= {item["id"] for item in items}


def test_make_serve_passes_the_corpus_and_says_a_bad_one_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import serve as serve_script  # noqa: PLC0415 - the top-level make serve script

    asked: list[tuple[Path | None, ServingConfig | None]] = []
    monkeypatch.setattr(serve_script, "load_production_retriever", lambda *args: asked.append(args))
    monkeypatch.setattr(serve_script, "serve", lambda *args: None)
    assert serve_script.main(["--corpus", str(tmp_path / "c.jsonl")]) == 0
    assert serve_script.main(["--concat-max-tokens", "64", "--conversation-ttl", "60"]) == 0
    assert [corpus for corpus, _ in asked] == [tmp_path / "c.jsonl", None]
    serving = asked[1][1]  # make serve takes prime serve's serving flags
    assert serving is not None and serving.concat_max_tokens == 64
    assert serving.conversation_ttl_s == 60
    monkeypatch.undo()  # the real loader: a missing file fails before the store is read
    missing = tmp_path / "missing.jsonl"
    assert serve_script.main(["--corpus", str(missing)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {missing}: file not found; expected an existing data file\n"
    )


def test_a_pipeline_run_returns_the_answer_as_an_artifact(production: str) -> None:
    run = serving_pipeline(history=("Who founded it?",), query="Where was she born?", top_k=3)
    assert run is not None
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    answer = run.steps["retrieve"].outputs["answer"][0].load()
    assert len(answer["hits"]) == 3 and answer["model_version"].startswith(MODEL_NAME)


@pytest.fixture
def guarded(retriever: Retriever, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """InvokeValidation in front of an app that records what reached it."""
    reached: list[dict[str, object]] = []
    inner = FastAPI()

    @inner.post("/invoke")
    async def invoke(body: dict[str, object]) -> dict[str, bool]:
        reached.append(body)
        return {"success": True}

    monkeypatch.setattr(serving, "_retriever", lambda: retriever)
    client = TestClient(serving.InvokeValidation(inner))
    client.reached = reached  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"query": " "}, "query is empty"),
        ({"query": "q", "history": ["t"] * 5}, "history has 5 turns; this model reads at most 4"),
        ({"query": "q", "top_k": 500}, "top_k"),
        ({"history": []}, "query: Field required"),
    ],
)
def test_invoke_requests_that_could_only_fail_get_a_422_before_any_run(
    guarded: TestClient, parameters: dict[str, object], message: str
) -> None:
    response = guarded.post("/invoke", json={"parameters": parameters})
    assert response.status_code == 422
    assert message in response.json()["message"]
    assert guarded.reached == []  # type: ignore[attr-defined]


def test_good_invoke_requests_pass_through_unchanged(guarded: TestClient) -> None:
    body = {"parameters": {"query": "Where was she born?", "history": ["Who founded it?"]}}
    assert guarded.post("/invoke", json=body).json() == {"success": True}
    assert guarded.post("/invoke", content=b"{").status_code == 400
    assert guarded.reached == [body]  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(port: int, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _zenml(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "zenml"), *args]
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def deployment(production: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``zenml pipeline deploy serving_pipeline`` on the local deployer, removed afterwards."""
    config = tmp_path_factory.mktemp("deploy") / "deploy.yaml"
    config.write_text(f"settings:\n  deployer:\n    port: {_free_port()}\n")
    name = "prime-test-serving"
    try:
        done = _zenml("pipeline", "deploy", "serving_pipeline", "-n", name, "-c", str(config),
                      timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        url = Client().get_deployment(name).url
        assert url is not None
        port = urllib.parse.urlsplit(url).port
        assert port is not None
        yield port
    finally:
        _zenml("deployment", "delete", name, "-y", timeout=120)


def test_the_deployment_answers_retrieve_and_invoke(deployment: int) -> None:
    request = {"history": ["Who founded it?"], "query": "Where was she born?", "top_k": 2}
    status, body = _post(deployment, "/retrieve", request)
    assert status == 200 and len(body["hits"]) == 2  # type: ignore[arg-type]
    status, body = _post(deployment, "/invoke", {"parameters": request})
    assert status == 200 and body["success"] is True
    assert body["outputs"]["answer"]["hits"] == _post(deployment, "/retrieve", request)[1]["hits"]  # type: ignore[index]
    status, body = _post(deployment, "/retrieve", {"query": ""})
    assert (status, body["error"]) == (422, "RequestError")
    status, body = _post(deployment, "/invoke", {"parameters": {"query": ""}})
    assert (status, body["error"]) == (422, "RequestError")
