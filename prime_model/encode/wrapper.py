"""The base of encoders that sit in front of another one (the disk and in-memory caches).

A wrapper's vectors are its inner encoder's, so it reports that encoder's name and dimension,
and :func:`prime_model.encode.identity.encoder_fingerprint` follows ``inner`` to its weights.
"""

from __future__ import annotations

from prime_model.encode.encoders import YEncoder


class EncoderWrapper:
    """Name and dimension of ``inner``; subclasses add ``encode``."""

    def __init__(self, encoder: YEncoder) -> None:
        self.inner = encoder

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim
