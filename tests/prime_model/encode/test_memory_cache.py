from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest

from prime_model.encode.encoders import YEncoder
from prime_model.encode.memory_cache import LruEncoder
from prime_model.errors import ConfigError, DataValidationError
from tests.conftest import CountingEncoder


def _direct(texts: list[str]) -> npt.NDArray[np.float32]:
    return CountingEncoder().encode(texts)


def test_hits_skip_the_encoder_and_misses_go_in_one_batch() -> None:
    inner = CountingEncoder()
    lru = LruEncoder(inner, max_items=10)
    assert isinstance(lru, YEncoder)
    assert (lru.name, lru.dim) == (inner.name, inner.dim)
    first = lru.encode(["a", "b"])
    assert inner.calls == [["a", "b"]]
    mixed = lru.encode(["c", "a", "d", "b", "c"])
    assert inner.calls[1:] == [["c", "d"]]  # one call, each distinct miss once, in order
    np.testing.assert_array_equal(mixed, _direct(["c", "a", "d", "b", "c"]))
    np.testing.assert_array_equal(mixed[[1, 3]], first)
    assert (lru.hits, lru.misses) == (3, 4)  # a, b, repeated c; a, b, c, d
    lru.encode(["d", "a"])
    assert len(inner.calls) == 2
    assert (lru.hits, lru.misses) == (5, 4)


def test_least_recently_used_is_evicted_first() -> None:
    inner = CountingEncoder()
    lru = LruEncoder(inner, max_items=2)
    lru.encode(["a", "b"])
    lru.encode(["a"])  # a is now the most recent, b the oldest
    lru.encode(["c"])  # evicts b
    assert len(lru) == 2
    inner.calls.clear()
    lru.encode(["a", "c"])
    assert inner.calls == []
    lru.encode(["b"])  # a miss again; evicts a (c was used after it)
    lru.encode(["c"])
    lru.encode(["a"])
    assert inner.calls == [["b"], ["a"]]


def test_more_misses_than_room_still_returns_every_vector() -> None:
    lru = LruEncoder(CountingEncoder(), max_items=2)
    texts = ["w", "x", "y", "z"]
    np.testing.assert_array_equal(lru.encode(texts), _direct(texts))
    assert len(lru) == 2


def test_empty_input_and_clear() -> None:
    inner = CountingEncoder(dim=5)
    lru = LruEncoder(inner)
    out = lru.encode([])
    assert out.shape == (0, 5) and out.dtype == np.float32
    assert inner.calls == []
    lru.encode(["a"])
    lru.clear()
    assert len(lru) == 0
    lru.encode(["a"])
    assert inner.calls == [["a"], ["a"]]
    assert (lru.hits, lru.misses) == (0, 2)


def test_callers_cannot_corrupt_the_cache() -> None:
    lru = LruEncoder(CountingEncoder())
    out = lru.encode(["a"])
    out[:] = 0.0  # the caller's copy
    np.testing.assert_array_equal(lru.encode(["a"]), _direct(["a"]))


def test_bad_arguments_and_inner_output() -> None:
    with pytest.raises(ConfigError, match=r"max_items=0; expected at least 1"):
        LruEncoder(CountingEncoder(), max_items=0)

    class Wrong(CountingEncoder):
        def encode(self, texts: object) -> npt.NDArray[np.float32]:
            return np.zeros((1, 3), dtype=np.float32)

    lru = LruEncoder(Wrong(dim=8))
    with pytest.raises(DataValidationError, match=r"shape \(1, 3\) for 2 texts; expected \(2, 8\)"):
        lru.encode(["a", "b"])
    assert len(lru) == 0


def test_concurrent_callers_get_their_own_right_vectors() -> None:
    inner = CountingEncoder()
    lru = LruEncoder(inner, max_items=16)
    vocabulary = [f"turn {i}" for i in range(40)]
    errors: list[BaseException] = []
    calls_per_thread, per_call = 200, 5

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(calls_per_thread):
                texts = list(rng.choice(vocabulary, size=per_call))
                np.testing.assert_array_equal(lru.encode(texts), _direct(texts))
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert lru.hits + lru.misses == 4 * calls_per_thread * per_call
    assert lru.misses == sum(len(call) for call in inner.calls)
    assert 0 < len(lru) <= 16
