"""An on-disk embedding cache: each text is encoded once per Y-Encoder, across calls and runs.

``prime evaluate`` and the real-data benchmark encode the same turns again and again; a 2-core
machine spends minutes on each pass. Shards are safetensors files (never pickles) holding the
sha256 of each text and its vector, under a folder named after the encoder's identity and its
fingerprint (a hash of its weights, see :mod:`prime_model.encode.identity`), so two encoders, or
one model retrained in place at the same path, never share vectors. A shard that cannot be read,
is not a regular file, or holds vectors that are not finite unit rows is skipped with a warning
and its texts are encoded again: a cache may only cost time, never correctness.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from prime_model.atomic import atomic_file
from prime_model.encode.encoders import YEncoder
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.wrapper import EncoderWrapper
from prime_model.errors import DataValidationError, PrimeError
from prime_model.files import check_regular_file

logger = logging.getLogger(__name__)

CACHE_ENV: Final = "PRIME_CACHE_DIR"
_KEY_BYTES: Final = 32
_NORM_TOLERANCE: Final = 1e-3


def default_cache_dir() -> Path:
    """``$PRIME_CACHE_DIR``, else ``$XDG_CACHE_HOME/prime/embeddings`` (``~/.cache`` by default)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "prime" / "embeddings"


def text_key(text: str) -> bytes:
    """``surrogatepass``: a lone surrogate must not crash a lookup (encoders refuse it)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class CachedEncoder(EncoderWrapper):
    """A :class:`YEncoder` that remembers vectors on disk, keyed by encoder identity + text."""

    def __init__(self, encoder: YEncoder, directory: Path, identity: str) -> None:
        super().__init__(encoder)
        self.fingerprint = encoder_fingerprint(encoder)
        key = identity if self.fingerprint is None else f"{identity}|weights={self.fingerprint}"
        folder = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.directory = Path(directory) / f"{encoder.name}-{folder}"
        self._vectors: dict[bytes, npt.NDArray[np.float32]] | None = None

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        """The inner encoder's token-limit fitting, where it has one (see concat-text)."""
        fit = getattr(self.inner, "fit_to_limit", None)
        return list(fit(texts)) if callable(fit) else list(texts)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        known = self._load()
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
        if missing:
            vectors = np.asarray(self.inner.encode(list(missing.values())), dtype=np.float32)
            if vectors.shape != (len(missing), self.dim):
                raise DataValidationError(
                    f"Y-Encoder {self.name!r} returned shape {vectors.shape} for {len(missing)} "
                    f"texts; expected ({len(missing)}, {self.dim})"
                )
            self._save(list(missing), vectors)
            known.update(zip(missing, vectors, strict=True))
        logger.info(
            "embedding cache: %d of %d texts found, %d encoded",
            len(keys) - len(missing),
            len(keys),
            len(missing),
        )
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([known[k] for k in keys])

    def _load(self) -> dict[bytes, npt.NDArray[np.float32]]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.directory.glob("*.safetensors")):
                self._vectors.update(self._read(shard))
        return self._vectors

    def _read(self, shard: Path) -> dict[bytes, npt.NDArray[np.float32]]:
        try:
            check_regular_file(shard, "embedding cache shard", DataValidationError)  # a FIFO
            tensors = load_file(shard)
            keys, vectors = tensors["keys"], tensors["vectors"]
        except (OSError, SafetensorError, KeyError, PrimeError) as exc:
            logger.warning("embedding cache: skipping unreadable shard %s (%s)", shard, exc)
            return {}
        if (
            keys.dtype != np.uint8
            or keys.ndim != 2
            or vectors.ndim != 2
            or keys.shape != (len(vectors), _KEY_BYTES)
            or vectors.shape[1:] != (self.dim,)
        ):
            logger.warning("embedding cache: skipping shard %s of the wrong shape", shard)
            return {}
        if not _unit_rows(vectors):
            logger.warning(
                "embedding cache: skipping shard %s: it holds NaN, infinite or non-unit vectors",
                shard,
            )
            return {}
        return {bytes(k): v.astype(np.float32) for k, v in zip(keys, vectors, strict=True)}

    def _save(self, keys: list[bytes], vectors: npt.NDArray[np.float32]) -> None:
        digest = hashlib.sha256(b"".join(keys)).hexdigest()[:24]
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _KEY_BYTES)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with atomic_file(self.directory / f"{digest}.safetensors") as staging:
                save_file({"keys": key_array.copy(), "vectors": vectors}, str(staging))
        except OSError as exc:  # incl. WriteError: a read-only or full disk costs time only
            logger.warning("embedding cache: could not write to %s (%s)", self.directory, exc)


def _unit_rows(vectors: npt.NDArray[np.generic]) -> bool:
    """Whether every row is a finite unit vector, as every Y-Encoder returns."""
    if not np.issubdtype(vectors.dtype, np.floating):
        return False
    rows = vectors.astype(np.float32, copy=False)
    if not np.isfinite(rows).all():
        return False
    return bool((np.abs(np.linalg.norm(rows, axis=1) - 1) <= _NORM_TOLERANCE).all())


def cached(encoder: YEncoder, directory: Path | None, identity: str) -> YEncoder:
    """``encoder`` behind a cache in ``directory`` (None: no cache)."""
    return encoder if directory is None else CachedEncoder(encoder, directory, identity)
