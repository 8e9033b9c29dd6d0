from __future__ import annotations

import numpy as np
import pytest
import torch

from prime_model.encode import engine
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.encode.memory_cache import LruEncoder
from prime_model.errors import OnnxEncoderError, RequestError, RetrievalError
from prime_model.http import service
from prime_model.http.batching import MicroBatchingEncoder
from prime_model.http.request import RetrievalRequest
from prime_model.http.service import Retriever
from prime_model.http.serving_config import ServingConfig
from prime_model.model import EmbeddingPredictor
from prime_model.retrieve.index import RetrievalIndex
from prime_model.runtime.inference import EagerPredictor
from tests.conftest import CountingEncoder
from tests.prime_model.retrieve.support import TINY, tiny_index, tiny_retriever


def test_an_answer_is_the_index_search_of_the_prediction() -> None:
    encoder = CountingEncoder(dim=TINY.input_dim)
    retriever = tiny_retriever(encoder)
    request = RetrievalRequest(history=["first turn", "second turn"], query="and then?", top_k=4)
    answer = retriever.answer(request)
    assert encoder.calls == [["first turn", "second turn", "and then?"]]  # one encoder call
    vectors = encoder.encode(["first turn", "second turn", "and then?"])
    predicted = retriever.predictor.predict(
        vectors[None, :2], vectors[None, 2], np.ones((1, 2), bool)
    )
    assert [h.id for h in answer.hits] == [h.id for h in retriever.index.search(predicted, 4)[0]]
    assert (answer.model_version, answer.backend) == ("tiny:1", "eager")
    body = answer.to_json()
    assert set(body) == {"hits", "model_version", "backend", "took_ms"}
    assert set(body["hits"][0]) == {"id", "text", "score"} and body["took_ms"] > 0


def test_history_is_optional_and_context_matters() -> None:
    retriever = tiny_retriever()
    alone = retriever.answer(RetrievalRequest(query="where?", top_k=50))
    with_context = retriever.answer(
        RetrievalRequest(history=["about doc 3"], query="where?", top_k=50)
    )
    assert len(alone.hits) == 50
    assert [h.score for h in alone.hits] != [h.score for h in with_context.hits]


def test_more_turns_than_the_model_reads_is_a_request_error() -> None:
    retriever = tiny_retriever()
    request = RetrievalRequest(history=["t"] * (TINY.max_context_length + 1), query="q")
    with pytest.raises(RequestError, match="history has 7 turns; this model reads at most 6"):
        retriever.answer(request)


def test_parts_that_do_not_fit_fail_at_start_up() -> None:
    predictor = EagerPredictor(EmbeddingPredictor(TINY).eval())
    with pytest.raises(
        RetrievalError, match="Y-Encoder gives 8-d vectors, the predictor reads 16-d"
    ):
        Retriever(predictor, CountingEncoder(dim=8), tiny_index(), model_version="v")
    other = CountingEncoder(dim=16, name="other-encoder")
    with pytest.raises(RetrievalError, match=r"encoded with 'counting-stub'.*'other-encoder'"):
        Retriever(predictor, other, tiny_index(), model_version="v")


def test_warmup_and_info() -> None:
    torch.manual_seed(0)
    retriever = tiny_retriever()
    retriever.warmup()
    assert retriever.info() == {
        "model_version": "tiny:1",
        "backend": "eager",
        "encoder": "counting-stub",
        "index": {"kind": "exact", "items": 50},
        "max_turns": 6,
    }


def test_repeated_texts_come_from_the_cache_and_info_counts_them() -> None:
    inner = CountingEncoder(dim=TINY.input_dim)
    retriever = tiny_retriever(LruEncoder(inner))
    request = RetrievalRequest(history=["earlier turn"], query="now?")
    first, second = retriever.answer(request), retriever.answer(request)
    assert first.hits == second.hits
    assert inner.calls == [["earlier turn", "now?"]]  # the second request encoded nothing
    assert retriever.info()["encoder_cache"] == {"hits": 2, "misses": 2}


def test_serving_encoder_falls_back_to_torch_when_onnx_export_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OnnxEncoderError("cannot export this model")

    monkeypatch.setattr(engine, "OnnxTextEncoder", refuse)
    encoder = service.serving_encoder(EncoderConfig())
    assert isinstance(encoder.inner, MicroBatchingEncoder)  # cache -> batcher -> torch
    assert isinstance(encoder.inner.inner, SentenceTransformerEncoder)
    assert "on torch instead of ONNX: cannot export this model" in caplog.text
    assert encoder.encode(["hello"]).shape == (1, 384)
    plain = service.serving_encoder(EncoderConfig(), ServingConfig(micro_batching=False))
    assert isinstance(plain.inner, SentenceTransformerEncoder)


def test_an_index_from_other_encoder_vectors_says_how_to_rebuild_it() -> None:
    class Fingerprinted(CountingEncoder):
        fingerprint = "int8-vectors"

    index = RetrievalIndex.build(
        ["a"], ["a"], np.eye(1, TINY.output_dim, dtype=np.float32),
        encoder_name="counting-stub", encoder_fingerprint="fp32-vectors",
    )  # fmt: skip
    predictor = EagerPredictor(EmbeddingPredictor(TINY).eval())
    with pytest.raises(RetrievalError, match=r"prime index --precision int8"):
        Retriever(predictor, Fingerprinted(dim=TINY.input_dim), index, model_version="v")
