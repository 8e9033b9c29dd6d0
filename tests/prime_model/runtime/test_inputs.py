"""Inputs in, one validated Batch out: the model's rules for numpy and torch alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from prime_model import PredictorError
from prime_model.runtime.calibration import random_batch
from prime_model.runtime.inputs import Batch, optional_inputs, prepare_inputs, zero_batch
from tests.prime_model.runtime.inference_support import CONFIG, eager, random_inputs, tiny_model

ROLES_CONCAT = CONFIG.model_copy(update={"role_embedding": True, "concat_input": True})


def test_prepare_inputs_converts_numpy_and_torch_to_float32() -> None:
    context, query, mask = random_inputs(2, 3)
    from_numpy = prepare_inputs(CONFIG, context.astype(np.float64), query, mask)
    from_torch = prepare_inputs(
        CONFIG,
        torch.from_numpy(context).bfloat16().float(),
        torch.from_numpy(query).to(torch.bfloat16),
        torch.from_numpy(mask),
    )
    assert from_numpy.context.dtype == np.float32 and from_numpy.context.flags.c_contiguous
    assert from_torch.query.dtype == np.float32
    np.testing.assert_array_equal(from_numpy.context_mask, mask)
    assert prepare_inputs(CONFIG, context, query).context_mask.all()


def _bad(**changes: Any) -> tuple[Any, Any, Any]:
    context, query, mask = random_inputs(2, 3)
    values: dict[str, Any] = {"context": context, "query": query, "mask": mask}
    values.update(changes)
    return values["context"], values["query"], values["mask"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (_bad(context=[[0.0]]), "context must be a numpy array or a torch.Tensor, got list"),
        (_bad(context=np.zeros((2, 16), np.float32)), "context must have 3 dims"),
        (_bad(query=np.zeros((2, 3, 16), np.float32)), "query must have 2 dims"),
        (_bad(context=np.zeros((0, 3, 16), np.float32)), "empty batch"),
        (_bad(query=np.zeros((3, 16), np.float32)), "batch sizes differ"),
        (_bad(query=np.zeros((2, 8), np.float32)), "expected input_dim=16"),
        (_bad(context=np.zeros((2, 5, 16), np.float32)), "more than max_context_length=4"),
        (_bad(context=np.zeros((2, 3, 16), np.int64)), "floating-point"),
        (_bad(query=np.full((2, 16), np.nan, np.float32)), "NaN or infinite"),
        (_bad(context=np.full((2, 3, 16), 1e300)), "context (float64) has values beyond float32's"),
        (_bad(query=np.full((2, 16), 3e38, np.float32)), "values of magnitude up to 3.000e"),
        (_bad(mask=np.ones((2, 3), np.int64)), "context_mask must be bool"),
        (_bad(mask=np.ones((2, 2), np.bool_)), "context_mask must have shape (B, N) = (2, 3)"),
    ],
)
def test_prepare_inputs_rejects_bad_inputs_with_typed_errors(
    inputs: tuple[Any, Any, Any], message: str
) -> None:
    with pytest.raises(PredictorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_inputs(CONFIG, *inputs)


def test_padding_rows_and_turns_leaves_real_rows_unchanged() -> None:
    model = tiny_model()
    context, query, mask = random_inputs(3, 2)
    padded = Batch(context, query, mask).padded(8, 4)
    assert padded.context.shape == (8, 4, 16) and padded.query.shape == (8, 16)
    assert not padded.context_mask[3:].any() and not padded.context_mask[:, :2].any()
    np.testing.assert_array_equal(padded.context[:3, 2:], context)
    got = eager(model, padded.context, padded.query, padded.context_mask)[:3]
    np.testing.assert_allclose(got, eager(model, context, query, mask), atol=1e-5)


def test_zero_batch_holds_every_input_the_model_reads() -> None:
    plain = zero_batch(CONFIG, 2, 3)
    assert plain.context_roles is None and plain.concat is None
    full = zero_batch(ROLES_CONCAT, 2, 3)
    assert full.context_roles is not None and full.context_roles.shape == (2, 3)
    assert full.concat is not None and full.concat.shape == (2, CONFIG.input_dim)


def test_optional_inputs_feed_exactly_what_the_config_reads() -> None:
    batch = random_batch(ROLES_CONCAT, 2, 3, seed=0)
    assert optional_inputs(CONFIG, batch) == (None, None)  # a plain model reads neither
    no_roles = Batch(batch.context, batch.query, batch.context_mask, None, batch.concat)
    roles, concat = optional_inputs(ROLES_CONCAT, no_roles)
    assert roles is not None and not roles.any() and concat is batch.concat  # roles unknown
    with pytest.raises(PredictorError, match="this model reads concat"):
        optional_inputs(ROLES_CONCAT, Batch(batch.context, batch.query, batch.context_mask))
