from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

from prime_model import ExportError, load_checkpoint, save_checkpoint
from prime_model.checkpoint import package_version
from prime_model.export.export import ExportResult, export_onnx
from prime_model.export.onnx_graph import to_onnx_model, weights_sha256
from prime_model.runtime.loader import create_predictor
from prime_model.runtime.onnx_file import SHA256_KEY, load_onnx
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, eager, random_inputs, tiny_model


@pytest.fixture(scope="module")
def exported_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ExportResult]:
    root = tmp_path_factory.mktemp("export")
    ckpt = save_checkpoint(tiny_model(), root / "ckpt")
    encoded = make_encoded(m=20, n=CONFIG.max_context_length, d=CONFIG.input_dim)
    result = export_onnx(ckpt, root / "out" / "model.onnx", reference_inputs=encoded)
    return ckpt, root / "out" / "model.onnx", result


def _props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def test_export_round_trip_matches_eager_with_dynamic_axes(
    exported_file: tuple[Path, Path, ExportResult],
) -> None:
    ckpt, path, result = exported_file
    assert result.path == path and path.is_file() and result.bytes == path.stat().st_size
    assert set(result.parity) == {"random", "real"}
    for stats in result.parity.values():
        assert stats.max_abs_diff <= 1e-4 and stats.min_cosine >= 0.9999 and stats.rows > 0
    model = load_checkpoint(ckpt).model
    predictor = create_predictor(path)
    for batch, turns in ((1, 4), (7, 2), (3, 1)):  # batch and context axes are dynamic
        context, query, mask = random_inputs(batch, turns, seed=batch)
        np.testing.assert_allclose(
            predictor.predict(context, query, mask), eager(model, context, query, mask), atol=1e-5
        )
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["context", "query", "context_mask"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert graph.input[0].type.tensor_type.shape.dim[1].dim_param  # symbolic turns


def test_metadata_records_config_weights_hash_and_version(
    exported_file: tuple[Path, Path, ExportResult],
) -> None:
    ckpt, path, result = exported_file
    props = _props(path)
    assert json.loads(props["prime.predictor_config"]) == CONFIG.model_dump(mode="json")
    checkpoint_sha = load_checkpoint(ckpt).metadata.weights_sha256
    assert props["prime.weights_sha256"] == checkpoint_sha == result.weights_sha256
    assert props["prime.package_version"] == package_version()
    assert props["prime.kind"] == "fp32" and props["prime.opset"] == "20"
    assert props[SHA256_KEY] == result.sha256
    meta = load_onnx(path).metadata
    assert meta.predictor_config == CONFIG and meta.kind == "fp32"
    # the same hash whether exported from the checkpoint or from the model in memory
    assert weights_sha256(tiny_model()) == checkpoint_sha


def _rewrite(source: Path, target: Path, edit: str) -> Path:
    model = onnx.load(source)
    if edit == "weights":
        init = max(model.graph.initializer, key=lambda t: len(t.raw_data))
        raw = bytearray(init.raw_data)
        raw[0] ^= 0xFF
        init.raw_data = bytes(raw)
    elif edit == "config":
        prop = next(p for p in model.metadata_props if p.key == "prime.predictor_config")
        prop.value = json.dumps({**json.loads(prop.value), "num_layers": 3})
    elif edit == "strip":
        del model.metadata_props[:]
    onnx.save(model, target)
    return target


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("weights", "checksum mismatch"),
        ("config", "checksum mismatch"),
        ("strip", "no PRIME metadata"),
    ],
)
def test_tampered_or_foreign_onnx_is_refused(
    exported_file: tuple[Path, Path, ExportResult], tmp_path: Path, edit: str, message: str
) -> None:
    bad = _rewrite(exported_file[1], tmp_path / "bad.onnx", edit)
    with pytest.raises(ExportError, match=message):
        load_onnx(bad)
    with pytest.raises(ExportError, match=message):
        create_predictor(bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\xff garbage \x13\x37" * 50, "not an ONNX model"),
        (b"", "not an ONNX model"),
        (b"hello world\n", "not an ONNX model"),
    ],
)
def test_garbage_files_raise_export_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=message):
        create_predictor(path)
    with pytest.raises(ExportError, match="no such ONNX file"):
        load_onnx(tmp_path / "missing.onnx")


def test_parity_failure_raises_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("prime_model.export.export.MAX_ABS_DIFF", 0.0)  # any float noise now fails
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"does not reproduce the eager model on random inputs"):
        export_onnx(tiny_model(), target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_unwritable_target_raises_export_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ExportError, match="is a file, not a directory"):
        export_onnx(tiny_model(), blocker / "model.onnx")
    with pytest.raises(ExportError, match="it is a directory"):
        export_onnx(tiny_model(), tmp_path)


def test_the_exporters_optimiser_passes_stay_out_of_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    to_onnx_model(tiny_model())
    optimiser = [
        r.getMessage() for r in caplog.records if r.name.startswith(("onnxscript", "onnx_ir"))
    ]
    assert optimiser == []  # "Replaced initializer ...", "Skipping constant folding ..." on INFO
    assert logging.getLogger("onnxscript").level == logging.NOTSET  # restored
    assert logging.getLogger("onnx_ir").level == logging.NOTSET
