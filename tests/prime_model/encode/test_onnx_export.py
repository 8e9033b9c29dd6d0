"""Tracing a sentence-transformer-shaped module to ONNX, and the serving session over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from prime_model.encode.onnx_export import OUTPUT_NAME, export_graph, make_session
from prime_model.errors import OnnxEncoderError

INPUTS = ("input_ids", "attention_mask")


class _Tiny(torch.nn.Module):
    """Shaped like a SentenceTransformer: a features dict in, ``sentence_embedding`` out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(50, 4)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = features["attention_mask"].unsqueeze(-1).float()
        pooled = (self.embed(features["input_ids"]) * mask).sum(1) / mask.sum(1)
        return {OUTPUT_NAME: pooled}


def _example(batch: int, length: int) -> dict[str, np.ndarray]:
    ids = np.arange(batch * length, dtype=np.int64).reshape(batch, length) % 50
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


@pytest.mark.slow  # a real trace: seconds
def test_the_traced_graph_runs_any_batch_and_length(tmp_path: Path) -> None:
    model: Any = _Tiny().eval()
    data = export_graph(model, _example(2, 5), INPUTS, 16, "tiny")
    session = make_session(data, threads=1, allow_spinning=False, path=tmp_path / "g.onnx")
    feeds = _example(3, 7)
    got = session.run([OUTPUT_NAME], feeds)[0]
    with torch.no_grad():
        expected = model({k: torch.from_numpy(v) for k, v in feeds.items()})[OUTPUT_NAME]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def test_a_graph_onnx_runtime_cannot_load_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(OnnxEncoderError, match=r"g\.onnx cannot be loaded by ONNX Runtime"):
        make_session(
            b"not an onnx graph", threads=1, allow_spinning=False, path=tmp_path / "g.onnx"
        )


def test_an_untraceable_module_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("data-dependent control flow\nand a long trace")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(OnnxEncoderError, match=r"cannot trace Y-Encoder 'tiny' \(data-dependent"):
        export_graph(_Tiny(), _example(2, 5), INPUTS, 16, "tiny")  # type: ignore[arg-type]
