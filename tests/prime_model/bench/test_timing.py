from __future__ import annotations

import time

import pytest

from prime_model import ConfigError
from prime_model.bench.timing import interleaved_p50_ms, interleaved_seconds


def test_every_callable_gets_its_timed_calls_in_blocks_after_an_untimed_one() -> None:
    log: list[str] = []
    times = interleaved_seconds([lambda: log.append("a"), lambda: log.append("b")], 6, block=4)
    assert [len(t) for t in times] == [6, 6]
    # warm-up a b, then blocks of 4 (1 untimed + 3 timed) per callable, rotating
    assert log == ["a", "b", *"aaaa", *"bbbb", *"aaaa", *"bbbb"]


def test_the_median_tells_a_slow_callable_from_a_fast_one() -> None:
    fast, slow = interleaved_p50_ms([lambda: None, lambda: time.sleep(0.002)], 5)
    assert slow > 1.5 > fast


def test_a_budget_stops_early_after_five_timings() -> None:
    times = interleaved_seconds([lambda: time.sleep(0.001)], 1000, block=2, budget_s=0.0)
    assert 5 <= len(times[0]) < 1000


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="repeats must be at least 1"):
        interleaved_seconds([lambda: None], 0)
    with pytest.raises(ConfigError, match="block must be at least 2"):
        interleaved_seconds([lambda: None], 3, block=1)
