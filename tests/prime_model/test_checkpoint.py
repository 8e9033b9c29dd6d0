from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import prime_model.checkpoint as checkpoint_module
from prime_model import (
    CheckpointError,
    EmbeddingPredictor,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from prime_model.atomic import sha256_file
from prime_model.checkpoint import FORMAT_VERSION, METADATA_FILE, WEIGHTS_FILE


@pytest.fixture
def saved(tiny_model: EmbeddingPredictor, tmp_path: Path) -> Path:
    return save_checkpoint(
        tiny_model, tmp_path / "ckpt", {"dataset": "sample-v1", "recall@10": 0.5}
    )


def _edit_metadata(directory: Path, **changes: Any) -> None:
    path = directory / METADATA_FILE
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_round_trip_reproduces_weights_outputs_and_metadata(
    tiny_model: EmbeddingPredictor, saved: Path
) -> None:
    loaded = load_checkpoint(saved)
    assert not loaded.model.training
    for (name, a), b in zip(
        tiny_model.state_dict().items(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    context, query = torch.randn(3, 4, 16), torch.randn(3, 16)
    assert torch.equal(tiny_model(context, query), loaded.model(context, query))
    meta = loaded.metadata
    assert meta.format_version == FORMAT_VERSION
    assert meta.predictor_config == tiny_model.config
    assert meta.training == {"dataset": "sample-v1", "recall@10": 0.5}
    assert meta.weights_sha256 == sha256_file(saved / WEIGHTS_FILE)
    assert meta.created_at.tzinfo is not None
    assert meta.package_version
    assert read_checkpoint_metadata(saved) == meta
    assert _siblings(saved) == ["ckpt"]  # no staging directories left behind


def test_existing_checkpoint_needs_overwrite(tiny_model: EmbeddingPredictor, saved: Path) -> None:
    with pytest.raises(CheckpointError, match="already exists; pass overwrite=True"):
        save_checkpoint(tiny_model, saved)
    torch.manual_seed(99)
    other = EmbeddingPredictor(tiny_model.config)
    save_checkpoint(other, saved, {"v": 2}, overwrite=True)
    assert load_checkpoint(saved).metadata.training == {"v": 2}
    assert torch.equal(load_checkpoint(saved).model.pred_token, other.pred_token)
    assert _siblings(saved) == ["ckpt"]


def test_non_json_metadata_is_refused_and_nothing_written(
    tiny_model: EmbeddingPredictor, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match="must be plain JSON"):
        save_checkpoint(tiny_model, tmp_path / "ckpt", {"when": object()})
    with pytest.raises(CheckpointError, match="must be plain JSON"):
        save_checkpoint(tiny_model, tmp_path / "ckpt", {"loss": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_crash_while_writing_leaves_no_checkpoint(
    tiny_model: EmbeddingPredictor, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die_halfway(tensors: dict[str, torch.Tensor], filename: str, **_: Any) -> None:
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "save_file", die_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_model, saved.parent / "new", {})
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_model, saved, {"v": 2}, overwrite=True)
    assert _siblings(saved) == ["ckpt"]
    assert load_checkpoint(saved).metadata.training["dataset"] == "sample-v1"  # old one intact


def test_flipped_byte_is_a_checksum_mismatch(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checksum mismatch.*corrupted or was modified"):
        load_checkpoint(saved)


def test_truncated_weights(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    full = weights.read_bytes()
    weights.write_bytes(full[: len(full) // 3])
    with pytest.raises(
        CheckpointError, match=rf"truncated: {len(full) // 3} bytes, expected {len(full)}"
    ):
        load_checkpoint(saved)


def test_grown_weights(saved: Path) -> None:
    with (saved / WEIGHTS_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(CheckpointError, match="the wrong size"):
        load_checkpoint(saved)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_format_version(saved: Path, version: object) -> None:
    _edit_metadata(saved, format_version=version)
    with pytest.raises(
        CheckpointError, match=rf"unknown checkpoint format version {version!r}.*reads version 1"
    ):
        load_checkpoint(saved)


def test_missing_metadata(saved: Path) -> None:
    (saved / METADATA_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"missing metadata\.json; not a PRIME checkpoint"):
        load_checkpoint(saved)


def test_missing_weights(saved: Path) -> None:
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"missing model\.safetensors"):
        load_checkpoint(saved)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object, got list")],
)
def test_unreadable_metadata(saved: Path, text: str, needle: str) -> None:
    (saved / METADATA_FILE).write_text(text)
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(saved)


def test_metadata_missing_a_field(saved: Path) -> None:
    raw = json.loads((saved / METADATA_FILE).read_text())
    del raw["weights_sha256"]
    (saved / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(
        CheckpointError, match="invalid metadata:\n  weights_sha256: Field required"
    ):
        load_checkpoint(saved)


def test_metadata_with_an_invalid_config(saved: Path) -> None:
    raw = json.loads((saved / METADATA_FILE).read_text())
    raw["predictor_config"]["num_heads"] = 5
    (saved / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"hidden_dim=32 must be divisible by num_heads=5"):
        load_checkpoint(saved)


def test_config_that_does_not_fit_the_weights(saved: Path) -> None:
    raw = json.loads((saved / METADATA_FILE).read_text())
    raw["predictor_config"]["hidden_dim"] = 64
    (saved / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatches \['blocks.0.attn.proj.bias: \(32,\) in file, \(64,\) expected",
    ):
        load_checkpoint(saved)


def _replace_weights(directory: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Swap the weights and re-sign them, as a tool that knows the format might."""
    weights = directory / WEIGHTS_FILE
    save_file(tensors, str(weights))
    _edit_metadata(
        directory, weights_sha256=sha256_file(weights), weights_bytes=weights.stat().st_size
    )


def test_missing_and_unexpected_tensors(tiny_model: EmbeddingPredictor, saved: Path) -> None:
    state = dict(tiny_model.state_dict())
    del state["norm.weight"]
    state["extra.weight"] = torch.zeros(2)
    _replace_weights(saved, state)
    with pytest.raises(
        CheckpointError, match=r"missing \['norm.weight'\], unexpected \['extra.weight'\]"
    ):
        load_checkpoint(saved)


def test_signed_garbage_is_not_a_safetensors_file(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    weights.write_bytes(b"\xff" * 64)
    _edit_metadata(saved, weights_sha256=sha256_file(weights), weights_bytes=64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(saved)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")


class _Trap:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_pickle_is_refused_without_being_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    offered = tmp_path / "model.ckpt"
    offered.write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(
        CheckpointError, match=r"is a file; expected a checkpoint directory.*never loaded"
    ):
        load_checkpoint(offered)
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / WEIGHTS_FILE).write_bytes(offered.read_bytes())
    with pytest.raises(CheckpointError, match=r"missing metadata\.json"):
        load_checkpoint(directory)
    assert not marker.exists()
