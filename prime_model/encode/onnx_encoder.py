"""The Y-Encoder on ONNX Runtime, for serving: a short text ~3x faster than sentence-transformers.

The whole ``SentenceTransformer`` module (transformer, its own pooling, Normalize if present) is
exported with ``torch.onnx.export(dynamo=True)``, so CLS-pooling models stay CLS-pooled; a model
the exporter cannot trace is refused, never re-implemented with a guessed pooling.

The export takes ~10 s, so it happens once per encoder identity and library versions and is
cached under :func:`default_onnx_cache_dir` (``$PRIME_CACHE_DIR/onnx-encoders/<name>-<key>/``:
``model.onnx`` and a ``model.json`` sidecar recording its sha256), written as one atomic
directory. A file whose bytes do not match the sidecar, or that ONNX Runtime cannot load, or
that no longer reproduces the torch encoder, is exported again with a warning. Every
construction checks parity against the torch encoder on fixed probe texts (min cosine
:data:`MIN_COSINE`) and raises :class:`OnnxEncoderError` when a fresh export fails it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prime_model.atomic import atomic_directory, write_text_synced
from prime_model.encode.cache import default_cache_dir
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder, keep_tails
from prime_model.encode.identity import encoder_fingerprint
from prime_model.errors import DataValidationError, OnnxEncoderError, PrimeError
from prime_model.files import check_regular_file
from prime_model.logs import quiet_loggers
from prime_model.parsing import parse_json
from prime_model.unicode_checks import has_lone_surrogate

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
OPSET: Final = 20  # the dynamo exporter's default; ONNX Runtime 1.18+ runs it
MIN_COSINE: Final = 0.9999
# 1 intra-op thread: on 2 cores a second one did not lower p50/p99 for batch 1 or 8 (within
# noise), spinning made it slower, and two concurrent requests then each keep a core
DEFAULT_THREADS: Final = 1
ONNX_FILE: Final = "model.onnx"
SIDECAR_FILE: Final = "model.json"
OUTPUT_NAME: Final = "sentence_embedding"
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
_REQUIRED_INPUTS: Final = ("input_ids", "attention_mask")
# what the graph is traced from: a new release may trace to a different graph
_VERSIONED: Final = ("torch", "onnx", "onnxscript", "transformers", "sentence-transformers")
_EXPORTER_LOGGERS: Final = ("onnxscript", "onnx_ir", "torch.onnx._internal.exporter._registration")

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


class _Sidecar(BaseModel):
    """What ``model.json`` records about the ``model.onnx`` beside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    key: dict[str, str] = Field(description="encoder identity, library versions, opset")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    inputs: list[str]
    dim: int = Field(gt=0)


def default_onnx_cache_dir() -> Path:
    """``onnx-encoders/`` inside the embedding cache root, so it follows ``$PRIME_CACHE_DIR``
    and is removed with it; the embedding cache's own folders are ``<name>-<hex>`` and never
    collide with it."""
    return default_cache_dir() / "onnx-encoders"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - all are dependencies
        return "absent"


class _Pair(torch.nn.Module):
    """The sentence-transformer as a plain (input_ids, attention_mask) -> embedding module."""

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        out: torch.Tensor = self.model(features)[OUTPUT_NAME]
        return out


