from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import torch

from prime_model import DataValidationError
from prime_model.encode.texts import TextTable, fitted_concat_texts, joined_texts
from tests.conftest import CountingEncoder


def test_each_text_is_encoded_once_and_histories_pad_after_the_turns() -> None:
    encoder = CountingEncoder()
    table = TextTable(["a", "b", "a", "c", "b"], encoder)
    assert encoder.calls == [["a", "b", "c"]]
    assert table.vectors.shape == (4, 8)  # three texts and the zero padding row
    assert torch.equal(table.gather(["c", "a"]), table.vectors[[2, 0]])
    context, mask = table.gather_histories([["a", "b"], [], ["c"]])
    assert context.shape == (3, 2, 8)
    assert mask.tolist() == [[True, True], [False, False], [True, False]]
    assert torch.equal(context[2, 0], table.vectors[2])
    assert not context[1].any() and not context[2, 1].any()


def test_bad_encoder_output_is_refused() -> None:
    class NanEncoder(CountingEncoder):
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return np.full((len(texts), self.dim), np.nan, dtype=np.float32)

    with pytest.raises(DataValidationError, match=r"expected .* finite values"):
        TextTable(["a"], NanEncoder())


def test_concat_texts_join_history_and_query_and_fit_the_encoder() -> None:
    kept = pd.DataFrame({"history": [[], ["h0", "h1"]], "query": ["q0", "q1"]})
    assert joined_texts(kept) == ["q0", "h0 h1 q1"]
    assert fitted_concat_texts(kept, CountingEncoder()) == ["q0", "h0 h1 q1"]  # no fit_to_limit

    class Fitting(CountingEncoder):
        def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
            return [t[-2:] for t in texts]

    assert fitted_concat_texts(kept, Fitting()) == ["q0", "q1"]
