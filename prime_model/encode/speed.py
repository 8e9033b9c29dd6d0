"""Encoding throughput, measured the same way for every engine (benchmarks/encoder_speed.py).

Each engine gets the same texts, a short warm-up outside the clock (first-call allocations), and
one timed call over all of them; the result is texts per second and the ratio to a baseline.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from prime_model.errors import ConfigError

__all__ = ["Throughput", "cpu_model", "measure", "ratios", "to_markdown"]

WARMUP_TEXTS: Final = 32


class Throughput(BaseModel):
    """One engine's run over the benchmark's texts."""

    model_config = ConfigDict(frozen=True)

    engine: str
    texts: int = Field(ge=0)
    seconds: float = Field(gt=0)
    note: str = ""

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds


def measure(
    engine: str,
    encode: Callable[[list[str]], object],
    texts: Sequence[str],
    clock: Callable[[], float] = time.perf_counter,
) -> Throughput:
    """Texts per second of ``encode`` over ``texts``, after a warm-up on a few of them."""
    texts = list(texts)
    encode(texts[:WARMUP_TEXTS])
    started = clock()
    encode(texts)
    return Throughput(engine=engine, texts=len(texts), seconds=clock() - started)


def ratios(rows: Sequence[Throughput], baseline: str) -> dict[str, float]:
    """Each engine's texts/s over the ``baseline`` engine's."""
    base = next((row for row in rows if row.engine == baseline), None)
    if base is None:
        raise ConfigError(
            f"no row for baseline {baseline!r}; expected one of {[r.engine for r in rows]}"
        )
    return {row.engine: row.texts_per_s / base.texts_per_s for row in rows}


def cpu_model() -> str:
    """The CPU's model name as lscpu shows it (from /proc/cpuinfo), else the platform's."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        info = ""
    for line in info.splitlines():
        if line.lower().startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def to_markdown(rows: Sequence[Throughput], baseline: str, header: str) -> str:
    """A table of texts/s and the ratio to ``baseline``, under ``header``."""
    relative = ratios(rows, baseline)
    lines = [header, "", "| engine | texts | seconds | texts/s | vs " + baseline + " | note |"]
    lines.append("|---|---:|---:|---:|---:|---|")
    for row in rows:
        lines.append(
            f"| {row.engine} | {row.texts:,} | {row.seconds:.1f} | {row.texts_per_s:.0f} | "
            f"{relative[row.engine]:.2f}x | {row.note} |"
        )
    return "\n".join(lines) + "\n"
