"""The trusted-file format: signed metadata, the graph's signature, and what is refused."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from prime_model.errors import ExportError
from prime_model.runtime.onnx_file import (
    CONCAT_INPUT,
    INPUT_NAMES,
    ROLES_INPUT,
    SHA256_KEY,
    embed_metadata,
    input_names,
    load_onnx,
    read_metadata,
    verify_onnx,
)
from tests.prime_model.runtime.inference_support import CONFIG, exported


def test_input_names_grow_only_with_the_flags() -> None:
    assert input_names(CONFIG) == INPUT_NAMES
    flagged = CONFIG.model_copy(update={"role_embedding": True, "concat_input": True})
    assert input_names(flagged) == (*INPUT_NAMES, ROLES_INPUT, CONCAT_INPUT)


def test_a_verified_file_round_trips_through_its_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(exported().data)
    loaded = load_onnx(path)
    assert loaded.sha256 == exported().sha256 and loaded.metadata == exported().metadata
    model = onnx.load_model_from_string(exported().data)
    metadata, digest = read_metadata(model, "here")
    assert digest == loaded.sha256 and metadata.predictor_config == CONFIG


def test_changed_metadata_breaks_the_signature_until_it_is_signed_again() -> None:
    model = onnx.load_model_from_string(exported().data)
    for prop in model.metadata_props:
        if prop.key == "prime.opset":
            prop.value = "19"
    with pytest.raises(ExportError, match="checksum mismatch"):
        verify_onnx(model.SerializeToString(), "edited")
    metadata = exported().metadata.model_copy(update={"opset": 19})
    embed_metadata(model, metadata)
    assert verify_onnx(model.SerializeToString(), "re-signed").metadata.opset == 19


def test_unsigned_and_missing_files_are_export_errors(tmp_path: Path) -> None:
    model = onnx.load_model_from_string(exported().data)
    kept = [p for p in model.metadata_props if p.key != SHA256_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    with pytest.raises(ExportError, match="no PRIME metadata"):
        verify_onnx(model.SerializeToString(), "unsigned")
    with pytest.raises(ExportError, match="no such ONNX file"):
        load_onnx(tmp_path / "missing.onnx")
