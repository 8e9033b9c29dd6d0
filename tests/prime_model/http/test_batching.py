"""Micro-batching: concurrent encode calls merge into one inner call, rows go back to their
callers, and a failure reaches every waiter as a typed error instead of a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from prime_model.errors import ConfigError, DataValidationError, RetrievalError
from prime_model.http.batching import MicroBatchingEncoder, length_groups
from tests.conftest import CountingEncoder

DIM = 8
WAIT_S = 10.0  # a hang fails the test instead of the suite


class GatedEncoder(CountingEncoder):
    """Blocks its first call until :attr:`release` is set; may fail on chosen texts."""

    def __init__(self, fail_on: str | None = None, error: Exception | None = None) -> None:
        super().__init__(dim=DIM)
        self.entered, self.release = threading.Event(), threading.Event()
        self.fail_on, self.error = fail_on, error

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(WAIT_S)
        if self.fail_on is not None and self.fail_on in texts:
            self.calls.append(list(texts))
            raise self.error or DataValidationError(f"cannot encode {self.fail_on!r}")
        return super().encode(texts)


def in_threads(
    batcher: MicroBatchingEncoder, first: list[str], later: list[list[str]], gate: GatedEncoder
) -> list[npt.NDArray[np.float32] | BaseException]:
    """``first`` starts an inner call that blocks; ``later`` callers queue behind it; then the
    gate opens. Each caller's rows or error, in order."""
    results: list[npt.NDArray[np.float32] | BaseException] = [np.zeros(0, np.float32)] * (
        1 + len(later)
    )

    def call(i: int, texts: list[str]) -> Callable[[], None]:
        def run() -> None:
            try:
                results[i] = batcher.encode(texts)
            except BaseException as exc:
                results[i] = exc

        return run

    threads = [threading.Thread(target=call(0, first))]
    threads[0].start()
    assert gate.entered.wait(WAIT_S)
    for i, texts in enumerate(later, start=1):
        threads.append(threading.Thread(target=call(i, texts)))
        threads[-1].start()
    deadline = time.monotonic() + WAIT_S
    while len(batcher._queue) < len(later) and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.release.set()
    for thread in threads:
        thread.join(WAIT_S)
        assert not thread.is_alive(), "a caller hangs"
    return results


def test_an_idle_call_goes_straight_through() -> None:
    inner = CountingEncoder(dim=DIM)
    batcher = MicroBatchingEncoder(inner)
    rows = batcher.encode(["a", "b", "a"])
    assert inner.calls == [["a", "b"]]  # distinct texts once
    np.testing.assert_array_equal(rows, inner.encode(["a", "b", "a"]))
    assert batcher.encode([]).shape == (0, DIM) and batcher.calls == 1
    assert (batcher.name, batcher.dim) == (inner.name, inner.dim)


def test_callers_arriving_during_a_call_share_the_next_one_and_get_their_rows() -> None:
    gate = GatedEncoder()
    batcher = MicroBatchingEncoder(gate)
    later = [["q1", "shared"], ["shared", "q2", "q2"], ["q3"]]
    results = in_threads(batcher, ["first"], later, gate)
    assert gate.calls == [["first"], ["q1", "q2", "q3", "shared"]]  # one call, shortest first
    reference = CountingEncoder(dim=DIM)
    for texts, rows in zip([["first"], *later], results, strict=True):
        assert isinstance(rows, np.ndarray)
        np.testing.assert_array_equal(rows, reference.encode(texts))
    assert (batcher.calls, batcher.merged) == (2, 2)


def test_texts_of_very_different_lengths_go_in_separate_calls() -> None:
    inner = CountingEncoder(dim=DIM)
    long, short = "a long system response. " * 10, "and then?"
    rows = MicroBatchingEncoder(inner).encode([long, short, "why?", long])
    assert inner.calls == [["why?", short], [long]]  # the query is not padded to the long text
    np.testing.assert_array_equal(rows, inner.encode([long, short, "why?", long]))
    assert length_groups(["x" * 40, "x" * 10, "x" * 52, "x" * 53]) == [[1, 0, 2], [3]]


def test_a_merged_call_is_bounded_by_max_batch_texts() -> None:
    gate = GatedEncoder()
    batcher = MicroBatchingEncoder(gate, max_batch_texts=3)
    in_threads(batcher, ["first"], [["a", "b"], ["b", "c"], ["d", "e"]], gate)
    assert gate.calls == [["first"], ["a", "b", "c"], ["d", "e"]]


def test_a_bad_text_fails_only_its_own_caller() -> None:
    gate = GatedEncoder(fail_on="bad")
    batcher = MicroBatchingEncoder(gate)
    results = in_threads(batcher, ["first"], [["fine"], ["bad", "x"], ["also fine"]], gate)
    assert isinstance(results[2], DataValidationError) and "'bad'" in str(results[2])
    reference = CountingEncoder(dim=DIM)
    for i, texts in [(1, ["fine"]), (3, ["also fine"])]:
        rows = results[i]
        assert isinstance(rows, np.ndarray)
        np.testing.assert_array_equal(rows, reference.encode(texts))
    assert gate.calls[1] == ["x", "bad", "fine", "also fine"]  # merged first, then one by one
    assert gate.calls[2:] == [["fine"], ["x", "bad"], ["also fine"]]  # each caller alone


def test_a_foreign_failure_reaches_every_waiter_as_a_typed_error() -> None:
    class DiesAfterFirst(GatedEncoder):
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            if self.entered.is_set():
                raise RuntimeError("onnxruntime died")
            return super().encode(texts)

    gate = DiesAfterFirst()
    results = in_threads(MicroBatchingEncoder(gate), ["first"], [["a"], ["b"], ["c"]], gate)
    assert isinstance(results[0], np.ndarray)
    for error in results[1:]:
        assert isinstance(error, RetrievalError)
        assert "the Y-Encoder failed: RuntimeError: onnxruntime died" in str(error)
        assert isinstance(error.__cause__, RuntimeError)


def test_a_wrong_shape_from_the_encoder_is_a_typed_error() -> None:
    class Short(CountingEncoder):
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return super().encode(texts)[:-1]

    with pytest.raises(RetrievalError, match=r"returned shape \(1, 8\) for 2 texts"):
        MicroBatchingEncoder(Short(dim=DIM)).encode(["a", "b"])


@pytest.mark.parametrize("bad", [{"max_concurrent": 0}, {"max_batch_texts": 0}])
def test_bad_settings_are_config_errors(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="expected at least 1 of each"):
        MicroBatchingEncoder(CountingEncoder(dim=DIM), **bad)


def test_two_concurrent_calls_run_side_by_side_when_allowed() -> None:
    inside, both = threading.Semaphore(0), threading.Barrier(2, timeout=WAIT_S)

    class Meeting(CountingEncoder):
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            both.wait()  # only returns when two calls are inside at once
            inside.release()
            return super().encode(texts)

    batcher = MicroBatchingEncoder(Meeting(dim=DIM), max_concurrent=2)
    threads = [threading.Thread(target=batcher.encode, args=([t],)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert batcher.calls == 2
