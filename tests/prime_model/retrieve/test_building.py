"""index_for: the encoder comes from the engine chooser, behind the cache and progress lines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from prime_model.encode import progress
from prime_model.encode.cache import CACHE_ENV
from prime_model.encode.encoders import EncoderConfig
from prime_model.retrieve import building
from prime_model.retrieve.corpus import CorpusSource
from prime_model.retrieve.index import IndexConfig
from tests.conftest import CountingEncoder


class Loaded(CountingEncoder):
    identity = "counting-stub|dim=8"


def test_index_for_loads_the_configured_engine_with_progress_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    asked: list[EncoderConfig] = []
    encoder = Loaded()

    def load(config: EncoderConfig, **options: Any) -> Loaded:
        asked.append(config)
        return encoder

    monkeypatch.setattr(building, "load_encoder", load)
    monkeypatch.setattr(progress, "is_terminal", lambda: False)
    monkeypatch.setattr(progress.ProgressEncoder.__init__, "__defaults__", (2,))
    targets = [f"answer {i}" for i in range(5)]
    turns = pd.DataFrame({"target": targets + targets[:2], "target_id": [None] * 7})
    config = EncoderConfig(engine="onnx", precision="int8")
    with caplog.at_level(logging.INFO, logger=progress.__name__):
        index = building.index_for(turns, config, CorpusSource(), IndexConfig(kind="exact"))
    assert asked == [config]
    assert len(index) == 5
    assert sorted(t for call in encoder.calls for t in call) == sorted(targets)  # each once
    assert "encoding: 2 of 5 texts" in caplog.text  # off a terminal: a line per chunk
