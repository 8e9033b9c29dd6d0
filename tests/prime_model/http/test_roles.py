"""Roles and the concat-text input online: history entries with roles in the request, and a
predictor with role_embedding + concat_input served over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.encode.memory_cache import LruEncoder
from prime_model.errors import RequestError
from prime_model.http.app import create_app
from prime_model.http.request import parse_request
from prime_model.http.service import Retriever
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.runtime.inference import EagerPredictor
from tests.conftest import TINY_CONFIG, CountingEncoder
from tests.prime_model.retrieve.support import tiny_retriever, unit_rows

FLAGS = PredictorConfig(
    **{
        **TINY_CONFIG.model_dump(),
        "output_dim": TINY_CONFIG.input_dim,  # the residual adds to the query
        "residual": True,
        "role_embedding": True,
        "concat_input": True,
    }
)
KEEP = 12  # the stub encoder's "token limit", in characters


class FittingEncoder(CountingEncoder):
    """A stub whose fit_to_limit keeps each text's last :data:`KEEP` characters."""

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        return [t[-KEEP:] for t in texts]


def flagged_retriever(encoder: Any) -> Retriever:
    torch.manual_seed(0)
    model = EmbeddingPredictor(FLAGS).eval()
    with torch.no_grad():  # off the zero init, so roles and concat move the prediction
        model.output_proj.weight.normal_(0.0, 0.2)
        model.concat_gate.fill_(0.5)
        model.role_embedding.weight[1:].normal_(0.0, 0.5)
    n = 40
    index = RetrievalIndex.build(
        [f"doc-{i}" for i in range(n)],
        [f"text {i}" for i in range(n)],
        unit_rows(n, FLAGS.output_dim, seed=3),
        encoder_name=encoder.name,
        config=IndexConfig(kind="exact"),
    )
    return Retriever(EagerPredictor(model), encoder, index, model_version="flags:1")


OBJECTS = {
    "history": [{"role": "user", "text": "who wrote it?"}, {"role": "system", "text": "Ann did."}],
    "query": "when?",
    "top_k": 40,
}


def test_history_objects_and_a_parallel_roles_list_parse_alike() -> None:
    objects = parse_request(OBJECTS)
    parallel = parse_request(
        {"history": ["who wrote it?", "Ann did."], "history_roles": ["user", "system"]}
        | {"query": "when?", "top_k": 40}
    )
    assert objects == parallel and objects.history == ["who wrote it?", "Ann did."]
    assert objects.role_ids() == [1, 2]
    mixed = parse_request(
        {"history": ["a", {"text": "b"}, {"role": "system", "text": "c"}]} | {"query": "q"}
    )
    assert mixed.history == ["a", "b", "c"] and mixed.role_ids() == [0, 0, 2]
    plain = parse_request({"history": ["a"], "query": "q"})
    assert plain.history_roles is None and plain.role_ids() == [0]


@pytest.mark.parametrize(
    ("history", "extra", "message"),
    [
        ([{"role": "bot", "text": "a"}], {}, r"history\[0\].role is 'bot'; expected one of user"),
        ([{"role": 1, "text": "a"}], {}, r"history\[0\].role is 1"),
        ([{"role": "user"}], {}, r"history\[0\] has no 'text'"),
        ([{"role": "user", "txt": "a"}], {}, r"history\[0\] has unknown keys \['txt'\]"),
        ([{"role": "user", "text": 5}], {}, "history.0: Input should be a valid string"),
        ([{"role": "user", "text": " "}], {}, r"history\[0\] is empty"),
        (["a"], {"history_roles": ["assistant"]}, "history_roles.0: Input should be 'user'"),
        (["a"], {"history_roles": ["user", "user"]}, "history_roles has 2 entries for 1"),
        ([{"role": "user", "text": "a"}], {"history_roles": ["user"]}, "roles are given twice"),
        (["a"], {"history_roles": ["user"] * 1001}, "history_roles has 1001 entries"),
    ],
)
def test_bad_roles_are_request_errors_that_say_what_is_expected(
    history: list[Any], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(RequestError, match=message):
        parse_request({"history": history, "query": "q", **extra})


def test_roles_and_the_fitted_concat_text_reach_the_predictor() -> None:
    inner = FittingEncoder(dim=FLAGS.input_dim)
    retriever = flagged_retriever(LruEncoder(inner))  # fit_to_limit found behind the cache
    answer = retriever.answer(parse_request(OBJECTS))
    joined = "who wrote it? Ann did. when?"[-KEEP:]  # oldest characters cut, query kept
    assert inner.calls == [["who wrote it?", "Ann did.", "when?", joined]]
    vectors = inner.encode(["who wrote it?", "Ann did.", "when?", joined])
    predicted = retriever.predictor.predict(
        vectors[None, :2], vectors[2:3], np.ones((1, 2), bool), np.array([[1, 2]]), vectors[3:]
    )
    want = retriever.index.search(predicted, 40)[0]
    assert [h.id for h in answer.hits] == [h.id for h in want]
    unknown = retriever.answer(parse_request({**OBJECTS, "history": ["who wrote it?", "Ann did."]}))
    assert [h.score for h in unknown.hits] != [h.score for h in answer.hits]


def test_http_accepts_roles_and_refuses_a_bad_one() -> None:
    retriever = flagged_retriever(FittingEncoder(dim=FLAGS.input_dim))
    with TestClient(create_app(retriever, workers=2)) as client:
        ok = client.post("/retrieve", json=OBJECTS)
        bad = client.post("/retrieve", json={**OBJECTS, "history": [{"role": "bot", "text": "a"}]})
    assert ok.status_code == 200, ok.text
    want = retriever.answer(parse_request(OBJECTS))
    assert [h["id"] for h in ok.json()["hits"]] == [h.id for h in want.hits]
    assert bad.status_code == 422 and bad.json()["error"] == "RequestError"
    assert "history[0].role is 'bot'" in bad.json()["message"]


def test_a_model_without_roles_answers_as_before() -> None:
    retriever = tiny_retriever()
    with_roles = retriever.answer(parse_request(OBJECTS | {"top_k": 10}))
    plain = retriever.answer(
        parse_request({**OBJECTS, "history": ["who wrote it?", "Ann did."]} | {"top_k": 10})
    )
    assert with_roles.hits == plain.hits


def test_serving_a_concat_model_without_fit_to_limit_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="prime_model.http.service"):
        retriever = flagged_retriever(CountingEncoder(dim=FLAGS.input_dim))
    assert "offers no fit_to_limit" in caplog.text
    assert retriever.answer(parse_request(OBJECTS)).hits  # still serves: the text is uncut
