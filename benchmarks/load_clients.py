"""The load test's clients and the server's memory while they run (loopback, stdlib HTTP).

Each client owns one keep-alive connection and its own list of steps, sent back to back until the
deadline and cycled when exhausted. A step's latencies are filed by pass (``first``: the client's
first time through its list, nothing sent before; ``warm``: every later cycle, whose texts the
server has seen) and by call kind, so the report never mixes a cold pass with a cached one.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from benchmarks.load_requests import PASS_MARK, Step

FIRST: Final = "first"
WARM: Final = "warm"
_SAMPLE_EVERY_S: Final = 0.25
_HEADERS: Final = {"Content-Type": "application/json"}


@dataclass
class Samples:
    """Latencies of the calls that succeeded and counts of those that did not, by reason."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


@dataclass
class ClientRun:
    """One client's samples by (pass, call kind), and how long it spent in each pass."""

    samples: dict[tuple[str, str], Samples] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def at(self, phase: str, kind: str) -> Samples:
        return self.samples.setdefault((phase, kind), Samples())


def _connect(url: urllib.parse.SplitResult) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)


def _client(
    url: urllib.parse.SplitResult, steps: Sequence[Step], stop: float, out: ClientRun
) -> None:
    """One keep-alive connection sending its steps in order, cycling, until ``stop``."""
    connection = _connect(url)
    started = time.perf_counter()
    i = 0
    phase = FIRST
    while time.perf_counter() < stop:
        if i == len(steps) and phase == FIRST:
            now = time.perf_counter()
            out.seconds[FIRST], started, phase = now - started, now, WARM
        for call in steps[i % len(steps)]:
            samples = out.at(phase, call.kind)
            path, body = _for_pass(call.path, call.body, i // len(steps))
            start = time.perf_counter()
            try:
                connection.request("POST", url.path.rstrip("/") + path, body, _HEADERS)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                samples.error(type(exc).__name__)
                connection.close()
                connection = _connect(url)
                break  # the rest of the turn depends on this call
            elapsed = (time.perf_counter() - start) * 1000
            if response.status >= 300 or b'"success":false' in payload:
                samples.error(f"HTTP {response.status}")
                break
            samples.latencies_ms.append(elapsed)
        i += 1
    out.seconds[phase] = time.perf_counter() - started
    connection.close()


def _for_pass(path: str, body: bytes, cycle: int) -> tuple[str, bytes]:
    """A conversation API call's ids made unique per pass: a new cycle is a new conversation."""
    if PASS_MARK not in path and PASS_MARK.encode() not in body:
        return path, body
    mark = f".p{cycle}"
    return path.replace(PASS_MARK, mark), body.replace(PASS_MARK.encode(), mark.encode())


def run_clients(url: str, plans: Sequence[Sequence[Step]], seconds: float) -> list[ClientRun]:
    """One thread per plan (its client's steps) for ``seconds``; ``url`` is the server's base
    (each call names its path) or a base plus a path prefix."""
    if not plans or any(not plan for plan in plans):
        raise ValueError("every client needs at least one step")
    parsed = urllib.parse.urlsplit(url)
    stop = time.perf_counter() + seconds
    runs = [ClientRun() for _ in plans]
    threads = [
        threading.Thread(target=_client, args=(parsed, plan, stop, run))
        for plan, run in zip(plans, runs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


# -------------------------------------------------------------------------------------- memory


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


class MemorySampler(threading.Thread):
    """The server's RSS every quarter second while the clients run, with the time since the
    start: flat or growing after the warm-up."""

    def __init__(self, pid: int | None, every_s: float = _SAMPLE_EVERY_S) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while self.pid is not None and not self._done.wait(self.every_s):
            try:
                current = rss_mb(self.pid)[0]
            except OSError:  # the server is gone: the clients count the errors
                return
            self.samples.append((time.perf_counter() - start, current))

    def stop(self) -> None:
        self._done.set()
        self.join()
