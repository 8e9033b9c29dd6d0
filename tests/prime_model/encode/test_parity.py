"""The parity check's verdict: a cosine floor on the probes, a shape, no NaN."""

from __future__ import annotations

import numpy as np

from prime_model.encode.parity import MIN_COSINE, PROBE_BATCHES, cosine_problem

PROBES = ["first probe", "second probe"]
EXPECTED = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)


def test_equal_vectors_pass_and_the_floor_decides() -> None:
    assert cosine_problem(EXPECTED.copy(), EXPECTED, PROBES, MIN_COSINE) is None
    tilted = np.array([[1.0, 0.0], [0.1, 1.0]], dtype=np.float32)  # cosine 0.995 on probe 2
    assert cosine_problem(tilted, EXPECTED, PROBES, 0.95) is None
    problem = cosine_problem(tilted, EXPECTED, PROBES, MIN_COSINE)
    assert problem is not None
    assert problem.startswith("min cosine 0.995") and "'second probe'" in problem


def test_a_wrong_shape_or_nan_is_a_problem() -> None:
    assert cosine_problem(EXPECTED[:1], EXPECTED, PROBES, 0.5) == "shape (1, 2), expected (2, 2)"
    broken = np.array([[np.nan, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert cosine_problem(broken, EXPECTED, PROBES, 0.5) is not None


def test_the_probes_include_an_empty_and_an_over_long_text() -> None:
    texts = [text for batch in PROBE_BATCHES for text in batch]
    assert "" in texts and max(len(t.split()) for t in texts) > 256
