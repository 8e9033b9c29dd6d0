"""An in-memory LRU of vectors per text in front of any Y-Encoder, for the serving endpoint.

Conversations repeat their history turns on every request, so most texts a request brings have
been encoded moments ago; a hit costs a dict lookup instead of a forward pass. Misses of one call
go to the encoder in ONE batch (batching is what makes the encoder cheap per text).
Vectors are kept read-only and callers get copies, so no caller can corrupt another's results.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from prime_model.encode.encoders import YEncoder
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.wrapper import EncoderWrapper
from prime_model.errors import ConfigError, DataValidationError

DEFAULT_MAX_ITEMS: Final = 10_000  # 384-d float32: ~15 MB of vectors plus the texts


class LruEncoder(EncoderWrapper):
    """A :class:`YEncoder` that remembers the ``max_items`` most recently used texts' vectors.

    Thread-safe: the lock guards only the dictionary, never the encoder call, so concurrent
    requests still encode in parallel (two requests missing the same text may both encode it;
    the vectors are equal, the cost is one duplicate). ``hits + misses`` counts every text asked
    for: a miss is a distinct text the encoder had to encode, everything else is a hit
    (a text repeated within one call is encoded once and counted as a hit after the first).
    """

    def __init__(self, encoder: YEncoder, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        if max_items < 1:
            raise ConfigError(f"max_items={max_items}; expected at least 1 cached text")
        super().__init__(encoder)
        self.max_items = max_items
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def fingerprint(self) -> str | None:
        """The wrapped encoder's: cached vectors are its vectors."""
        return encoder_fingerprint(self.inner)

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        """Forget every vector (the counters stay: they are the endpoint's lifetime metrics)."""
        with self._lock:
            self._vectors.clear()

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            found.update(zip(missing, self._encode(missing), strict=True))
        with self._lock:
            self._misses += len(missing)
            self._hits += len(texts) - len(missing)
            for text in missing:
                self._vectors[text] = found[text]
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.max_items:
                self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        vectors = np.array(self.inner.encode(texts), dtype=np.float32)  # a copy we own
        if vectors.shape != (len(texts), self.dim):
            raise DataValidationError(
                f"Y-Encoder {self.name!r} returned shape {vectors.shape} for {len(texts)} texts; "
                f"expected ({len(texts)}, {self.dim})"
            )
        vectors.setflags(write=False)
        return vectors
