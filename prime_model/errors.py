"""One exception family, so callers can catch everything PRIME raises with ``except PrimeError``.

Every message says what was received and what was expected.
"""

from __future__ import annotations


class PrimeError(Exception):
    """Base class of every error raised on purpose by ``prime_model``."""


class ConfigError(PrimeError, ValueError):
    """A configuration value, file or combination of values is invalid."""


class PredictorError(PrimeError, ValueError):
    """Inputs handed to the predictor do not fit its configuration."""


class CheckpointError(PrimeError):
    """A checkpoint is missing, corrupted, of an unknown version or does not fit its config."""


class DataValidationError(PrimeError, ValueError):
    """A turn table or data file does not meet the turn schema or the validation suite."""


class ExportError(PrimeError):
    """An ONNX export failed its checks, or an ONNX file is unreadable, tampered with or foreign."""


class RetrievalError(PrimeError):
    """A retrieval index is missing, unreadable, tampered with or does not fit the query."""


class RequestError(PrimeError, ValueError):
    """An online request is malformed: missing fields, wrong types, too many turns, too big."""
