"""The pipeline's benchmark: trained model + presets, config validation, summary and HTML."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from prime_model.bench.latency import BenchmarkConfig, benchmark_latency
from prime_model.errors import ConfigError
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, tiny_model


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backends": ["eager", "tpu"]}, "unknown backends \\['tpu'\\]"),
        ({"backends": []}, "at least 1 item"),
        ({"preset_backends": ["compiled", "gpu"]}, "unknown backends \\['gpu'\\]"),
        ({"batch_sizes": [1, 0]}, "batch sizes must be positive"),
        ({"preset_batch_sizes": [-2]}, "batch sizes must be positive"),
        ({"budget_s": 0}, "greater than 0"),
        ({"presetz": ["default"]}, "Extra inputs are not permitted"),
    ],
)
def test_bad_benchmark_config(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):  # FrozenConfig: typed, like every config
        BenchmarkConfig(**fields)


def test_benchmarks_the_model_and_a_preset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(CONFIG.model_dump()))
    config = BenchmarkConfig(
        backends=("eager", "onnx"),
        preset_backends=("eager",),
        batch_sizes=(1, 16),  # 16 > max_batch_size=8: dropped with a warning, not a failure
        presets=(str(preset),),
        preset_batch_sizes=(2,),
        budget_s=0.2,
        repeats=3,
    )
    evaluation = make_encoded(m=24, n=CONFIG.max_context_length, d=CONFIG.input_dim, k=20)
    with caplog.at_level(logging.WARNING, logger="prime_model.bench.latency"):
        result = benchmark_latency(tiny_model(), evaluation, config)
    assert "exceed max_batch_size=8; measuring [1]" in caplog.text
    assert {(r.backend, r.batch_size) for r in result.trained.rows} == {("eager", 1), ("onnx", 1)}
    assert result.trained.recall is not None and result.trained.recall.rows == 24
    assert list(result.presets) == [str(preset)]
    preset_rows = result.presets[str(preset)].rows
    assert {(r.backend, r.batch_size) for r in preset_rows} == {("eager", 2)}

    summary = result.summary()
    assert set(summary) == {"trained", f"preset {preset}"}
    assert summary["trained"]["eager@1"]["speedup_vs_eager"] == 1.0
    assert summary["trained"]["onnx@1"]["min_cosine"] > 0.9999
    page = result.to_html()
    # one page, no nested frames (the dashboard's fixed-height frame clipped them)
    assert "<iframe" not in page and page.count("<section") == 2 and "the trained model" in page
    assert page.count("<table") == page.count('<div class="wrap"><table') > 0
    assert "overflow-x:auto" in page and "<script" not in page
    assert "| onnx | 1 |" in result.to_markdown()
