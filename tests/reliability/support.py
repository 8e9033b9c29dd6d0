"""What the bad-input tables share: the tiny predictor, its export, valid inputs and turn rows."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch

from prime_model import EmbeddingPredictor
from prime_model.export.export import export_verified
from tests.prime_model.runtime.inference_support import CONFIG

Trigger = Callable[[], object]
Inputs = tuple[Any, Any, Any]  # context, query, context_mask as handed to the predictor
Rows = list[dict[str, Any]]


def tiny_model(seed: int = 0) -> EmbeddingPredictor:
    torch.manual_seed(seed)
    return EmbeddingPredictor(CONFIG).eval()


@cache
def onnx_bytes() -> bytes:
    """The fp32 export of ``tiny_model()``, made once (a few seconds)."""
    return export_verified(tiny_model()).data


def valid_inputs() -> Inputs:
    rng = np.random.default_rng(0)
    context = rng.standard_normal((2, 3, 16)).astype(np.float32)
    query = rng.standard_normal((2, 16)).astype(np.float32)
    return context, query, np.ones((2, 3), dtype=np.bool_)


def valid_rows() -> Rows:
    """12 valid turns in 4 conversations (questions and answers interleaved in the history)."""
    rows: Rows = []
    for c in range(4):
        history: list[str] = []
        for t in range(3):
            query, answer = f"question {t} of conversation {c}?", f"answer {t} of {c}."
            rows.append(
                {
                    "conversation_id": f"c{c}",
                    "turn": t,
                    "history": list(history),
                    "query": query,
                    "target": answer,
                    "target_id": f"p{c}-{t}",
                }
            )
            history += [query, answer]
    return rows
