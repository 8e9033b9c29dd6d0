"""Which ONNX Runtime session runs an encode call: the threading policy of the encoder engine.

On a few cores one long text (1,000+ characters) takes ~110 ms on one intra-op thread and ~75 ms
on two, but two requests at once each on two threads only fight over the cores. The adaptive
policy keeps two sessions on the same graph: a call that finds no other encode in flight runs on
the wide one (every core), otherwise on the narrow one (one thread), so an idle server answers
fast and a busy one gives each request its own core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, Literal, TypeVar

from prime_model.errors import ConfigError

__all__ = ["SessionChooser", "Threads", "usable_cores", "wide_and_narrow"]

Session = TypeVar("Session")
Threads = int | Literal["adaptive"] | None


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def wide_and_narrow(threads: Threads) -> tuple[int, int | None]:
    """Intra-op threads of the wide session and of the narrow one (None: no narrow session).

    ``None``: every usable core, one session (batch work); an int: that many, one session;
    ``"adaptive"``: every usable core and one thread (serving).
    """
    if threads is None:
        return usable_cores(), None
    if threads == "adaptive":
        cores = usable_cores()
        return cores, (1 if cores > 1 else None)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(
            f"threads={threads!r}; expected at least 1 intra-op thread, 'adaptive' (serving) "
            "or None (every usable core)"
        )
    return threads, None


class SessionChooser(Generic[Session]):
    """Hands out ``wide`` to a call that finds no other call in flight, else ``narrow``.

    The count of calls in flight is kept under a lock; without a narrow session every call
    gets ``wide``.
    """

    def __init__(self, wide: Session, narrow: Session | None = None) -> None:
        self.wide, self.narrow = wide, narrow
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The session for one call; the call counts as in flight until the block ends."""
        with self._lock:
            busy = self._in_flight > 0
            self._in_flight += 1
        try:
            yield self.narrow if busy and self.narrow is not None else self.wide
        finally:
            with self._lock:
                self._in_flight -= 1