class _Triple(_Pair):
    """As :class:`_Pair`, for tokenizers that also produce ``token_type_ids`` (BERT)."""

    def forward(  # type: ignore[override]
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        features = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        out: torch.Tensor = self.model(features)[OUTPUT_NAME]
        return out


@contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporter warns about things that are fine here (merged axis names, torchvision ops it
    skips) and its optimiser logs every pass on INFO; keep both out of logs and warnings."""
    with quiet_loggers(*_EXPORTER_LOGGERS, level=logging.ERROR), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        yield


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
        self.key = self._cache_key()
        root = cache_dir if cache_dir is not None else default_onnx_cache_dir()
        self.directory = Path(root) / f"{_safe(self._name)}-{_digest(self.key)[:16]}"
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

    # --- the cached file --------------------------------------------------------------------

    def _cache_key(self) -> dict[str, str]:
        key = {"format": str(FORMAT_VERSION), "identity": self._identity, "opset": str(OPSET)}
        key["weights"] = self._fingerprint or "unknown"
        key["inputs"] = ",".join(self.input_names)
        key.update({name: _package_version(name) for name in _VERSIONED})
        return key

    def _load_or_export(
        self, model: SentenceTransformer, reference: SentenceTransformerEncoder
    ) -> Any:
        cached = self._read_cached()
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
        self._write(data)
        return session

    def _read_cached(self) -> bytes | None:
        """The cached file's bytes when its sidecar vouches for them; None (warned) otherwise."""
        sidecar_path = self.directory / SIDECAR_FILE
        if not self.path.exists() and not sidecar_path.exists():
            return None
        try:
            check_regular_file(sidecar_path, "ONNX encoder sidecar", OnnxEncoderError)
            check_regular_file(self.path, "ONNX encoder file", OnnxEncoderError)
            raw = parse_json(sidecar_path.read_text(encoding="utf-8"), str(sidecar_path))
            sidecar = _Sidecar.model_validate(raw)
            data = self.path.read_bytes()
        except (OSError, UnicodeDecodeError, PrimeError, ValidationError) as exc:
            logger.warning(
                "cached ONNX Y-Encoder %s is unreadable (%s); exporting it again",
                self.directory,
                str(exc).splitlines()[0],
            )
            return None
        if sidecar.key != self.key or sidecar.inputs != list(self.input_names):
            logger.warning(
                "cached ONNX Y-Encoder %s was made for another encoder or library "
                "versions; exporting it again",
                self.directory,
            )
            return None
        found = hashlib.sha256(data).hexdigest()
        if found != sidecar.sha256 or len(data) != sidecar.bytes:
            logger.warning(
                "cached ONNX Y-Encoder %s does not match its recorded sha256 (expected %s, "
                "found %s): corrupt or tampered with; exporting it again",
                self.path,
                sidecar.sha256[:12],
                found[:12],
            )
            return None
        return data

    def _write(self, data: bytes) -> None:
        """Both files in one atomic rename; a cache that cannot be written only costs time."""
        sidecar = _Sidecar(
            format_version=FORMAT_VERSION,
            key=self.key,
            sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data),
            inputs=list(self.input_names),
            dim=self._dim,
        )
        try:
            with atomic_directory(self.directory) as staging:
                with (staging / ONNX_FILE).open("wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                write_text_synced(staging / SIDECAR_FILE, sidecar.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            logger.warning("could not cache the ONNX Y-Encoder in %s (%s)", self.directory, exc)

    # --- export, sessions, parity -----------------------------------------------------------

    def _export(self, model: SentenceTransformer) -> bytes:
        started = time.perf_counter()
        module = model if _on_cpu_fp32(model) else copy.deepcopy(model).float().cpu()
        wrapper = (_Triple if "token_type_ids" in self.input_names else _Pair)(module).eval()
        example = self._tokenize(["an example input", "two"])  # batch 2: no 0/1 specialising
        args = tuple(torch.from_numpy(example[name]) for name in self.input_names)
        batch = torch.export.Dim("batch", min=1)
        seq = torch.export.Dim("seq", min=1, max=self.max_seq_length)
        axes = {0: batch, 1: seq}
        try:
            with _quiet_export(), torch.inference_mode(False), torch.no_grad():
                program = torch.onnx.export(
                    wrapper,
                    args,
                    None,
                    dynamo=True,
                    external_data=False,
                    optimize=True,
                    verbose=False,
                    opset_version=OPSET,
                    input_names=list(self.input_names),
                    output_names=[OUTPUT_NAME],
                    dynamic_shapes=dict.fromkeys(self.input_names, axes),
                )
        except Exception as exc:  # the exporter's errors are many and untyped
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxEncoderError(
                f"torch.onnx.export cannot trace Y-Encoder {self._name!r} ({first}); expected a "
                "sentence-transformers model whose modules torch.export supports. Serve it with "
                "SentenceTransformerEncoder instead: pooling is not re-implemented by hand"
            ) from None
        if program is None:  # pragma: no cover - only with f= given
            raise OnnxEncoderError("torch.onnx.export returned no program")
        data: bytes = program.model_proto.SerializeToString()
        logger.info(
            "ONNX Y-Encoder %s: exported (%.1f MB, %.1f s)",
            self._name,
            len(data) / 1e6,
            time.perf_counter() - started,
        )
        self.exported = True
        return data

    def _make_session(self, data: bytes) -> Any:
        """An ONNX Runtime CPU session sized for serving: ``threads`` intra-op threads, one
        sequential executor (the graph is a chain), no spinning unless asked for."""
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        if not self.allow_spinning:  # idle pool threads sleep instead of burning a core
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxEncoderError(
                f"ONNX Y-Encoder {self.path} cannot be loaded by ONNX Runtime {ort.__version__} "
                f"({first}); expected a graph its CPU execution provider runs"
            ) from None

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


def _on_cpu_fp32(model: SentenceTransformer) -> bool:
    return all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())


def _digest(key: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


def _safe(name: str) -> str:
    """A model name as a folder name: anything but letters, digits, ``.``, ``_``, ``-`` -> ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64] or "encoder"
