"""Libraries' log output, tamed for the duration of one call.

Great Expectations, the ONNX exporter's optimiser and Lightning log per function, per
initializer or per accelerator on INFO; in a pipeline's step log that drowns what the step
itself says. These context managers change logger levels, handlers and filters only while the
call runs and put them back afterwards, so a user of the library keeps their own settings.

:func:`is_terminal` says whether a progress bar can be redrawn at all (else: log lines).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Final, TextIO

LIGHTNING_LOGGERS: Final = ("lightning", "lightning.pytorch", "lightning.fabric")
# where rank_zero_info/rank_zero_warn records are created (the module's `log` is reassigned)
_RANK_ZERO_LOGGERS: Final = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)
# INFO lines that say nothing about this run: hardware we asked for anyway, an advert,
# a step of Lightning's own bookkeeping
LIGHTNING_NOISE: Final = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "💡 Tip:",
    "Loading `train_dataloader` to estimate number of stepping batches",
)


def is_terminal(*streams: TextIO | None) -> bool:
    """Whether every stream (default: stdout and stderr) is a TTY a progress bar can redraw."""
    for stream in streams or (sys.stdout, sys.stderr):
        try:
            if stream is None or not stream.isatty():
                return False
        except (AttributeError, ValueError):  # no isatty, or closed
            return False
    return True


@contextmanager
def quiet_loggers(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Only records at ``level`` or above from the ``names`` loggers (and their children that
    have no level of their own) while the block runs; the previous levels afterwards."""
    loggers = [logging.getLogger(name) for name in names]
    previous = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(max(level, log.level))
    try:
        yield
    finally:
        for log, old in zip(loggers, previous, strict=True):
            log.setLevel(old)


class _DropNoise(logging.Filter):
    """Drops Lightning's uninformative INFO lines; never a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.getMessage().startswith(
            LIGHTNING_NOISE
        )


def _lightning_handler(handler: logging.Handler) -> bool:
    """The console handlers Lightning adds at import (a bare ``StreamHandler`` on stderr); a
    file or any other handler someone configured is left alone."""
    return type(handler) is logging.StreamHandler


@contextmanager
def lightning_logs() -> Iterator[None]:
    """Lightning's INFO lines once, through the application's logging, minus the noise.

    At import Lightning gives the ``lightning`` logger its own stderr handler and keeps
    propagation on when the root logger already has handlers, so every line comes out twice
    (once on stderr, which ZenML labels ERROR). While the block runs, when the root logger has
    handlers, Lightning's console handlers are detached and its records propagate to them;
    without root handlers Lightning's own remain the only output. :data:`LIGHTNING_NOISE` is
    dropped either way; warnings are never touched.
    """
    drop = _DropNoise()
    with ExitStack() as stack:
        for name in _RANK_ZERO_LOGGERS:
            log = logging.getLogger(name)
            log.addFilter(drop)
            stack.callback(log.removeFilter, drop)
        if logging.getLogger().handlers:
            for name in LIGHTNING_LOGGERS:
                log = logging.getLogger(name)
                handlers, propagate = list(log.handlers), log.propagate
                for handler in handlers:
                    if _lightning_handler(handler):
                        log.removeHandler(handler)
                log.propagate = True
                stack.callback(_restore, log, handlers, propagate)
        yield


def _restore(log: logging.Logger, handlers: list[logging.Handler], propagate: bool) -> None:
    log.handlers[:] = handlers
    log.propagate = propagate
