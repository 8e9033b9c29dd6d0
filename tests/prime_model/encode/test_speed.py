"""Throughput rows, ratios and the report the encoder-speed benchmark writes."""

from __future__ import annotations

import pytest

from prime_model.encode import speed
from prime_model.encode.speed import Throughput, cpu_model, measure, ratios, to_markdown
from prime_model.errors import ConfigError


def test_measure_warms_up_then_times_one_call_over_all_texts() -> None:
    ticks = iter([10.0, 14.0])
    calls: list[int] = []
    texts = [str(i) for i in range(100)]
    row = measure("fake", lambda batch: calls.append(len(batch)), texts, clock=lambda: next(ticks))
    assert calls == [speed.WARMUP_TEXTS, 100]
    assert (row.engine, row.texts, row.seconds, row.texts_per_s) == ("fake", 100, 4.0, 25.0)


def test_ratios_and_markdown_against_the_baseline() -> None:
    rows = [
        Throughput(engine="st", texts=1000, seconds=10.0),
        Throughput(engine="onnx", texts=1000, seconds=4.0, note="2 threads"),
    ]
    assert ratios(rows, "st") == {"st": 1.0, "onnx": 2.5}
    table = to_markdown(rows, "st", "Encoding 1,000 texts")
    assert table.splitlines()[0] == "Encoding 1,000 texts"
    assert "| onnx | 1,000 | 4.0 | 250 | 2.50x | 2 threads |" in table
    with pytest.raises(ConfigError, match=r"no row for baseline 'torch'; expected one of"):
        ratios(rows, "torch")


def test_a_row_needs_a_positive_time() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Throughput(engine="x", texts=1, seconds=0.0)


def test_cpu_model_names_the_processor() -> None:
    name = cpu_model()
    assert isinstance(name, str) and name and "\n" not in name
