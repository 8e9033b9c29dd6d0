"""What a Y-Encoder's vectors depend on, as one hash: the index, the caches and the server use it.

A name says which model was meant, not which vectors it gives: the same name with a shorter
``max_seq_length``, or a model retrained in place at the same path, encodes differently. The
fingerprint hashes the weights (every tensor of the state dict), the tokenizer's vocabulary and
rules, the module pipeline (pooling, normalisation, token limit) and the dimension, so an index or
a cached vector is reused only with an encoder that reproduces it. It is stable across processes
and devices; a library upgrade that describes the tokenizer or the pipeline differently changes
it too, which errs on the safe side (re-encode, rebuild the index).
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any, Final

import torch

from prime_model.encode.encoders import SentenceTransformerEncoder

FINGERPRINT_CHARS: Final = 32
_WRAPPER_ATTRS: Final = ("inner",)  # CachedEncoder, LruEncoder: the encoder they wrap
_known: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def encoder_fingerprint(encoder: object) -> str | None:
    """The encoder's fingerprint; None for an encoder that exposes neither weights nor one.

    An encoder may declare its own (``fingerprint``: the ONNX encoder gives its torch
    reference's); wrappers are looked through. Computed once per encoder object (~0.2 s for
    MiniLM's 90 MB of weights).
    """
    declared = getattr(type(encoder), "fingerprint", None)
    if declared is not None:
        value = getattr(encoder, "fingerprint", None)
        return value if isinstance(value, str) else None
    for attr in _WRAPPER_ATTRS:
        inner = getattr(encoder, attr, None)
        if inner is not None:
            return encoder_fingerprint(inner)
    if not isinstance(encoder, SentenceTransformerEncoder):
        return None
    known = _known.get(encoder)
    if known is None:
        known = model_fingerprint(encoder._model, encoder.dim)  # no public accessor for it
        _known[encoder] = known
    return known


def model_fingerprint(model: Any, dim: int) -> str:
    """sha256 of a sentence-transformers model's weights, tokenizer and module pipeline."""
    digest = hashlib.sha256()
    digest.update(f"dim={dim}|max_seq_length={getattr(model, 'max_seq_length', None)}".encode())
    digest.update(repr(model).encode("utf-8", "backslashreplace"))  # pooling, Normalize, limits
    digest.update(_tokenizer_text(getattr(model, "tokenizer", None)).encode("utf-8", "replace"))
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _tokenizer_text(tokenizer: Any) -> str:
    """A fast tokenizer's whole definition (vocabulary, normaliser, ...), else its vocabulary."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and callable(getattr(backend, "to_str", None)):
        return str(backend.to_str())
    vocab = getattr(tokenizer, "get_vocab", None)
    return repr(sorted(vocab().items())) if callable(vocab) else repr(tokenizer)
