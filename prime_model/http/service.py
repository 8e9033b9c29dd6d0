"""The online path: a conversation in, the corpus items its predicted embedding lands next to out.

Loaded once (predictor, Y-Encoder, index), then each request costs one encoder call for its
unseen texts, one predictor call and one index search. Everything a request can get wrong is a
:class:`~prime_model.errors.RequestError`; a mismatch between the parts fails at start-up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder, YEncoder
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.memory_cache import LruEncoder
from prime_model.encode.onnx_encoder import OnnxTextEncoder
from prime_model.encode.texts import joined_texts
from prime_model.errors import OnnxEncoderError, RequestError, RetrievalError
from prime_model.http.request import RetrievalRequest
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
    """Predictor + Y-Encoder + index, checked to fit together when built."""

    def __init__(
        self,
        predictor: InferencePredictor,
        encoder: YEncoder,
        index: SearchIndex,
        *,
        model_version: str,
    ) -> None:
        config = predictor.config
        problems = []
        if encoder.dim != config.input_dim:
            problems.append(
                f"the Y-Encoder gives {encoder.dim}-d vectors, the predictor reads "
                f"{config.input_dim}-d"
            )
        if index.dim != config.output_dim:
            problems.append(
                f"the index holds {index.dim}-d vectors, the predictor outputs "
                f"{config.output_dim}-d"
            )
        if index.encoder_name != encoder.name:
            problems.append(
                f"the index was encoded with {index.encoder_name!r}, requests would "
                f"be encoded with {encoder.name!r}"
            )
        problems += _identity_problems(index, encoder)
        if problems:
            raise RetrievalError("cannot serve: " + "; ".join(problems))
        self.predictor, self.encoder, self.index = predictor, encoder, index
        self.model_version = model_version
        self.max_turns = config.max_context_length
        self._fit = _token_fitter(encoder) if config.concat_input else None
        self._fit_lock = threading.Lock()  # fast tokenizers refuse concurrent use
        if config.concat_input and self._fit is None:
            logger.warning(
                "the predictor reads history + query as one text, but the Y-Encoder %r offers no "
                "fit_to_limit: a text over its token limit loses its end (the query) instead of "
                "its oldest tokens, unlike in training",
                encoder.name,
            )

    def check(self, request: RetrievalRequest) -> None:
        """What only this model can refuse: more turns than it reads."""
        if len(request.history) > self.max_turns:
            raise RequestError(
                f"history has {len(request.history)} turns; this model reads at most "
                f"{self.max_turns}: send the {self.max_turns} most recent"
            )

    def answer(self, request: RetrievalRequest) -> RetrievalAnswer:
        start = time.perf_counter()
        hits = self.index.search(self.predict(request), request.top_k)[0]
        took_ms = (time.perf_counter() - start) * 1000
        return RetrievalAnswer(hits, self.model_version, self.predictor.backend, took_ms)

    def predict(self, request: RetrievalRequest) -> npt.NDArray[np.float32]:
        """The request's predicted embedding (1×D_out): encode (cached) and predict."""
        self.check(request)
        n, reads_concat = len(request.history), self.predictor.config.concat_input
        joined = [self.concat_text(request)] if reads_concat else []
        vectors = self.encoder.encode([*request.history, request.query, *joined])
        dim = vectors.shape[1]
        context = vectors[:n].reshape(1, n, dim)
        mask = np.ones((1, n), dtype=np.bool_)
        extra = {"concat": vectors[n + 1 :]} if reads_concat else {}  # only what the model reads
        if self.predictor.config.role_embedding and request.history_roles is not None:
            extra["context_roles"] = np.array([request.role_ids()], dtype=np.int64)
        return self.predictor.predict(context, vectors[n : n + 1], mask, **extra)

    def concat_text(self, request: RetrievalRequest) -> str:
        """History + query as one text, cut from the start to the encoder's token limit: what
        training embedded for a ``concat_input`` model (``fitted_concat_texts``)."""
        frame = pd.DataFrame({"history": [list(request.history)], "query": [request.query]})
        texts = joined_texts(frame)
        if self._fit is None:
            return texts[0]
        with self._fit_lock:
            return self._fit(texts)[0]

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

    def _cache_info(self) -> dict[str, Any]:
        if not isinstance(self.encoder, LruEncoder):
            return {}
        return {"encoder_cache": {"hits": self.encoder.hits, "misses": self.encoder.misses}}


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
            "weights): rebuild the index with this encoder, or serve with the one that built it"
        ]
    return []


def _token_fitter(encoder: object) -> Callable[[Sequence[str]], list[str]] | None:
    """The ``fit_to_limit`` of the encoder or of one it wraps (``inner``): what training used
    to cut history + query texts (``fitted_concat_texts``); None when none offers it."""
    for _ in range(8):  # wrappers of wrappers; never a cycle
        fit = getattr(encoder, "fit_to_limit", None)
        if callable(fit):
            return cast(Callable[[Sequence[str]], list[str]], fit)
        encoder = getattr(encoder, "inner", None)
        if encoder is None:
            break
    return None


def serving_encoder(config: EncoderConfig) -> LruEncoder:
    """The Y-Encoder for requests: ONNX Runtime (~5x faster than torch for one short text, here)
    behind an in-memory cache per text; torch when the model does not export."""
    torch_encoder = SentenceTransformerEncoder(config)
    try:
        encoder: YEncoder = OnnxTextEncoder(torch_encoder)
    except OnnxEncoderError as exc:
        logger.warning("serving the Y-Encoder with torch: %s", exc)
        encoder = torch_encoder
    return LruEncoder(encoder)
