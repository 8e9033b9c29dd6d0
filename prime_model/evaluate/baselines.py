"""The baselines a predictor must beat, none of which needs a predictor.

``query-only`` retrieves with the query's own embedding, ``concat-text`` with the Y-Encoder's
embedding of history + query as one text, ``query+concat`` with normalize(query + 0.5 ·
concat-text) and ``mean-of-turns`` with the normalised mean of the turn embeddings (see
:mod:`prime_model.evaluate.evaluation`, which scores them next to the model).
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor

from prime_model.data.schema import truncate_histories
from prime_model.encode.encoders import YEncoder
from prime_model.encode.encoding import EncodedTurns
from prime_model.encode.texts import fitted_concat_texts, joined_texts
from prime_model.errors import DataValidationError

MIX_WEIGHT: Final = 0.5  # query + 0.5 · concat-text: the mix a predictor must beat


def query_only(encoded: EncodedTurns) -> Tensor:
    """Baseline: retrieve with the query's own embedding, as if there were no conversation."""
    return encoded.query.float()


def mean_of_turns(encoded: EncodedTurns) -> Tensor:
    """Baseline: the L2-normalised mean of the real context turns' embeddings and the query's."""
    mask = encoded.context_mask.unsqueeze(-1).float()  # (M, N, 1)
    total = (encoded.context.float() * mask).sum(1) + encoded.query.float()  # (M, D)
    return F.normalize(total / (mask.sum(1) + 1), dim=-1)


def concat_texts(turns: pd.DataFrame, max_context_length: int) -> list[str]:
    """History (its ``max_context_length`` most recent turns) and query joined by a space."""
    return joined_texts(truncate_histories(turns, max_context_length))


def concat_text(turns: pd.DataFrame, encoder: YEncoder, max_context_length: int) -> Tensor:
    """Baseline: the Y-Encoder's embedding of history + query as one text (M×D).

    An encoder with ``fit_to_limit`` (:class:`SentenceTransformerEncoder`) first drops the oldest
    tokens of texts over its token limit, so the query is never the part that is cut.
    """
    texts = fitted_concat_texts(truncate_histories(turns, max_context_length), encoder)
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique)
    if vectors.shape != (len(unique), encoder.dim):
        raise DataValidationError(
            f"Y-Encoder {encoder.name!r} returned shape {vectors.shape} for {len(unique)} "
            f"texts; expected ({len(unique)}, {encoder.dim})"
        )
    row = {text: i for i, text in enumerate(unique)}
    return torch.from_numpy(vectors).float()[[row[t] for t in texts]]


def query_concat_mix(query: Tensor, concat: Tensor, weight: float = MIX_WEIGHT) -> Tensor:
    """Baseline: normalize(query + weight · concat-text), free and strong on long histories."""
    return F.normalize(query.float() + weight * concat.float(), dim=-1)
