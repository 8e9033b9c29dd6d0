"""The one chooser: engine and precision from the config, the torch fallback, int8's refusal."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from prime_model.encode import engine
from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.engine import load_encoder
from prime_model.errors import ConfigError, OnnxEncoderError


class FakeTorch:
    name = "fake-minilm"

    def __init__(self, config: EncoderConfig) -> None:
        self.config = config


class FakeOnnx:
    fail: str | None = None
    made: list[dict[str, Any]] = []  # noqa: RUF012 - a record shared by the test

    def __init__(self, reference: FakeTorch, **options: Any) -> None:
        if self.fail is not None:
            raise OnnxEncoderError(self.fail)
        self.reference, self.options = reference, options
        FakeOnnx.made.append(options)


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SentenceTransformerEncoder", FakeTorch)
    monkeypatch.setattr(engine, "OnnxTextEncoder", FakeOnnx)
    FakeOnnx.fail, FakeOnnx.made = None, []


def test_the_library_default_is_torch_fp32() -> None:
    config = EncoderConfig()
    assert (config.engine, config.precision, config.max_batch_tokens) == ("torch", "fp32", 1024)
    loaded: Any = load_encoder(config)
    assert isinstance(loaded, FakeTorch)
    assert FakeOnnx.made == []


def test_onnx_gets_the_config_threads_and_cache(tmp_path: Path) -> None:
    config = EncoderConfig(engine="onnx", precision="int8", max_batch_tokens=512)
    loaded: Any = load_encoder(config, threads="adaptive", cache_dir=tmp_path)
    assert isinstance(loaded, FakeOnnx)
    assert loaded.reference.config is config
    assert loaded.options == {
        "cache_dir": tmp_path,
        "threads": "adaptive",
        "precision": "int8",
        "max_batch_tokens": 512,
    }
    load_encoder(EncoderConfig(engine="onnx"))
    assert FakeOnnx.made[-1]["threads"] is None  # every usable core for batch work


def test_an_fp32_onnx_failure_falls_back_to_torch_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    FakeOnnx.fail = "torch.onnx.export cannot trace it"
    with caplog.at_level(logging.WARNING, logger=engine.__name__):
        loaded: Any = load_encoder(EncoderConfig(engine="onnx"))
    assert isinstance(loaded, FakeTorch)
    assert (
        "Y-Encoder fake-minilm on torch instead of ONNX: torch.onnx.export cannot trace it"
        in caplog.text
    )


def test_an_int8_failure_raises() -> None:
    FakeOnnx.fail = "cannot quantise"
    with pytest.raises(OnnxEncoderError, match="cannot quantise"):
        load_encoder(EncoderConfig(engine="onnx", precision="int8"))


def test_int8_needs_the_onnx_engine() -> None:
    with pytest.raises(ConfigError, match=r"precision 'int8' needs engine 'onnx', got engine"):
        EncoderConfig(precision="int8")
    with pytest.raises(ConfigError, match="engine"):
        EncoderConfig(engine="tensorrt")
    with pytest.raises(ConfigError, match="max_batch_tokens"):
        EncoderConfig(engine="onnx", max_batch_tokens=0)


def test_the_config_reads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "encoder.yaml"
    path.write_text("engine: onnx\nprecision: int8\nmax_batch_tokens: 2048\n", encoding="utf-8")
    config = EncoderConfig.from_yaml(path)
    assert (config.engine, config.precision, config.max_batch_tokens) == ("onnx", "int8", 2048)
