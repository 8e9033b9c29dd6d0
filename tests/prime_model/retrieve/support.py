"""A tiny retriever: the conftest's tiny predictor (16-d in, 12-d out), a stub Y-Encoder and an
index of 12-d unit vectors, so the service and the app are tested in milliseconds."""

from __future__ import annotations

import numpy as np
import torch

from prime_model.encode.encoders import YEncoder
from prime_model.http.service import Retriever
from prime_model.model import EmbeddingPredictor
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.runtime.inference import EagerPredictor
from tests.conftest import TINY_CONFIG, CountingEncoder

TINY = TINY_CONFIG


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def tiny_index(
    n: int = 50, kind: str = "exact", encoder_name: str = "counting-stub"
) -> RetrievalIndex:
    return RetrievalIndex.build(
        [f"doc-{i}" for i in range(n)],
        [f"text of document {i}" for i in range(n)],
        unit_rows(n, TINY.output_dim),
        encoder_name=encoder_name,
        config=IndexConfig(kind=kind),
    )


def tiny_retriever(encoder: YEncoder | None = None) -> Retriever:
    torch.manual_seed(0)
    model = EmbeddingPredictor(TINY).eval()
    return Retriever(
        EagerPredictor(model),
        encoder if encoder is not None else CountingEncoder(dim=TINY.input_dim),
        tiny_index(),
        model_version="tiny:1",
    )
