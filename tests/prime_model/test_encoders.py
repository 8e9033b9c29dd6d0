from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prime_model import ConfigError, PredictorConfig
from prime_model.encoders import (
    EncoderConfig,
    SentenceTransformerEncoder,
    YEncoder,
    check_encoder_fits,
)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(EncoderConfig(device="cpu"))


def test_default_is_the_bundled_minilm(minilm: SentenceTransformerEncoder) -> None:
    assert isinstance(minilm, YEncoder)
    assert (minilm.name, minilm.dim) == ("all-MiniLM-L6-v2", 384)
    vectors = minilm.encode(["How tall is it?", "The tower is 312 m tall.", "Pasta recipes"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]  # a real sentence encoder, not noise
    assert minilm.encode([]).shape == (0, 384)


def test_encoder_is_frozen(minilm: SentenceTransformerEncoder) -> None:
    model = minilm._model
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_max_seq_length_is_applied() -> None:
    encoder = SentenceTransformerEncoder(EncoderConfig(device="cpu", max_seq_length=16))
    assert encoder._model.max_seq_length == 16


def test_unknown_model_is_a_config_error_without_download(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot load Y-Encoder .*allow_download"):
        SentenceTransformerEncoder(EncoderConfig(model=str(tmp_path / "no-such-model")))


def test_dims_must_match_the_predictor(minilm: SentenceTransformerEncoder) -> None:
    check_encoder_fits(minilm, PredictorConfig(input_dim=384, output_dim=384, hidden_dim=64))
    with pytest.raises(
        ConfigError, match=r"produces 384-d embeddings .* input_dim=1024, output_dim=1024"
    ):
        check_encoder_fits(minilm, PredictorConfig())
    with pytest.raises(ConfigError, match="has output_dim=256; both"):
        check_encoder_fits(minilm, PredictorConfig(input_dim=384, output_dim=256, hidden_dim=64))


def test_bad_encoder_config() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        EncoderConfig(batch_size=0)
