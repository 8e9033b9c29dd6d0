"""The online path: a conversation in, the corpus items its predicted embedding lands next to out.

Loaded once (predictor, Y-Encoder, index), then each request costs one encoder call for its
unseen texts (only its query when it names a registered conversation), one predictor call and
one index search. Everything a request can get wrong is a
:class:`~prime_model.errors.RequestError`; a mismatch between the parts fails at start-up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from prime_model.data.schema import role_ids
from prime_model.encode.encoders import EncoderConfig, YEncoder
from prime_model.encode.engine import load_encoder
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.memory_cache import LruEncoder
from prime_model.encode.texts import joined_texts
from prime_model.errors import RequestError, RetrievalError
from prime_model.http.batching import MicroBatchingEncoder
from prime_model.http.conversations import ConversationStore, StoredTurn
from prime_model.http.request import RetrievalRequest
from prime_model.http.serving_config import ServingConfig
from prime_model.http.text_caps import TextCaps
from prime_model.retrieve.index import Hit, SearchIndex
from prime_model.runtime.inference import InferencePredictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrievalAnswer:
    hits: list[Hit]
    model_version: str
    backend: str
    took_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "hits": [asdict(hit) for hit in self.hits],
            "model_version": self.model_version,
            "backend": self.backend,
            "took_ms": round(self.took_ms, 3),
        }


class Retriever:
    """Predictor + Y-Encoder + index, checked to fit together when built, and the conversations
    registered with it (:mod:`prime_model.http.conversations`)."""

    def __init__(
        self,
        predictor: InferencePredictor,
        encoder: YEncoder,
        index: SearchIndex,
        *,
        model_version: str,
        config: ServingConfig | None = None,
        conversations: ConversationStore | None = None,
    ) -> None:
        model = predictor.config
        problems = []
        if encoder.dim != model.input_dim:
            problems.append(
                f"the Y-Encoder gives {encoder.dim}-d vectors, the predictor reads "
                f"{model.input_dim}-d"
            )
        if index.dim != model.output_dim:
            problems.append(
                f"the index holds {index.dim}-d vectors, the predictor outputs {model.output_dim}-d"
            )
        if index.encoder_name != encoder.name:
            problems.append(
                f"the index was encoded with {index.encoder_name!r}, requests would "
                f"be encoded with {encoder.name!r}"
            )
        problems += _identity_problems(index, encoder)
        if conversations is not None and conversations.max_turns != model.max_context_length:
            problems.append(
                f"the conversation store keeps {conversations.max_turns} turns, the predictor "
                f"reads {model.max_context_length}"
            )
        if problems:
            raise RetrievalError("cannot serve: " + "; ".join(problems))
        self.predictor, self.encoder, self.index = predictor, encoder, index
        self.model_version = model_version
        self.max_turns = model.max_context_length
        self.config = config or ServingConfig()
        self.caps = TextCaps(
            encoder,
            history_max_tokens=self.config.history_max_tokens,
            concat_max_tokens=self.config.concat_max_tokens,
            concat_input=model.concat_input,
        )
        self.conversations = conversations or ConversationStore(
            self.max_turns,
            max_conversations=self.config.max_conversations,
            ttl_s=self.config.conversation_ttl_s,
            max_chars=self.config.max_conversation_chars,
        )

    def check(self, request: RetrievalRequest) -> None:
        """What only this model can refuse: more turns than it reads."""
        if len(request.history) > self.max_turns:
            raise RequestError(
                f"history has {len(request.history)} turns; this model reads at most "
                f"{self.max_turns}: send the {self.max_turns} most recent"
            )

    def answer(self, request: RetrievalRequest) -> RetrievalAnswer:
        """The top-k items; a conversation's query becomes its next user turn once answered."""
        start = time.perf_counter()
        conversation = request.conversation_id
        if conversation is None:
            hits = self.index.search(self.predict(request), request.top_k)[0]
        else:
            history = self.conversations.turns(conversation)
            prediction, turn = self._predict_in(history, request.query)
            hits = self.index.search(prediction, request.top_k)[0]
            if not self.conversations.append(conversation, turn):
                logger.info("conversation %r went while it was answered", conversation)
        took_ms = (time.perf_counter() - start) * 1000
        return RetrievalAnswer(hits, self.model_version, self.predictor.backend, took_ms)

    def predict(self, request: RetrievalRequest) -> npt.NDArray[np.float32]:
        """A stateless request's predicted embedding (1×D_out): encode (cached) and predict."""
        self.check(request)
        history = self.caps.history(request.history)
        n = len(history)
        joined = [self.concat_text(request)] if self.predictor.config.concat_input else []
        vectors = self.encoder.encode([*history, request.query, *joined])
        roles = None if request.history_roles is None else request.role_ids()
        return self._predict(vectors[:n], vectors[n], vectors[n + 1 :], roles)

    def register(self, conversation_id: str, turns: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Encode new (role, text) turns now, off any retrieval's path, and keep them."""
        start = time.perf_counter()
        kept = list(turns)[-self.max_turns :]  # older ones would be dropped at once
        texts = [text for _, text in kept]
        vectors = self.encoder.encode(self.caps.history(texts)) if kept else None
        stored = [
            StoredTurn(role, text, _frozen(vectors[i]))  # type: ignore[index]
            for i, (role, text) in enumerate(kept)
        ]
        count = self.conversations.add(conversation_id, stored)
        took_ms = (time.perf_counter() - start) * 1000
        return {
            "conversation_id": conversation_id,
            "registered": len(turns),
            "turns": count,
            "took_ms": round(took_ms, 3),
        }

    def concat_text(self, request: RetrievalRequest) -> str:
        """History + query as one text, cut from the start: to ``concat_max_tokens`` when set,
        else to the encoder's token limit, as training embedded it (``fitted_concat_texts``)."""
        return self._concat(list(request.history), request.query)

    def _concat(self, history: list[str], query: str) -> str:
        frame = pd.DataFrame({"history": [history], "query": [query]})
        return self.caps.concat(joined_texts(frame)[0])

    def _predict_in(
        self, turns: list[StoredTurn], query: str
    ) -> tuple[npt.NDArray[np.float32], StoredTurn]:
        """A conversation's prediction from its stored vectors (only the query is encoded), and
        the query as the user turn to store after it."""
        config = self.predictor.config
        joined = [self._concat([t.text for t in turns], query)] if config.concat_input else []
        as_history = self.caps.history([query])[0]
        extra = [as_history] if as_history != query else []  # a query over history_max_tokens
        vectors = self.encoder.encode([query, *joined, *extra])
        context = (
            np.stack([t.vector for t in turns])
            if turns
            else np.zeros((0, self.encoder.dim), dtype=np.float32)
        )
        roles = role_ids([t.role for t in turns], len(turns))
        prediction = self._predict(context, vectors[0], vectors[1 : 1 + len(joined)], roles)
        return prediction, StoredTurn("user", query, _frozen(vectors[-1]))

    def _predict(
        self,
        history: npt.NDArray[np.float32],
        query: npt.NDArray[np.float32],
        concat: npt.NDArray[np.float32],
        roles: list[int] | None,
    ) -> npt.NDArray[np.float32]:
        """One prediction from n×D history vectors, the query's D, the concat's 1×D (or 0×D)
        and the role ids (None: unknown)."""
        n, dim = history.shape[0], query.shape[0]
        context = history.reshape(1, n, dim)
        mask = np.ones((1, n), dtype=np.bool_)
        config = self.predictor.config
        extra = {"concat": concat} if config.concat_input else {}  # only what the model reads
        if config.role_embedding and roles is not None:
            extra["context_roles"] = np.array([roles], dtype=np.int64)
        return self.predictor.predict(context, query.reshape(1, dim), mask, **extra)

    def warmup(self) -> None:
        """One request through every part, so the first real one pays no lazy set-up."""
        self.predictor.warmup()
        self.answer(RetrievalRequest(history=["warm up"], query="warm up", top_k=1))

    def info(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "backend": self.predictor.backend,
            "encoder": self.encoder.name,
            "index": {"kind": self.index.kind, "items": len(self.index)},
            "max_turns": self.max_turns,
            **self._cache_info(),
        }

    def serving_info(self) -> dict[str, Any]:
        """The serving knobs and the conversation store's state (``GET /info`` adds them)."""
        return {**self.caps.info(), "conversations": self.conversations.info()}

    def _cache_info(self) -> dict[str, Any]:
        if not isinstance(self.encoder, LruEncoder):
            return {}
        return {"encoder_cache": {"hits": self.encoder.hits, "misses": self.encoder.misses}}


def _frozen(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A read-only copy: a stored turn's vector is read by every later request."""
    out = np.array(vector, dtype=np.float32)
    out.setflags(write=False)
    return out


def _identity_problems(index: SearchIndex, encoder: YEncoder) -> list[str]:
    """The same name is not the same vectors: another token limit or retrained weights at the
    same path encode differently, so the fingerprints must match too."""
    recorded = index.encoder_fingerprint
    actual = encoder_fingerprint(encoder)
    if recorded is None:
        if actual is not None:
            logger.warning(
                "the index records no Y-Encoder fingerprint; only its name %r is checked",
                index.encoder_name,
            )
        return []
    if actual != recorded:
        return [
            f"the index was encoded by Y-Encoder weights/settings {recorded}, the request "
            f"encoder has {actual or 'no fingerprint'} (another max_seq_length, or retrained "
            "weights, or another precision): rebuild the index with this encoder (`prime index "
            "--precision int8` for an int8 Y-Encoder), or serve with the one that built it"
        ]
    return []


def serving_encoder(config: EncoderConfig, serving: ServingConfig | None = None) -> LruEncoder:
    """The Y-Encoder for requests: the ONNX engine (``serving.precision``) with the adaptive
    threading policy (both cores for a call alone, one per call under load; torch when an fp32
    graph cannot be made), concurrent calls merged (:mod:`.batching`), behind a per-text cache."""
    serving = serving or ServingConfig()
    onnx = EncoderConfig(
        **{**config.model_dump(), "engine": "onnx", "precision": serving.precision}
    )
    encoder: YEncoder = load_encoder(onnx, threads="adaptive")
    if serving.micro_batching:
        encoder = MicroBatchingEncoder(encoder, max_batch_texts=serving.max_batch_texts)
    return LruEncoder(encoder)
