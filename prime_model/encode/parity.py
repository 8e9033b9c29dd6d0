"""Whether an ONNX Y-Encoder reproduces the torch one: fixed probe texts, a cosine floor.

The probes hold a mixed-length batch (padding must not leak into the pooling) and, alone so
that it does not pad the others to 256 tokens (4x the work), a text past MiniLM's 256-token cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_COSINE", "PROBE_BATCHES", "cosine_problem"]

MIN_COSINE: Final = 0.9999
PROBE_BATCHES: Final = (
    (
        "How tall is the Eiffel tower?",
        "",
        "Zürich, 東京 and São Paulo: naïve café ☕ — emoji 🚀 too",
    ),
    (" ".join(f"Koechlin{i} designed tower{i} in {1880 + i}." for i in range(120)),),
)


def cosine_problem(
    got: npt.NDArray[np.float32],
    expected: npt.NDArray[np.float32],
    probes: Sequence[str],
    floor: float,
) -> str | None:
    """What is wrong with ``got`` against ``expected`` (row per probe); None: nothing."""
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    cosine = np.sum(got * expected, axis=1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1) + 1e-12
    )
    worst = int(np.argmin(cosine))
    if not np.isfinite(cosine).all() or cosine[worst] < floor:
        return (
            f"min cosine {float(cosine[worst]):.6f} on probe {probes[worst][:40]!r} "
            f"(required {floor})"
        )
    return None
