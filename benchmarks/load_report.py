"""The load test's numbers: latency per pass and call kind, the server's memory, a Markdown table.

First-pass and warm (cycling) rows are kept apart: a first pass encodes every new text, a warm
pass finds most of them in the server's cache, and an average of the two describes neither.
Memory is judged after a warm-up: the RSS at ``warmup_s`` against the last sample, flat within
:data:`FLAT_TOLERANCE`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from benchmarks.load_clients import FIRST, WARM, ClientRun

FLAT_TOLERANCE: Final = 0.05


@dataclass(frozen=True)
class PassResult:
    """One pass and call kind over all clients. ``requests_per_s`` adds up each client's rate
    in that pass (its calls over its own time in the pass): clients run side by side."""

    phase: str
    kind: str
    requests: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: dict[str, int]


@dataclass(frozen=True)
class MemoryResult:
    """The server's RSS (MB): first sample, after the warm-up, last sample, peak."""

    start_mb: float
    warm_mb: float
    end_mb: float
    peak_mb: float | None
    warmup_s: float
    seconds: float

    @property
    def change(self) -> float:
        """End against after-warm-up, as a fraction (0.03: grew 3 %)."""
        return self.end_mb / self.warm_mb - 1 if self.warm_mb else float("nan")

    @property
    def flat(self) -> bool:
        return abs(self.change) <= FLAT_TOLERANCE


@dataclass(frozen=True)
class LoadResult:
    target: str
    order: str
    items: int
    clients: int
    seconds: float
    passes: tuple[PassResult, ...]
    memory: MemoryResult | None = None
    cache_hit_rate: float | None = None
    load_avg_1m: float | None = None
    """The machine's 1-minute load average at the end: how contended the row was."""

    def at(self, phase: str, kind: str = "retrieve") -> PassResult | None:
        return next((p for p in self.passes if (p.phase, p.kind) == (phase, kind)), None)


def summarize_pass(runs: Sequence[ClientRun], phase: str, kind: str) -> PassResult | None:
    """The pass's latencies and errors over every client; None when no client got there."""
    chosen = [run.samples[(phase, kind)] for run in runs if (phase, kind) in run.samples]
    if not chosen:
        return None
    latencies = np.asarray([v for s in chosen for v in s.latencies_ms], dtype=np.float64)
    errors: dict[str, int] = {}
    for samples in chosen:
        for key, count in samples.errors.items():
            errors[key] = errors.get(key, 0) + count
    rate = sum(
        len(run.samples[(phase, kind)].latencies_ms) / run.seconds[phase]
        for run in runs
        if (phase, kind) in run.samples and run.seconds.get(phase, 0) > 0
    )
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) if latencies.size else (np.nan,) * 3
    return PassResult(
        phase, kind, int(latencies.size), rate, float(p50), float(p90), float(p99), errors
    )


def summarize(
    target: str,
    items: int,
    seconds: float,
    runs: Sequence[ClientRun],
    *,
    order: str = "cycled",
    memory: MemoryResult | None = None,
    cache_hit_rate: float | None = None,
    load_avg_1m: float | None = None,
) -> LoadResult:
    kinds = sorted({kind for run in runs for _, kind in run.samples}, key=_kind_order)
    passes = [summarize_pass(runs, phase, kind) for phase in (FIRST, WARM) for kind in kinds]
    return LoadResult(
        target, order, items, len(runs), seconds, tuple(p for p in passes if p is not None),
        memory, cache_hit_rate, load_avg_1m,
    )  # fmt: skip


def _kind_order(kind: str) -> tuple[int, str]:
    return (0 if kind == "retrieve" else 1, kind)


def memory_result(
    samples: Sequence[tuple[float, float]], warmup_s: float, peak_mb: float | None = None
) -> MemoryResult | None:
    """RSS at the first sample at or after ``warmup_s`` (the last one if the run was shorter)
    against the last sample; None without samples."""
    if not samples:
        return None
    warm = next((mb for t, mb in samples if t >= warmup_s), samples[-1][1])
    return MemoryResult(
        samples[0][1], warm, samples[-1][1], peak_mb, warmup_s, seconds=samples[-1][0]
    )


def _number(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def markdown(results: Sequence[LoadResult], header: Sequence[str] = ()) -> str:
    """One latency row per run, pass and call kind; one memory row per run."""
    lines = [*header, "", "| target | order | items | clients | pass | call | requests | req/s "
             "| p50 ms | p90 ms | p99 ms | errors | cache hits |",
             "|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    for r in results:
        hits = "-" if r.cache_hit_rate is None else f"{r.cache_hit_rate:.0%}"
        for p in r.passes:
            lines.append(
                f"| {r.target} | {r.order} | {r.items} | {r.clients} | {p.phase} | {p.kind} | "
                f"{p.requests} | {p.requests_per_s:.1f} | {_number(p.p50_ms, '.1f')} | "
                f"{_number(p.p90_ms, '.1f')} | {_number(p.p99_ms, '.1f')} | "
                f"{sum(p.errors.values())} {p.errors or ''} | {hits} |"
            )
    measured = [(r, r.memory) for r in results if r.memory is not None]
    if measured:
        lines += ["", "| target | order | items | clients | run s | server RSS start MB "
                  "| after warm-up MB | end MB | peak MB | end vs warm-up | flat (±5 %) "
                  "| load avg (1 min) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
        for r, m in measured:
            lines.append(
                f"| {r.target} | {r.order} | {r.items} | {r.clients} | {m.seconds:.0f} | "
                f"{m.start_mb:.0f} | "
                f"{m.warm_mb:.0f} (at {m.warmup_s:.0f} s) | {m.end_mb:.0f} | "
                f"{_number(m.peak_mb)} | {m.change:+.1%} | {'yes' if m.flat else 'NO'} | "
                f"{_number(r.load_avg_1m, '.1f')} |"
            )
    return "\n".join(lines) + "\n"


def code_version() -> str:
    """The commit the served code came from, and whether the library had local changes then:
    the server runs the working tree, not a commit."""
    import subprocess  # noqa: PLC0415

    def git(*words: str) -> str:
        command = ["git", *words]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        return done.stdout.strip() if done.returncode == 0 else "?"

    dirty = git("status", "--porcelain", "--", "prime_model")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        " + uncommitted changes in prime_model/" if dirty and dirty != "?" else ""
    )


def machine() -> str:
    import torch  # noqa: PLC0415

    from prime_model.bench.machine import describe_machine  # noqa: PLC0415

    found = describe_machine(torch.device("cpu"))
    cores = len(os.sched_getaffinity(0))
    return f"CPU: {found.processor}, {cores} cores, {found.instruction_set}"
