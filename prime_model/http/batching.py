"""Micro-batching: concurrent requests' texts share one Y-Encoder call.

Per text, one call for eight short queries costs far less than eight calls (the fixed cost of a
forward pass, and one thread pool instead of several fighting for two cores). No timer: a caller
arriving while the encoder is idle encodes at once, alone. Only callers arriving while
``max_concurrent`` calls run wait; when a call returns, one of them (the leader) encodes the
union of every queued caller's unseen texts and hands each its rows. Texts of very different
lengths go in separate inner calls (:func:`length_groups`), so a short query is not padded to a
long history text.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from prime_model.encode.encoders import YEncoder
from prime_model.encode.identity import encoder_fingerprint
from prime_model.encode.wrapper import EncoderWrapper
from prime_model.errors import ConfigError, PrimeError, RetrievalError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_TEXTS: Final = 64
"""Distinct texts per merged call: more only lengthens the wait of the callers it serves."""
GROUP_SLACK_CHARS: Final = 32
"""Below ~8 tokens a text's length is noise next to a forward pass's fixed cost."""


class _Pending:
    """One caller's texts, and what it gets back."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = False
        self.rows: npt.NDArray[np.float32] | None = None
        self.error: BaseException | None = None


class MicroBatchingEncoder(EncoderWrapper):
    """A :class:`YEncoder` that merges the ``encode`` calls of concurrent threads.

    At most ``max_concurrent`` inner calls run at once; a caller that finds them all busy is
    queued, and the first queued caller to find a free slot encodes the distinct texts of the
    queue's head (up to ``max_batch_texts``, at least one caller) for everyone in it. When a
    merged call fails, its callers are encoded one by one, so a bad text fails only its own
    caller; an error that is not one of ours reaches the caller as a :class:`RetrievalError`.
    """

    def __init__(
        self,
        encoder: YEncoder,
        *,
        max_concurrent: int = 1,
        max_batch_texts: int = DEFAULT_MAX_BATCH_TEXTS,
    ) -> None:
        if max_concurrent < 1 or max_batch_texts < 1:
            raise ConfigError(
                f"max_concurrent={max_concurrent}, max_batch_texts={max_batch_texts}; expected "
                "at least 1 of each"
            )
        super().__init__(encoder)
        self.max_concurrent, self.max_batch_texts = max_concurrent, max_batch_texts
        self._queue: deque[_Pending] = deque()
        self._running = 0
        self._ready = threading.Condition()
        self._counts = threading.Lock()
        self.calls = 0  # inner encode calls made
        self.merged = 0  # callers served by a call made for someone else too

    @property
    def fingerprint(self) -> str | None:
        """The wrapped encoder's: these are its vectors."""
        return encoder_fingerprint(self.inner)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        mine = _Pending(list(texts))
        with self._ready:
            self._queue.append(mine)
            while not mine.done:
                if self._running < self.max_concurrent:
                    batch = self._take()
                    self._running += 1
                    self._ready.release()
                    try:
                        self._serve(batch)
                    finally:
                        self._ready.acquire()
                        self._running -= 1
                        self._ready.notify_all()
                else:
                    self._ready.wait()
        return _result(mine)

    def _take(self) -> list[_Pending]:
        """The queue's head: callers while their distinct texts fit ``max_batch_texts``."""
        batch = [self._queue.popleft()]
        distinct = set(batch[0].texts)
        while self._queue:
            more = distinct.union(self._queue[0].texts)
            if len(more) > self.max_batch_texts:
                break
            distinct = more
            batch.append(self._queue.popleft())
        return batch

    def _serve(self, batch: list[_Pending]) -> None:
        """Encode for every caller in ``batch``; each ends done with rows or an error."""
        try:
            unique = list(dict.fromkeys(t for pending in batch for t in pending.texts))
            try:
                vectors = self._inner_encode(unique)
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                    return
                logger.warning("a merged Y-Encoder call failed (%s); encoding one by one", exc)
                for pending in batch:
                    try:
                        pending.rows = self._inner_encode(list(dict.fromkeys(pending.texts)))
                        pending.rows = _rows_for(pending.texts, pending.rows)
                    except Exception as one:
                        pending.error = one
                return
            row = {text: i for i, text in enumerate(unique)}
            for pending in batch:
                pending.rows = vectors[[row[t] for t in pending.texts]]
            with self._counts:
                self.merged += len(batch) - 1
        except BaseException as exc:  # interrupted: nobody in the batch may wait forever
            for pending in batch:
                if pending.rows is None and pending.error is None:
                    pending.error = exc
            raise
        finally:
            for pending in batch:
                if pending.rows is None and pending.error is None:  # pragma: no cover - guard
                    pending.error = RetrievalError("the Y-Encoder returned no vectors")
                pending.done = True

    def _inner_encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One inner call per group of similar lengths (:func:`length_groups`), rows in order."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for group in length_groups(texts):
            out[group] = self._encode_group([texts[i] for i in group])
        return out

    def _encode_group(self, texts: list[str]) -> npt.NDArray[np.float32]:
        with self._counts:
            self.calls += 1
        vectors = np.asarray(self.inner.encode(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise RetrievalError(
                f"Y-Encoder {self.name!r} returned shape {vectors.shape} for {len(texts)} texts; "
                f"expected ({len(texts)}, {self.dim})"
            )
        return vectors


def length_groups(texts: Sequence[str]) -> list[list[int]]:
    """Indices of ``texts`` in groups of similar length (shortest first): a text over twice the
    group's shortest (plus :data:`GROUP_SLACK_CHARS`) starts a new group.

    A batch is padded to its longest text: a query sent with a 250-token history text in one
    call costs the work of two long texts, while two calls cost one long text and one short."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    groups: list[list[int]] = []
    shortest = 0
    for index in order:
        if not groups or len(texts[index]) > 2 * shortest + GROUP_SLACK_CHARS:
            groups.append([])
            shortest = len(texts[index])
        groups[-1].append(index)
    return groups


def _rows_for(texts: list[str], unique_rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    row = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    return unique_rows[[row[t] for t in texts]]


def _result(pending: _Pending) -> npt.NDArray[np.float32]:
    if pending.error is None:
        assert pending.rows is not None  # noqa: S101 - done without an error means rows
        return pending.rows
    if isinstance(pending.error, PrimeError):
        raise pending.error  # this caller's own error: nobody else raises it
    raise RetrievalError(
        f"the Y-Encoder failed: {type(pending.error).__name__}: {pending.error}"
    ) from pending.error
