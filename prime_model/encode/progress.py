"""Progress lines for a long encoding whose output is not a terminal (a log, the dashboard).

sentence-transformers draws its bar only on a terminal, so a pipeline run that encodes 140k
texts on a CPU logged nothing for 13 minutes. Off a terminal, inputs longer than one chunk are
encoded chunk by chunk with a line per chunk; shorter inputs and terminals go through in one call,
so their vectors (and the sample run) are exactly as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from prime_model.encode.encoders import YEncoder
from prime_model.encode.wrapper import EncoderWrapper
from prime_model.logs import is_terminal

logger = logging.getLogger(__name__)

CHUNK_TEXTS: Final = 8192  # about a minute of MiniLM on 2 CPU cores: one line per chunk


class ProgressEncoder(EncoderWrapper):
    """``inner``'s vectors; off a terminal, a log line per chunk of ``chunk`` texts."""

    def __init__(self, encoder: YEncoder, chunk: int = CHUNK_TEXTS) -> None:
        super().__init__(encoder)
        self.chunk = chunk

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        """The inner encoder's token-limit fitting, where it has one (see concat-text)."""
        fit = getattr(self.inner, "fit_to_limit", None)
        return list(fit(texts)) if callable(fit) else list(texts)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if len(texts) <= self.chunk or is_terminal():
            return self.inner.encode(texts)
        started, parts = time.perf_counter(), []
        for start in range(0, len(texts), self.chunk):
            parts.append(self.inner.encode(texts[start : start + self.chunk]))
            done = min(start + self.chunk, len(texts))
            rate = done / max(time.perf_counter() - started, 1e-9)
            logger.info(
                "encoding: %d of %d texts (%.0f texts/s, about %.0f s left)",
                done,
                len(texts),
                rate,
                (len(texts) - done) / rate,
            )
        return np.concatenate(parts).astype(np.float32, copy=False)
