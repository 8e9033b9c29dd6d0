"""One exception family, so callers can catch everything PRIME raises with ``except PrimeError``.

Every message says what was received and what was expected.
"""

from __future__ import annotations

from typing import Protocol, Self


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


class EmptySplitError(DataValidationError):
    """A split by conversation left train, val or test without a turn: the message names the
    fraction to change (or says how many conversations are needed)."""


class ExportError(PrimeError):
    """An ONNX export failed its checks, or an ONNX file is unreadable, tampered with or foreign."""


class RetrievalError(PrimeError):
    """A retrieval index is missing, unreadable, tampered with or does not fit the query."""


class RequestError(PrimeError, ValueError):
    """An online request is malformed: missing fields, wrong types, too many turns, too big."""


class UnknownConversationError(RequestError):
    """A conversation the server does not hold (never registered, expired or evicted): HTTP 404."""


class ClientGoneError(RequestError):
    """The client disconnected before its body was read (no traceback: it is not our fault)."""


class RequestTooLargeError(RequestError):
    """The body is over the request size limit (HTTP 413)."""


class MalformedRequestError(RequestError):
    """The body is not a JSON object (HTTP 400); field problems are plain RequestErrors (422)."""


class LossError(PrimeError, ValueError):
    """Inputs to the loss have the wrong shape or the temperature is not positive."""


class MetricsError(PrimeError, ValueError):
    """Inputs to the retrieval metrics have inconsistent shapes or indices."""


class OnnxEncoderError(ExportError):
    """The Y-Encoder cannot be exported to ONNX, or ONNX Runtime does not reproduce it."""


class ScheduleConfigError(ConfigError):
    """A schedule config file is missing, has no usable ``schedule:`` section or a bad cron."""


class SchedulingUnsupportedError(PrimeError):
    """The active stack's orchestrator cannot run pipelines on a schedule."""


class NoProductionModelError(PrimeError):
    """Nothing to predict with or compare against yet."""


class ModelCardError(PrimeError):
    """A model card cannot be made: the step runs without a model version to describe."""


class LockTimeoutError(OSError):
    """Another process kept writing the same path for longer than the timeout.

    A plain ``OSError``: callers that tolerate a failed write (the embedding cache) tolerate it.
    """


class WriteError(PrimeError, OSError):
    """A write failed (full disk, no permission, a path in the way); the target is unchanged.

    An ``OSError`` too, so callers that turn a failed ``OSError`` into their own error (with
    ``errno``/``strerror``) handle it the same way.
    """

    def __str__(self) -> str:  # OSError's would print "[Errno N] strerror: 'filename'"
        return str(self.args[0]) if self.args else ""


class CheckpointWriteError(CheckpointError, WriteError):
    """A checkpoint could not be written (full disk, ...); the previous one there is unchanged."""


class ForeignContentError(WriteError):
    """The output directory holds files PRIME did not write there; they are never replaced."""


class HtmlReport(Protocol):
    """What a failed validation carries: a report that renders itself (a ValidationReport)."""

    def to_html(self) -> str: ...


class TurnValidationError(DataValidationError):
    """The turn table failed the suite; ``report`` holds every outcome (and ``to_html()``)."""

    def __init__(self, message: str, report: HtmlReport) -> None:
        super().__init__(message)
        self.report = report

    def __reduce__(self) -> tuple[type[Self], tuple[str, HtmlReport]]:
        # Exceptions pickle their args only; keep the report when a step crosses processes.
        return type(self), (str(self), self.report)
