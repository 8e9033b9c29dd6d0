"""The one chooser of the Y-Encoder engine: torch (the reference) or ONNX Runtime (fast on CPU).

Every batch call site (pipeline steps, ``prime`` commands, the index builders) loads its encoder
here, so the engine, precision and threads are chosen in one place. ``engine: torch`` is the
library default (the reference, and what training's vectors came from); ``engine: onnx`` runs
the same model on ONNX Runtime with token-budget batches (~2x sentence-transformers on 2 CPU
cores, same vectors to cosine 0.9999); ``precision: int8`` is faster still, with other vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder, YEncoder
from prime_model.encode.onnx_encoder import OnnxTextEncoder
from prime_model.encode.sessions import Threads
from prime_model.errors import OnnxEncoderError

logger = logging.getLogger(__name__)

__all__ = ["LoadedEncoder", "load_encoder"]


@runtime_checkable
class LoadedEncoder(YEncoder, Protocol):
    """What :func:`load_encoder` returns: a Y-Encoder with an identity (the embedding cache's
    key), a tokenizer and the token-limit fitting training uses."""

    @property
    def identity(self) -> str: ...

    @property
    def tokenizer(self) -> Any: ...

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]: ...


def load_encoder(
    config: EncoderConfig,
    *,
    threads: Threads = None,
    cache_dir: Path | None = None,
) -> LoadedEncoder:
    """The Y-Encoder ``config`` names, on its engine.

    ``threads`` (ONNX only): None = every usable core (batch work), an int, or ``"adaptive"``
    (serving: every core for a call alone, one thread per call under load). ``cache_dir``: where
    the ONNX graphs are cached (default beside the embedding cache). An fp32 ONNX graph that
    cannot be made falls back to torch with a warning (same vectors); an int8 one raises
    :class:`~prime_model.errors.OnnxEncoderError` (its vectors have no torch equivalent).
    """
    reference = SentenceTransformerEncoder(config)
    if config.engine == "torch":
        return reference
    try:
        return OnnxTextEncoder(
            reference,
            cache_dir=cache_dir,
            threads=threads,
            precision=config.precision,
            max_batch_tokens=config.max_batch_tokens,
        )
    except OnnxEncoderError as exc:
        if config.precision == "int8":
            raise
        logger.warning("Y-Encoder %s on torch instead of ONNX: %s", reference.name, exc)
        return reference
