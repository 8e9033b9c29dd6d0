"""The Y-Encoder on ONNX Runtime, for serving: a short text ~3x faster than sentence-transformers.

The graph is traced once (:mod:`.onnx_export`) and cached per encoder identity and library
versions (:mod:`.onnx_cache`). A cached file whose bytes do not match its sidecar, or that ONNX
Runtime cannot load, or that no longer reproduces the torch encoder, is exported again with a
warning. Every construction checks parity against the torch encoder on fixed probe texts (min
cosine :data:`MIN_COSINE`) and raises :class:`OnnxEncoderError` when a fresh export fails it.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder, keep_tails
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.onnx_cache import (
    ONNX_FILE,
    cache_folder,
    cache_key,
    default_onnx_cache_dir,
    read_cached,
    write_cached,
)
from prime_model.encode.onnx_export import OPSET, OUTPUT_NAME, export_graph, make_session
from prime_model.errors import DataValidationError, OnnxEncoderError
from prime_model.unicode_checks import has_lone_surrogate

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_THREADS", "MIN_COSINE", "PROBE_BATCHES", "OnnxEncoderError", "OnnxTextEncoder"]

MIN_COSINE: Final = 0.9999
# 1 intra-op thread: on 2 cores a second one did not lower p50/p99 for batch 1 or 8 (within
# noise), spinning made it slower, and two concurrent requests then each keep a core
DEFAULT_THREADS: Final = 1
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
_REQUIRED_INPUTS: Final = ("input_ids", "attention_mask")

# a mixed-length batch (padding must not leak into the pooling) and, alone so that it does not
# pad the others to 256 tokens (4x the work), a text past MiniLM's 256-token cut
PROBE_BATCHES: Final = (
    (
        "How tall is the Eiffel tower?",
        "",
        "Zürich, 東京 and São Paulo: naïve café ☕ — emoji 🚀 too",
    ),
    (" ".join(f"Koechlin{i} designed tower{i} in {1880 + i}." for i in range(120)),),
)


class OnnxTextEncoder:
    """A :class:`~prime_model.encode.encoders.YEncoder` running the exported Y-Encoder on ONNX
    Runtime (CPU), safe to call from several threads.

    ``name``, ``identity`` and ``fingerprint`` are the torch encoder's: the vectors agree to cosine
    :data:`MIN_COSINE` (checked here), so an embedding cache keyed by them may be shared.
    """

    def __init__(
        self,
        source: EncoderConfig | SentenceTransformerEncoder | None = None,
        *,
        cache_dir: Path | None = None,
        threads: int = DEFAULT_THREADS,
        allow_spinning: bool = False,
    ) -> None:
        if threads < 1:
            raise OnnxEncoderError(f"threads={threads}; expected at least 1 intra-op thread")
        reference = (
            source
            if isinstance(source, SentenceTransformerEncoder)
            else SentenceTransformerEncoder(source)
        )
        model = reference._model  # the encoder has no public accessor for it
        self._name, self._dim, self._identity = reference.name, reference.dim, reference.identity
        self._fingerprint = encoder_fingerprint(reference)
        self.batch_size = reference.config.batch_size
        self.threads, self.allow_spinning = threads, allow_spinning
        self.max_seq_length: int | None = model.max_seq_length
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None or not callable(tokenizer):
            raise OnnxEncoderError(
                f"Y-Encoder {self._name!r} has no tokenizer; expected a text sentence-transformer"
            )
        # our own copy: the torch encoder (fit_to_limit) may use its tokenizer at the same time
        self._tokenizer: Any = copy.deepcopy(tokenizer)
        self._tokenizer_lock = threading.Lock()  # fast tokenizers: "Already borrowed" otherwise
        self.input_names = self._input_names()
        self.key = cache_key(self._identity, self._fingerprint, self.input_names, OPSET)
        root = cache_dir if cache_dir is not None else default_onnx_cache_dir()
        self.directory = cache_folder(root, self._name, self.key)
        self.path = self.directory / ONNX_FILE
        self.exported = False  # whether this construction ran the exporter
        self._session = self._load_or_export(model, reference)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def fingerprint(self) -> str | None:
        """The torch reference's (parity is checked): the weights it was exported from."""
        return self._fingerprint

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit float32 vectors, len(texts)×dim; long inputs in length-sorted chunks of
        ``batch_size`` so one long text does not pad (and slow) a whole large batch."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        texts = list(texts)
        bad = next((i for i, text in enumerate(texts) if has_lone_surrogate(text)), None)
        if bad is not None:  # the tokenizer would raise a bare TypeError deep inside
            raise DataValidationError(
                f"text {bad} holds a lone surrogate (such as \\ud800), which has no UTF-8 form; "
                "expected valid Unicode text"
            )
        if len(texts) <= self.batch_size:
            return self._run(self._session, texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._run(self._session, [texts[i] for i in chunk])
        return out

    # --- tokenising and running -------------------------------------------------------------

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        """Drop the start of texts over the token limit, as the torch encoder does in training."""
        with self._tokenizer_lock:
            return keep_tails(texts, self._tokenizer, self.max_seq_length)

    def _tokenize(self, texts: list[str]) -> dict[str, npt.NDArray[np.int64]]:
        """As sentence-transformers does: pad to the longest, cut at ``max_seq_length``."""
        with self._tokenizer_lock:
            encoded = self._tokenizer(
                texts,
                padding=True,
                truncation="longest_first" if self.max_seq_length is not None else False,
                max_length=self.max_seq_length,
                return_tensors="np",
                verbose=False,
            )
        return {name: np.asarray(encoded[name], dtype=np.int64) for name in self.input_names}

    def _run(self, session: Any, texts: list[str]) -> npt.NDArray[np.float32]:
        feeds = self._tokenize(texts)
        try:
            outputs = session.run([OUTPUT_NAME], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise OnnxEncoderError(
                f"ONNX Runtime failed to encode {len(texts)} texts with {self.path}: {exc}"
            ) from None
        vectors = np.asarray(outputs[0], dtype=np.float32)
        # the torch encoder normalises after the model; a model without a Normalize module
        # (its graph is exported as is) would otherwise give raw CLS or mean vectors
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out: npt.NDArray[np.float32] = vectors / np.maximum(norms, np.float32(1e-12))
        return out

    def _input_names(self) -> tuple[str, ...]:
        produced = set(self._tokenize_probe())
        missing = [name for name in _REQUIRED_INPUTS if name not in produced]
        if missing:
            raise OnnxEncoderError(
                f"the tokenizer of Y-Encoder {self._name!r} produces {sorted(produced)}; expected "
                f"at least {list(_REQUIRED_INPUTS)}"
            )
        return tuple(name for name in _INPUTS if name in produced)

    def _tokenize_probe(self) -> list[str]:
        with self._tokenizer_lock:
            return list(self._tokenizer(["probe"], verbose=False).keys())

    # --- the cached file, or a fresh export -------------------------------------------------

    def _load_or_export(
        self, model: SentenceTransformer, reference: SentenceTransformerEncoder
    ) -> Any:
        """A session on the cached graph when it still reproduces ``reference``; else export."""
        cached = read_cached(self.directory, self.key, self.input_names)
        if cached is not None:
            try:
                session = self._make_session(cached)
            except OnnxEncoderError as exc:
                logger.warning("cached %s; exporting it again", exc)
            else:
                problem = self._parity_problem(session, reference)
                if problem is None:
                    logger.info("ONNX Y-Encoder %s: loaded %s", self._name, self.path)
                    return session
                logger.warning(
                    "cached ONNX Y-Encoder %s no longer matches the torch encoder (%s); "
                    "exporting it again",
                    self.path,
                    problem,
                )
        data = self._export(model)
        session = self._make_session(data)
        problem = self._parity_problem(session, reference)
        if problem is not None:
            raise OnnxEncoderError(
                f"the ONNX export of Y-Encoder {self._name!r} does not reproduce "
                f"sentence-transformers: {problem}; nothing was cached"
            )
        write_cached(self.directory, data, self.key, self.input_names, self._dim)
        return session

    # --- export, sessions, parity -----------------------------------------------------------

    def _export(self, model: SentenceTransformer) -> bytes:
        """Trace the graph (~10 s); a method so tests can stand in for the tracer."""
        example = self._tokenize(["an example input", "two"])  # batch 2: no 0/1 specialising
        data = export_graph(model, example, self.input_names, self.max_seq_length, self._name)
        self.exported = True
        return data

    def _make_session(self, data: bytes) -> Any:
        return make_session(
            data, threads=self.threads, allow_spinning=self.allow_spinning, path=self.path
        )

    def _parity_problem(self, session: Any, reference: SentenceTransformerEncoder) -> str | None:
        """What differs between ONNX Runtime and torch on the probe texts; None: nothing."""
        probes = [text for batch in PROBE_BATCHES for text in batch]
        expected = np.concatenate([reference.encode(list(batch)) for batch in PROBE_BATCHES])
        try:
            got = np.concatenate([self._run(session, list(batch)) for batch in PROBE_BATCHES])
        except OnnxEncoderError as exc:
            return str(exc)
        if got.shape != expected.shape:
            return f"shape {got.shape}, expected {expected.shape}"
        cosine = np.sum(got * expected, axis=1) / (
            np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1) + 1e-12
        )
        worst = int(np.argmin(cosine))
        if not np.isfinite(cosine).all() or cosine[worst] < MIN_COSINE:
            return (
                f"min cosine {float(cosine[worst]):.6f} on probe {probes[worst][:40]!r} "
                f"(required {MIN_COSINE})"
            )
        return None
