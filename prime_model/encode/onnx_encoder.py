"""The Y-Encoder on ONNX Runtime: the engine for batch work and serving (see :mod:`.engine`).

The graph is traced once (:mod:`.onnx_export`) and cached per encoder identity and library
versions (:mod:`.onnx_cache`); the int8 graph is made from it and cached beside it
(:mod:`.onnx_int8`). A cached file whose bytes do not match its sidecar, or that ONNX Runtime
cannot load, or that no longer reproduces the torch encoder, is made again with a warning. Every
construction checks parity against the torch encoder on fixed probe texts (min cosine
:data:`MIN_COSINE`; int8: :data:`~.onnx_int8.MIN_COSINE_INT8`) and raises
:class:`OnnxEncoderError` when a fresh graph fails it. Texts are tokenised once per call and run
in length-sorted batches bounded by padded tokens (:mod:`.buckets`); which session runs a call
follows the threading policy of :mod:`.sessions`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from prime_model.encode.buckets import plan_batches, run_batches
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.locked_tokenizer import LockedTokenizer
from prime_model.encode.onnx_cache import (
    ONNX_FILE,
    cache_folder,
    cache_key,
    default_onnx_cache_dir,
    read_cached,
    write_cached,
)
from prime_model.encode.onnx_export import OPSET, OUTPUT_NAME, export_graph, make_session
from prime_model.encode.onnx_int8 import (
    MIN_COSINE_INT8,
    int8_identity,
    int8_key,
    quantize_int8,
)
from prime_model.encode.parity import MIN_COSINE, PROBE_BATCHES, cosine_problem
from prime_model.encode.sessions import SessionChooser, Threads, wide_and_narrow
from prime_model.errors import DataValidationError, OnnxEncoderError
from prime_model.unicode_checks import has_lone_surrogate

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_THREADS", "MIN_COSINE", "PROBE_BATCHES", "OnnxEncoderError", "OnnxTextEncoder"]

# 1 intra-op thread by default (the HTTP server's): two concurrent requests then each keep a
# core; batch work asks for every core through engine.load_encoder, serving may ask "adaptive"
DEFAULT_THREADS: Final = 1
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
_REQUIRED_INPUTS: Final = ("input_ids", "attention_mask")
Precision = Literal["fp32", "int8"]


class OnnxTextEncoder:
    """A :class:`~prime_model.encode.encoders.YEncoder` running the exported Y-Encoder on ONNX
    Runtime (CPU), safe to call from several threads.

    fp32: ``name``, ``identity`` and ``fingerprint`` are the torch encoder's: the vectors agree
    to cosine :data:`MIN_COSINE` (checked here), so an embedding cache keyed by them may be
    shared. int8: both carry ``|int8``, its vectors being others.
    """

    def __init__(
        self,
        source: EncoderConfig | SentenceTransformerEncoder | None = None,
        *,
        cache_dir: Path | None = None,
        threads: Threads = DEFAULT_THREADS,
        allow_spinning: bool = False,
        precision: Precision = "fp32",
        max_batch_tokens: int | None = None,
    ) -> None:
        try:
            wide, narrow = wide_and_narrow(threads)
        except ValueError as exc:
            raise OnnxEncoderError(str(exc)) from None
        if precision not in ("fp32", "int8"):
            raise OnnxEncoderError(f"precision={precision!r}; expected 'fp32' or 'int8'")
        reference = (
            source
            if isinstance(source, SentenceTransformerEncoder)
            else SentenceTransformerEncoder(source)
        )
        model = reference._model  # the encoder has no public accessor for it
        self._name, self._dim, self._identity = reference.name, reference.dim, reference.identity
        self._fingerprint = encoder_fingerprint(reference)
        self.precision: Precision = precision
        self.batch_size = reference.config.batch_size
        self.max_batch_tokens = (
            reference.config.max_batch_tokens if max_batch_tokens is None else max_batch_tokens
        )
        if self.max_batch_tokens < 1:
            raise OnnxEncoderError(f"max_batch_tokens={max_batch_tokens}; expected at least 1")
        self.threads, self.narrow_threads, self.allow_spinning = wide, narrow, allow_spinning
        self.max_seq_length: int | None = model.max_seq_length
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None or not callable(tokenizer):
            raise OnnxEncoderError(
                f"Y-Encoder {self._name!r} has no tokenizer; expected a text sentence-transformer"
            )
        # our own copy: the torch encoder (fit_to_limit) may use its tokenizer at the same time
        self._tokens = LockedTokenizer(tokenizer)
        self.input_names = self._input_names()
        self.key = cache_key(self._identity, self._fingerprint, self.input_names, OPSET)
        self._root = cache_dir if cache_dir is not None else default_onnx_cache_dir()
        self.directory = cache_folder(self._root, self._name, self.key)
        self.path = self.directory / ONNX_FILE
        self.exported = False  # whether this construction ran the exporter
        self.quantized = False  # whether it made the int8 graph
        data, session = self._load_or_export(model, reference)
        if precision == "int8":
            data, session = self._load_or_quantize(model, reference, data, session)
        extra = None if narrow is None else self._make_session(data, narrow)
        self._sessions: SessionChooser[Any] = SessionChooser(session, extra)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> str:
        """The torch reference's; ``|int8`` added for the int8 graph (other vectors)."""
        return int8_identity(self._identity) if self.precision == "int8" else self._identity

    @property
    def fingerprint(self) -> str | None:
        """The torch reference's (parity is checked): the weights it was exported from;
        ``|int8`` added for the int8 graph, so an index records which vectors it holds."""
        if self._fingerprint is None or self.precision == "fp32":
            return self._fingerprint
        return int8_identity(self._fingerprint)

    @property
    def tokenizer(self) -> Any:
        """The tokenizer this encoder counts tokens with (read-only; do not change it)."""
        return self._tokens.tokenizer

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit float32 vectors, len(texts)×dim: tokenised once, run in length-sorted batches
        of at most ``batch_size`` texts and ``max_batch_tokens`` padded tokens."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        texts = list(texts)
        bad = next((i for i, text in enumerate(texts) if has_lone_surrogate(text)), None)
        if bad is not None:  # the tokenizer would raise a bare TypeError deep inside
            raise DataValidationError(
                f"text {bad} holds a lone surrogate (such as \\ud800), which has no UTF-8 form; "
                "expected valid Unicode text"
            )
        with self._sessions.session() as session:
            return self._encode_with(session, texts)

    # --- tokenising and running -------------------------------------------------------------

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        """Drop the start of texts over the token limit, as the torch encoder does in training."""
        return self._tokens.keep_tails(texts, self.max_seq_length)

    def _encode_with(self, session: Any, texts: list[str]) -> npt.NDArray[np.float32]:
        ids = self._tokens.token_ids(texts, self.input_names, self.max_seq_length)
        batches = plan_batches(
            [len(row["input_ids"]) for row in ids],
            max_tokens=self.max_batch_tokens,
            max_texts=self.batch_size,
        )
        return run_batches(
            batches,
            lambda batch: self._run(
                session, self._tokens.pad([ids[i] for i in batch], self.input_names), len(batch)
            ),
            count=len(texts),
            dim=self._dim,
        )

    def _tokenize(self, texts: list[str]) -> dict[str, npt.NDArray[np.int64]]:
        """As sentence-transformers does: pad to the longest, cut at ``max_seq_length``."""
        rows = self._tokens.token_ids(texts, self.input_names, self.max_seq_length)
        return self._tokens.pad(rows, self.input_names)

    def _run(
        self, session: Any, feeds: dict[str, npt.NDArray[np.int64]], count: int
    ) -> npt.NDArray[np.float32]:
        try:
            outputs = session.run([OUTPUT_NAME], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise OnnxEncoderError(
                f"ONNX Runtime failed to encode {count} texts with {self.path}: {exc}"
            ) from None
        vectors = np.asarray(outputs[0], dtype=np.float32)
        # the torch encoder normalises after the model; a model without a Normalize module
        # (its graph is exported as is) would otherwise give raw CLS or mean vectors
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out: npt.NDArray[np.float32] = vectors / np.maximum(norms, np.float32(1e-12))
        return out

    def _input_names(self) -> tuple[str, ...]:
        produced = set(self._tokens.input_names())
        missing = [name for name in _REQUIRED_INPUTS if name not in produced]
        if missing:
            raise OnnxEncoderError(
                f"the tokenizer of Y-Encoder {self._name!r} produces {sorted(produced)}; expected "
                f"at least {list(_REQUIRED_INPUTS)}"
            )
        return tuple(name for name in _INPUTS if name in produced)

    # --- the cached files, or a fresh export ------------------------------------------------

    def _load_or_export(
        self, model: SentenceTransformer, reference: SentenceTransformerEncoder
    ) -> tuple[bytes, Any]:
        """The fp32 graph and a session on it, cached when it still reproduces ``reference``."""
        cached = self._verified(self.directory, self.key, reference, MIN_COSINE)
        if cached is not None:
            return cached
        data = self._export(model)
        what = f"the ONNX export of Y-Encoder {self._name!r} does not reproduce"
        session = self._fresh_session(data, reference, MIN_COSINE, what)
        write_cached(self.directory, data, self.key, self.input_names, self._dim)
        return data, session

    def _load_or_quantize(
        self,
        model: SentenceTransformer,
        reference: SentenceTransformerEncoder,
        fp32: bytes,
        fp32_session: Any,
    ) -> tuple[bytes, Any]:
        """The int8 graph made from the verified fp32 one, cached beside it."""
        key = int8_key(cache_key(self.identity, self._fingerprint, self.input_names, OPSET))
        directory = cache_folder(self._root, self._name, key)
        self.key, self.directory, self.path = key, directory, directory / ONNX_FILE
        cached = self._verified(directory, key, reference, MIN_COSINE_INT8)
        if cached is not None:
            return cached
        data = quantize_int8(fp32, self._name)
        self.quantized = True
        what = f"the int8 ONNX graph of Y-Encoder {self._name!r} is too far from"
        session = self._fresh_session(data, reference, MIN_COSINE_INT8, what)
        write_cached(directory, data, key, self.input_names, self._dim)
        return data, session

    def _fresh_session(
        self, data: bytes, reference: SentenceTransformerEncoder, floor: float, what: str
    ) -> Any:
        """A session on a graph just made, refused (and so never cached) unless it reproduces
        ``reference`` to cosine ``floor``."""
        session = self._make_session(data)
        problem = self._parity_problem(session, reference, floor)
        if problem is not None:
            raise OnnxEncoderError(f"{what} sentence-transformers: {problem}; nothing was cached")
        return session

    def _verified(
        self,
        directory: Path,
        key: dict[str, str],
        reference: SentenceTransformerEncoder,
        floor: float,
    ) -> tuple[bytes, Any] | None:
        """The cached graph and a session on it, if it loads and holds ``floor``; else None."""
        data = read_cached(directory, key, self.input_names)
        if data is None:
            return None
        try:
            session = self._make_session(data)
        except OnnxEncoderError as exc:
            logger.warning("cached %s; making it again", exc)
            return None
        problem = self._parity_problem(session, reference, floor)
        if problem is None:
            logger.info("ONNX Y-Encoder %s: loaded %s", self._name, directory / ONNX_FILE)
            return data, session
        logger.warning(
            "cached ONNX Y-Encoder %s no longer matches the torch encoder (%s); making it again",
            directory / ONNX_FILE,
            problem,
        )
        return None

    def _export(self, model: SentenceTransformer) -> bytes:
        """Trace the graph (~10 s); a method so tests can stand in for the tracer."""
        example = self._tokenize(["an example input", "two"])  # batch 2: no 0/1 specialising
        data = export_graph(model, example, self.input_names, self.max_seq_length, self._name)
        self.exported = True
        return data

    def _make_session(self, data: bytes, threads: int | None = None) -> Any:
        return make_session(
            data,
            threads=threads or self.threads,
            allow_spinning=self.allow_spinning,
            path=self.path,
        )

    def _parity_problem(
        self, session: Any, reference: SentenceTransformerEncoder, floor: float = MIN_COSINE
    ) -> str | None:
        """What differs between ONNX Runtime and torch on the probe texts; None: nothing."""
        probes = [text for batch in PROBE_BATCHES for text in batch]
        expected = np.concatenate([reference.encode(list(batch)) for batch in PROBE_BATCHES])
        try:
            got = np.concatenate(
                [self._encode_with(session, list(batch)) for batch in PROBE_BATCHES]
            )
        except OnnxEncoderError as exc:
            return str(exc)
        return cosine_problem(got, expected, probes, floor)
