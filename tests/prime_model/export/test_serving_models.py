"""The exports a checkpoint ships for serving: fp32 always, int8 only when it holds."""

from __future__ import annotations

import pytest

from prime_model import load_checkpoint, save_checkpoint
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.encode.encoding import EncodedTurns
from prime_model.errors import ConfigError
from prime_model.export import quantize
from prime_model.export.int8 import QuantizationOptions, candidate_options
from prime_model.export.quantize import MIN_COSINE, AcceptanceRule
from prime_model.export.serving_models import (
    ExportConfig,
    ServingModels,
    export_serving_models,
)
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, tiny_model

ANYTHING_GOES = AcceptanceRule(tolerance=1.0, min_cosine=-1.0, min_speedup=0.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> PredictorCheckpoint:
    return load_checkpoint(save_checkpoint(tiny_model(), tmp_path_factory.mktemp("ckpt") / "m"))


@pytest.fixture(scope="module")
def evaluation() -> EncodedTurns:
    return make_encoded(m=40, n=CONFIG.max_context_length, d=CONFIG.input_dim, k=30)


@pytest.fixture(scope="module")
def models(checkpoint: PredictorCheckpoint, evaluation: EncodedTurns) -> ServingModels:
    return export_serving_models(checkpoint, evaluation, ExportConfig())


def test_exports_fp32_and_keeps_int8_only_when_accepted(
    models: ServingModels, checkpoint: PredictorCheckpoint
) -> None:
    assert models.fp32.metadata.kind == "fp32"
    assert models.fp32.metadata.weights_sha256 == checkpoint.metadata.weights_sha256
    assert models.quantization is not None
    assert models.quantization.accepted == (models.int8 is not None)
    assert len(models.quantization.candidates) == len(candidate_options())  # all, on this CPU
    if models.int8 is not None:  # accepted here: it met the rule here
        assert models.int8.metadata.kind == "int8"
        assert models.int8.weight_bytes < models.fp32.weight_bytes
        assert models.quantization.parity_vs_fp32.min_cosine >= MIN_COSINE
    else:
        assert models.quantization.reason


def test_int8_off_and_rejected_int8_are_not_kept(
    checkpoint: PredictorCheckpoint, evaluation: EncodedTurns, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = export_serving_models(checkpoint, evaluation, ExportConfig(int8=False))
    assert off.int8 is None and off.quantization is None

    forced = ExportConfig(quantization=QuantizationOptions(), acceptance=ANYTHING_GOES)
    one = export_serving_models(checkpoint, evaluation, forced)
    assert one.int8 is not None and one.quantization is not None
    assert [c.options for c in one.quantization.candidates] == [QuantizationOptions()]

    recalls = iter([0.9, 0.5])  # fp32, then the int8 candidate
    monkeypatch.setattr(quantize, "recall_at_10", lambda *args: next(recalls))
    # only the Recall@10 criterion can fail: cosine and speed are this CPU's business
    only_recall = ANYTHING_GOES.model_copy(update={"tolerance": 0.01})
    strict = forced.model_copy(update={"acceptance": only_recall})
    rejected = export_serving_models(checkpoint, evaluation, strict)
    assert rejected.int8 is None
    assert rejected.quantization is not None and not rejected.quantization.accepted
    assert "Recall@10 drop 0.4000 > 0.01" in (rejected.quantization.reason or "")


def test_export_config_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="invalid ExportConfig"):
        ExportConfig(opset=3)
    with pytest.raises(ConfigError, match="invalid ExportConfig"):
        ExportConfig(acceptance={"tolerance": -1})
