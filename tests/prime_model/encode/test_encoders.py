from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prime_model import ConfigError, PredictorConfig
from prime_model.encode.encoders import (
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
        check_encoder_fits(
            minilm, PredictorConfig(input_dim=384, output_dim=256, hidden_dim=64, residual=False)
        )


def test_bad_encoder_config() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        EncoderConfig(batch_size=0)


MINILM_TOKENS = 256 - 2  # max_seq_length minus [CLS] and [SEP]


def _token_count(encoder: SentenceTransformerEncoder, text: str) -> int:
    return len(encoder._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def test_fit_to_limit_keeps_the_end_of_long_texts(minilm: SentenceTransformerEncoder) -> None:
    limit = MINILM_TOKENS
    history = " ".join(f"Koechlin{i} designed tower{i}." for i in range(200))
    long_text = f"{history} And how tall is it, antennas included?"
    short = ["How tall is it?", "", "  spaces  kept  "]
    fitted = minilm.fit_to_limit([*short, long_text])
    assert fitted[:3] == short  # within the limit: unchanged
    tail = fitted[3]
    assert long_text.endswith(tail)
    assert tail.endswith("And how tall is it, antennas included?")  # the query survives
    assert long_text[-len(tail) - 1] == " "  # cut where a word starts
    assert limit - 10 <= _token_count(minilm, tail) <= limit
    assert minilm.fit_to_limit([tail]) == [tail]
    # what the encoder reads: the fitted text, while the untouched one loses its query
    vectors = minilm.encode([tail, long_text, "And how tall is it, antennas included?"])
    assert vectors[0] @ vectors[2] > vectors[1] @ vectors[2]


def test_fit_to_limit_without_spaces_cuts_between_tokens(
    minilm: SentenceTransformerEncoder,
) -> None:
    text = "東京都庁舎の高さは何メートルですか" * 30  # one token per character, no spaces
    (tail,) = minilm.fit_to_limit([text])
    assert text.endswith(tail)
    assert _token_count(minilm, tail) == MINILM_TOKENS


def test_fit_to_limit_without_a_limit(
    minilm: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(minilm._model, "max_seq_length", None)
    text = "word " * 1000
    assert minilm.fit_to_limit([text]) == [text]
