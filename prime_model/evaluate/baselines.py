"""The baselines a predictor must beat, none of which needs a predictor.

``query-only`` retrieves with the query's own embedding, ``concat-text`` with the Y-Encoder's
embedding of history + query as one text, ``mean-of-turns`` with the normalised mean of the turn
embeddings (see :mod:`prime_model.evaluate.evaluation`, which scores them next to the model).
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
from prime_model.errors import DataValidationError

CONCAT_SEPARATOR: Final = " "  # history turns and query, oldest first, as one text


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
    kept = truncate_histories(turns, max_context_length)
    return [
        CONCAT_SEPARATOR.join([*history, query])
        for history, query in zip(kept["history"], kept["query"], strict=True)
    ]


def concat_text(turns: pd.DataFrame, encoder: YEncoder, max_context_length: int) -> Tensor:
    """Baseline: the Y-Encoder's embedding of history + query as one text (M×D).

    An encoder with ``fit_to_limit`` (:class:`SentenceTransformerEncoder`) first drops the oldest
    tokens of texts over its token limit, so the query is never the part that is cut.
    """
    texts = concat_texts(turns, max_context_length)
    fit = getattr(encoder, "fit_to_limit", None)
    if callable(fit):
        texts = list(fit(texts))
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique)
    if vectors.shape != (len(unique), encoder.dim):
        raise DataValidationError(
            f"Y-Encoder {encoder.name!r} returned shape {vectors.shape} for {len(unique)} "
            f"texts; expected ({len(unique)}, {encoder.dim})"
        )
    row = {text: i for i, text in enumerate(unique)}
    return torch.from_numpy(vectors).float()[[row[t] for t in texts]]
