"""Random unit-vector conversations: what timing and parity checks run on without data."""

from __future__ import annotations

import numpy as np

from prime_model.runtime.calibration import random_batch
from tests.prime_model.runtime.inference_support import CONFIG

FLAGGED = CONFIG.model_copy(update={"role_embedding": True, "concat_input": True})


def test_rows_are_unit_vectors_and_every_turn_is_real() -> None:
    batch = random_batch(CONFIG, 3, 4, seed=1)
    assert batch.context.shape == (3, 4, CONFIG.input_dim) and batch.context_mask.all()
    np.testing.assert_allclose(np.linalg.norm(batch.context, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch.query, axis=-1), 1.0, rtol=1e-5)
    assert batch.context_roles is None and batch.concat is None


def test_roles_and_concat_only_for_a_model_that_reads_them_without_changing_the_rest() -> None:
    plain, flagged = random_batch(CONFIG, 2, 3, seed=0), random_batch(FLAGGED, 2, 3, seed=0)
    np.testing.assert_array_equal(plain.context, flagged.context)  # drawn after the rest
    assert flagged.context_roles is not None and set(np.unique(flagged.context_roles)) <= {1, 2}
    assert flagged.concat is not None
    np.testing.assert_allclose(np.linalg.norm(flagged.concat, axis=-1), 1.0, rtol=1e-5)
