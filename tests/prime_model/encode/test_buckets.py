"""Token-budget batches: every text once, bounds kept, order restored, long texts alone."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from prime_model.encode.buckets import pad_rows, plan_batches, run_batches
from prime_model.errors import ConfigError, OnnxEncoderError

LENGTHS = [5, 120, 3, 64, 64, 7, 250, 1, 33, 2, 90, 12]


@pytest.mark.parametrize(("max_tokens", "max_texts"), [(256, 4), (1024, 128), (64, 2), (1, 1)])
def test_every_text_once_and_bounds_respected(max_tokens: int, max_texts: int) -> None:
    batches = plan_batches(LENGTHS, max_tokens=max_tokens, max_texts=max_texts)
    assert sorted(i for batch in batches for i in batch) == list(range(len(LENGTHS)))
    for batch in batches:
        assert 1 <= len(batch) <= max_texts
        padded = max(LENGTHS[i] for i in batch) * len(batch)
        assert padded <= max_tokens or len(batch) == 1  # only a lone text may exceed it


def test_sorted_longest_first_so_similar_lengths_share_a_batch() -> None:
    batches = plan_batches(LENGTHS, max_tokens=256, max_texts=128)
    flat = [LENGTHS[i] for batch in batches for i in batch]
    assert flat == sorted(LENGTHS, reverse=True)
    assert [LENGTHS[i] for i in batches[0]] == [250]  # 2 x 250 > 256: alone
    assert [LENGTHS[i] for i in batches[1]] == [120, 90]  # a third would pad to 360


def test_an_over_long_text_goes_alone() -> None:
    batches = plan_batches([10, 5000, 10, 10], max_tokens=100, max_texts=8)
    assert [1] in batches
    assert sorted(batches[1]) == [0, 2, 3]


def test_the_text_cap_splits_short_texts() -> None:
    batches = plan_batches([3] * 10, max_tokens=10_000, max_texts=4)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0] == [0, 1, 2, 3]  # ties keep their order


def test_nothing_in_nothing_out() -> None:
    assert plan_batches([], max_tokens=10, max_texts=2) == []
    assert run_batches([], lambda batch: np.zeros((0, 3), np.float32), count=0, dim=3).shape == (
        0,
        3,
    )


def test_bad_bounds_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"max_tokens=0, max_texts=4; expected both at least 1"):
        plan_batches([1], max_tokens=0, max_texts=4)
    with pytest.raises(ConfigError, match=r"max_texts=0"):
        plan_batches([1], max_tokens=8, max_texts=0)
    with pytest.raises(ConfigError, match=r"token counts must be >= 0, got -1"):
        plan_batches([3, -1], max_tokens=8, max_texts=2)


def _by_index(batch: list[int]) -> npt.NDArray[np.float32]:
    return np.array([[i, i * 10] for i in batch], dtype=np.float32)


def test_run_batches_restores_the_input_order() -> None:
    batches = plan_batches(LENGTHS, max_tokens=128, max_texts=3)
    assert batches[0] != [0]  # the plan really reorders
    out = run_batches(batches, _by_index, count=len(LENGTHS), dim=2)
    expected = np.array([[i, i * 10] for i in range(len(LENGTHS))], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)


def test_run_batches_refuses_a_wrong_shape_or_a_missing_text() -> None:
    with pytest.raises(OnnxEncoderError, match=r"a batch of 2 gave shape \(2, 3\); expected"):
        run_batches([[0, 1]], lambda b: np.zeros((len(b), 3), np.float32), count=2, dim=2)
    with pytest.raises(OnnxEncoderError, match=r"hold 1 texts, expected 2"):
        run_batches([[0]], _by_index, count=2, dim=2)


def test_pad_rows_pads_each_input_with_its_fill_on_the_tokenizer_side() -> None:
    rows = [{"ids": [5, 6, 7], "mask": [1, 1, 1]}, {"ids": [8], "mask": [1]}]
    right = pad_rows(rows, ["ids", "mask"], {"ids": 0, "mask": 0})
    np.testing.assert_array_equal(right["ids"], [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(right["mask"], [[1, 1, 1], [1, 0, 0]])
    assert right["ids"].dtype == np.int64
    left = pad_rows(rows, ["ids"], {"ids": 9}, left=True)
    np.testing.assert_array_equal(left["ids"], [[5, 6, 7], [9, 9, 8]])
