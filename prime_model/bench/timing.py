"""Side-by-side latency of several callables on one machine, robust to each other's threads.

Interleaving single calls is the usual defence against background load, but ONNX Runtime's and
OpenMP's worker threads keep spinning for a while after a call returns: on a 2-core machine the
next backend's call then competes with the previous one's spinners (measured here: an int8 model
alone 15.6 ms at p50, interleaved call by call 70.8 ms). So each backend runs a short block of
consecutive calls, the first of which absorbs the hand-over and is not counted, and the blocks
rotate over rounds so that load spikes still hit every backend alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Final

from prime_model.errors import ConfigError

BLOCK: Final = 4  # calls per backend per round; the first one is not timed


def interleaved_seconds(
    calls: Sequence[Callable[[], object]],
    repeats: int,
    *,
    block: int = BLOCK,
    budget_s: float | None = None,
) -> list[list[float]]:
    """``repeats`` timed calls of each callable (in blocks, see the module docstring); stops
    early once ``budget_s`` has passed and every callable has at least 5 timings."""
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    if block < 2:
        raise ConfigError(f"block must be at least 2 (one untimed call), got {block}")
    times: list[list[float]] = [[] for _ in calls]
    for call in calls:  # warm-up: allocations, caches, prepacked weights
        call()
    started = time.perf_counter()
    while len(times[0]) < repeats:
        for slot, call in zip(times, calls, strict=True):
            call()
            for _ in range(min(block - 1, repeats - len(slot))):
                start = time.perf_counter()
                call()
                slot.append(time.perf_counter() - start)
        over = budget_s is not None and time.perf_counter() - started > budget_s
        if over and len(times[0]) >= 5:
            break
    return times


def interleaved_p50_ms(
    calls: Sequence[Callable[[], object]], repeats: int, *, block: int = BLOCK
) -> list[float]:
    """The median of :func:`interleaved_seconds`, in milliseconds, per callable."""
    return [statistics.median(t) * 1e3 for t in interleaved_seconds(calls, repeats, block=block)]
