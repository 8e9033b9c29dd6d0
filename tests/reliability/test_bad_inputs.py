"""One table of bad inputs across the whole package.

Each case writes its inputs under its own ``tmp_path``, then makes one call that must fail with a
typed :class:`PrimeError` whose message names the problem, and must leave ``tmp_path`` exactly as
it was: no partial checkpoint, export, report or temporary file, and no unpickled side effect.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from prime_model import (
    CheckpointError,
    ConfigError,
    DataValidationError,
    ExportError,
    PredictorConfig,
    PredictorError,
    PrimeError,
    TrainingConfig,
    create_predictor,
    load_checkpoint,
    save_checkpoint,
)
from prime_model.atomic import sha256_file
from prime_model.checkpoint import METADATA_FILE, WEIGHTS_FILE
from prime_model.data import TurnValidationError, read_turns, validate_turns
from prime_model.errors import CheckpointWriteError, WriteError
from prime_model.export.export import export_onnx, export_verified
from prime_model.runtime.batch_prediction import predict_turns, save_embeddings
from prime_model.runtime.onnx_file import embed_metadata, load_onnx, read_metadata
from prime_model.train.training import train_predictor
from tests.conftest import CountingEncoder, make_encoded
from tests.prime_model.runtime.inference_support import CONFIG
from tests.reliability.support import Inputs, Rows, Trigger, tiny_model, valid_inputs, valid_rows

Arrange = Callable[[Path], Trigger]

MARKER = "UNPICKLED"  # created by _Trap if anything ever unpickles it


@dataclass(frozen=True)
class Case:
    """``arrange`` writes the inputs under tmp_path and returns the call that must fail."""

    id: str
    group: str
    arrange: Arrange
    error: type[PrimeError]
    match: str


class _Trap:
    """Unpickling this creates ``marker``: proof that a loader ran pickle code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@cache
def _onnx_bytes() -> bytes:
    """The fp32 export of ``tiny_model()``, made once (a few seconds)."""
    return export_verified(tiny_model()).data


# ---------------------------------------------------------------- predictor inputs, two backends


def _with_value(array: np.ndarray, value: float) -> np.ndarray:
    out = array.copy()
    out.flat[1] = value
    return out


# the same bad request, sent to the eager model and to an ONNX Runtime predictor
BAD_REQUESTS: dict[str, tuple[Callable[[Any, Any, Any], Inputs], str]] = {
    "wrong-rank": (
        lambda c, q, m: (c[0], q, m),
        "context must have 3 dims (B×N×D), got shape (3, 16)",
    ),
    "wrong-embedding-dim": (
        lambda c, q, m: (c[..., :8], q[:, :8], m),
        "embedding dim mismatch: context D=8, query D=8; expected input_dim=16",
    ),
    "too-many-turns": (
        lambda c, q, m: (np.zeros((2, 5, 16), np.float32), q, np.ones((2, 5), np.bool_)),
        "context has N=5 turns, more than max_context_length=4",
    ),
    "batch-size-mismatch": (
        lambda c, q, m: (c, q[:1], m),
        "batch sizes differ: context has B=2, query has B=1",
    ),
    "nan-context": (
        lambda c, q, m: (_with_value(c, np.nan), q, m),
        "context contains NaN or infinite values",
    ),
    "inf-query": (
        lambda c, q, m: (c, _with_value(q, np.inf), m),
        "query contains NaN or infinite values",
    ),
    "integer-dtype": (
        lambda c, q, m: (c.astype(np.int64), q.astype(np.int64), m),
        "context must be a floating-point",
    ),
    "empty-batch": (
        lambda c, q, m: (c[:0], q[:0], m[:0]),
        "empty batch: context and query have B=0 rows; expected B >= 1",
    ),
    "mask-not-bool": (
        lambda c, q, m: (c, q, m.astype(np.int64)),
        "context_mask must be bool (True = real turn)",
    ),
    "mask-wrong-shape": (
        lambda c, q, m: (c, q, m[:, :2]),
        "context_mask must have shape (B, N) = (2, 3), got (2, 2)",
    ),
    "batch-above-max-batch-size": (
        lambda c, q, m: (np.zeros((9, 3, 16), np.float32), np.zeros((9, 16), np.float32), None),
        "batch of B=9 exceeds max_batch_size=8",
    ),
}


def _eager(change: Callable[[Any, Any, Any], Inputs]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        model = tiny_model()
        context, query, mask = (
            None if a is None else torch.from_numpy(a) for a in change(*valid_inputs())
        )
        return lambda: model(context, query, mask)

    return arrange


def _onnx(change: Callable[[Any, Any, Any], Inputs]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / "model.onnx"
        path.write_bytes(_onnx_bytes())
        predictor = create_predictor(path, backend="onnx")
        context, query, mask = change(*valid_inputs())
        return lambda: predictor.predict(context, query, mask)

    return arrange


def _eager_given_numpy(tmp_path: Path) -> Trigger:
    model = tiny_model()
    context, query, _ = valid_inputs()
    return lambda: model(context, query)


def _onnx_given_lists(tmp_path: Path) -> Trigger:
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_bytes())
    predictor = create_predictor(path, backend="onnx")
    context, query, _ = valid_inputs()
    return lambda: predictor.predict(context.tolist(), query.tolist())


PREDICTOR_CASES = [
    *(
        Case(f"eager-{name}", "predictor", _eager(change), PredictorError, match)
        for name, (change, match) in BAD_REQUESTS.items()
    ),
    *(
        Case(f"onnx-{name}", "onnx-predictor", _onnx(change), PredictorError, match)
        for name, (change, match) in BAD_REQUESTS.items()
    ),
    Case(
        "eager-numpy-instead-of-tensor",
        "predictor",
        _eager_given_numpy,
        PredictorError,
        "context must be a torch.Tensor, got ndarray",
    ),
    Case(
        "onnx-python-lists",
        "onnx-predictor",
        _onnx_given_lists,
        PredictorError,
        "context must be a numpy array or a torch.Tensor, got list",
    ),
]


# ---------------------------------------------------------------------------------- configs


def _build(make: Callable[[], object]) -> Arrange:
    return lambda tmp_path: make


def _yaml(text: str | bytes, config: type[PredictorConfig] | type[TrainingConfig]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / "config.yaml"
        body = text.replace("{marker}", str(tmp_path / MARKER)) if isinstance(text, str) else text
        if isinstance(body, str):
            path.write_text(body, encoding="utf-8")
        else:
            path.write_bytes(body)
        return lambda: config.from_yaml(path)

    return arrange


CONFIG_CASES = [
    Case(
        "config-unknown-key",
        "config",
        _build(lambda: PredictorConfig(hidden=64)),  # type: ignore[call-arg]
        ConfigError,
        "hidden: Extra inputs are not permitted",
    ),
    Case(
        "config-negative-dim",
        "config",
        _build(lambda: PredictorConfig(input_dim=-384)),
        ConfigError,
        "input_dim: Input should be greater than 0 (got -384)",
    ),
    Case(
        "config-hidden-not-divisible-by-heads",
        "config",
        _build(lambda: PredictorConfig(hidden_dim=30, num_heads=4)),
        ConfigError,
        "hidden_dim=30 must be divisible by num_heads=4",
    ),
    Case(
        "config-temperature-zero",
        "config",
        _build(lambda: TrainingConfig(temperature=0.0)),
        ConfigError,
        "temperature: Input should be greater than 0",
    ),
    Case(
        "config-warmup-beyond-run",
        "config",
        _build(lambda: TrainingConfig(max_steps=10, warmup_steps=10)),
        ConfigError,
        "warmup_steps=10 must be < max_steps=10",
    ),
    Case(
        "yaml-not-a-mapping",
        "config",
        _yaml("- input_dim: 16\n- output_dim: 16\n", PredictorConfig),
        ConfigError,
        "expected a mapping of PredictorConfig fields, got a list",
    ),
    Case(
        "yaml-unknown-key",
        "config",
        _yaml("batchsize: 32\n", TrainingConfig),
        ConfigError,
        "config.yaml: invalid TrainingConfig:\n  batchsize: Extra inputs are not permitted",
    ),
    Case(
        "yaml-temperature-zero",
        "config",
        _yaml("temperature: 0\n", TrainingConfig),
        ConfigError,
        "temperature: Input should be greater than 0 (got 0)",
    ),
    Case(
        "yaml-syntax-error",
        "config",
        _yaml("input_dim: [16,\n", PredictorConfig),
        ConfigError,
        "not valid YAML",
    ),
    Case(
        "yaml-duplicate-key",
        "config",
        _yaml("batch_size: 16\nmax_epochs: 3\nbatch_size: 64\n", TrainingConfig),
        ConfigError,
        "duplicate key 'batch_size'",
    ),
    Case(
        "yaml-not-utf8",
        "config",
        _yaml(b"\xff\xfe\x00b\x00a\x00", TrainingConfig),
        ConfigError,
        "not UTF-8 text",
    ),
    Case(
        "yaml-non-string-key",
        "config",
        _yaml("16: input_dim\n", PredictorConfig),
        ConfigError,
        "field names must be strings, got [16]",
    ),
    Case(
        "yaml-python-tag-not-executed",
        "config",
        _yaml("seed: !!python/object/apply:os.system ['touch {marker}']\n", TrainingConfig),
        ConfigError,
        "could not determine a constructor for the tag",
    ),
    Case(
        "yaml-missing-file",
        "config",
        lambda tmp_path: lambda: TrainingConfig.from_yaml(tmp_path / "missing.yaml"),
        ConfigError,
        "missing.yaml: no such config file",
    ),
]


# ------------------------------------------------------------------------------------- data


def _write_rows(path: Path, rows: Rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _edit_row(index: int, **changes: Any) -> Callable[[Rows], Rows]:
    return lambda rows: [{**r, **changes} if i == index else r for i, r in enumerate(rows)]


def _validated(edit: Callable[[Rows], Rows]) -> Arrange:
    """Read a JSON-lines file, then run the validation suite on it."""

    def arrange(tmp_path: Path) -> Trigger:
        path = _write_rows(tmp_path / "turns.jsonl", edit(valid_rows()))
        return lambda: validate_turns(read_turns(path), source=str(path))

    return arrange


def _read(content: str | bytes, name: str, fmt: str | None = None, **kwargs: Any) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return lambda: read_turns(path, fmt, **kwargs)

    return arrange


def _jsonl(edit: Callable[[Rows], Rows]) -> str:
    return "".join(json.dumps(row) + "\n" for row in edit(valid_rows()))


def _without(row: dict[str, Any], column: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != column}


def _history_not_a_list_frame(tmp_path: Path) -> Trigger:
    frame = read_turns(_write_rows(tmp_path / "turns.jsonl", valid_rows()))
    frame.at[4, "history"] = "question 0 of conversation 1? answer 0 of 1."
    return lambda: validate_turns(frame)


def _parquet_with_string_history(tmp_path: Path) -> Trigger:
    path = tmp_path / "turns.parquet"
    rows = [{**r, "history": " | ".join(r["history"]) or "none"} for r in valid_rows()]
    pd.DataFrame(rows).to_parquet(path)
    return lambda: read_turns(path)


DATA_CASES = [
    Case(
        "data-empty-file",
        "data",
        _validated(lambda rows: []),
        TurnValidationError,
        "at least 10 rows [expect_table_row_count_to_be_between]: observed 0",
    ),
    Case(
        "data-missing-column",
        "data",
        _read(_jsonl(lambda rows: [_without(r, "query") for r in rows]), "turns.jsonl"),
        DataValidationError,
        "missing required column(s) ['query']",
    ),
    Case(
        "data-null-query",
        "data",
        _validated(_edit_row(2, query=None)),
        TurnValidationError,
        "'query' has no nulls",
    ),
    Case(
        "data-blank-query",
        "data",
        _validated(_edit_row(5, query="   ")),
        TurnValidationError,
        "'query' is not blank",
    ),
    Case(
        "data-null-target",
        "data",
        _validated(_edit_row(7, target=None)),
        TurnValidationError,
        "'target' has no nulls",
    ),
    Case(
        "data-blank-target",
        "data",
        _validated(_edit_row(3, target="")),
        TurnValidationError,
        "'target' is not blank",
    ),
    Case(
        "data-duplicate-conversation-turn",
        "data",
        _validated(lambda rows: [*rows, rows[4]]),
        TurnValidationError,
        "(conversation_id, turn) is unique",
    ),
    Case(
        "data-history-not-a-list-in-file",
        "data",
        _read(_jsonl(_edit_row(1, history="hi there")), "turns.jsonl"),
        DataValidationError,
        "row 1 column 'history' is 'hi there'; expected a list of strings",
    ),
    Case(
        "data-history-not-a-list-in-frame",
        "data",
        _history_not_a_list_frame,
        TurnValidationError,
        "'history' is a list",
    ),
    Case(
        "data-history-string-in-parquet",
        "data",
        _parquet_with_string_history,
        DataValidationError,
        "row 0 column 'history' is 'none'; expected a list of strings",
    ),
    Case(
        "data-negative-turn",
        "data",
        _validated(_edit_row(0, turn=-1)),
        TurnValidationError,
        "'turn' is >= 0",
    ),
    Case(
        "data-boolean-turn",
        "data",
        _read(_jsonl(_edit_row(1, turn=True)), "turns.jsonl"),
        DataValidationError,
        "column 'turn' must hold whole numbers (int64) with no nulls or booleans, got e.g. [True]",
    ),
    Case(
        "data-turn-beyond-int64",
        "data",
        _read(_jsonl(_edit_row(1, turn=2**64)), "turns.jsonl"),
        DataValidationError,
        f"got e.g. [{2**64}]",
    ),
    Case(
        "data-unknown-format",
        "data",
        _read(_jsonl(lambda rows: rows), "turns.jsonl", "xlsx"),
        DataValidationError,
        "unknown format 'xlsx'; supported formats:",
    ),
    Case(
        "data-unknown-suffix",
        "data",
        _read(_jsonl(lambda rows: rows), "turns.txt"),
        DataValidationError,
        "cannot infer the format from suffix '.txt'",
    ),
    Case(
        "data-missing-file",
        "data",
        lambda tmp_path: lambda: read_turns(tmp_path / "missing.jsonl"),
        DataValidationError,
        "missing.jsonl: file not found",
    ),
    Case(
        "data-invalid-json",
        "data",
        _read('{"conversation_id": "c0", "turn": 0,\n', "turns.jsonl"),
        DataValidationError,
        "invalid JSON on line 1",
    ),
    Case(
        "data-not-utf8",
        "data",
        _read(b'{"query": "caf\xe9"}\n', "turns.jsonl"),
        DataValidationError,
        "not valid UTF-8 text",
    ),
    Case(
        "data-invalid-parquet",
        "data",
        _read(b"PAR1 this is not a parquet file", "turns.parquet"),
        DataValidationError,
        "not a readable Parquet file",
    ),
    Case(
        "data-csv-history-not-json",
        "data",
        _read("conversation_id,turn,history,query,target\nc0,0,[oops,q?,t.\n", "turns.csv"),
        DataValidationError,
        "row 0 column 'history' is '[oops', not valid JSON",
    ),
    Case(
        "data-qrecc-record-missing-fields",
        "data",
        _read('[{"Conversation_no": 1}]', "qrecc.json", "qrecc", target="rewrite"),
        DataValidationError,
        "record 0 is missing field(s) ['Turn_no', 'Context', 'Question', 'Rewrite']",
    ),
]


# -------------------------------------------------------------------------------- checkpoints


def _saved_checkpoint(edit: Callable[[Path], object]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        directory = save_checkpoint(tiny_model(), tmp_path / "ckpt")
        edit(directory)
        return lambda: load_checkpoint(directory)

    return arrange


def _flip_byte(directory: Path) -> None:
    weights = directory / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))


def _truncate(directory: Path) -> None:
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])


def _edit_metadata(**changes: Any) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / METADATA_FILE
        raw = json.loads(path.read_text(encoding="utf-8"))
        for key, value in changes.items():
            if isinstance(value, dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        path.write_text(json.dumps(raw), encoding="utf-8")

    return edit


def _re_sign(directory: Path) -> None:
    """Record the current weights' size and sha256, as a tool that knows the format would."""
    weights = directory / WEIGHTS_FILE
    _edit_metadata(weights_sha256=sha256_file(weights), weights_bytes=weights.stat().st_size)(
        directory
    )


def _signed_nan_weights(directory: Path) -> None:
    state = {k: v.clone() for k, v in tiny_model().state_dict().items()}
    state["norm.weight"][0] = float("nan")
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "prime-predictor"})
    _re_sign(directory)


def _signed_pickle_weights(directory: Path) -> None:
    (directory / WEIGHTS_FILE).write_bytes(pickle.dumps(_Trap(directory.parent / MARKER)))
    _re_sign(directory)


def _pickle_file(name: str, load: Callable[[Path], object]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / name
        path.write_bytes(pickle.dumps({"state_dict": _Trap(tmp_path / MARKER)}))
        return lambda: load(path)

    return arrange


def _torch_saved_trap(tmp_path: Path) -> Trigger:
    path = tmp_path / "model.pt"
    torch.save({"model": _Trap(tmp_path / MARKER)}, path)
    return lambda: load_checkpoint(path)


def _save(
    directory: str, metadata: dict[str, Any] | None = None, *, overwrite: bool = False
) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        (tmp_path / "blocker").write_text("a file, not a directory\n", encoding="utf-8")
        model = tiny_model()
        return lambda: save_checkpoint(model, tmp_path / directory, metadata, overwrite=overwrite)

    return arrange


def _save_diverged(tmp_path: Path) -> Trigger:
    model = tiny_model()
    with torch.no_grad():
        model.output_proj.weight[0, 0] = float("inf")
    return lambda: save_checkpoint(model, tmp_path / "ckpt")


CHECKPOINT_CASES = [
    Case(
        "checkpoint-flipped-byte",
        "checkpoint",
        _saved_checkpoint(_flip_byte),
        CheckpointError,
        "checksum mismatch",
    ),
    Case(
        "checkpoint-truncated-weights",
        "checkpoint",
        _saved_checkpoint(_truncate),
        CheckpointError,
        "model.safetensors is truncated: 1000 bytes, expected",
    ),
    Case(
        "checkpoint-missing-metadata",
        "checkpoint",
        _saved_checkpoint(lambda d: (d / METADATA_FILE).unlink()),
        CheckpointError,
        "missing metadata.json; not a PRIME checkpoint",
    ),
    Case(
        "checkpoint-metadata-not-json",
        "checkpoint",
        _saved_checkpoint(lambda d: (d / METADATA_FILE).write_text("{oops", encoding="utf-8")),
        CheckpointError,
        "metadata.json: not valid JSON",
    ),
    Case(
        "checkpoint-unknown-format-version",
        "checkpoint",
        _saved_checkpoint(_edit_metadata(format_version=99)),
        CheckpointError,
        "unknown checkpoint format version 99",
    ),
    Case(
        "checkpoint-config-does-not-fit-weights",
        "checkpoint",
        _saved_checkpoint(_edit_metadata(predictor_config={"input_dim": 8, "residual": False})),
        CheckpointError,
        "weights do not fit its predictor_config",
    ),
    Case(
        "checkpoint-signed-nan-weights",
        "checkpoint",
        _saved_checkpoint(_signed_nan_weights),
        CheckpointError,
        "NaN or infinite values in 1 tensor(s), e.g. ['norm.weight']",
    ),
    Case(
        "checkpoint-signed-pickle-as-weights",
        "pickle",
        _saved_checkpoint(_signed_pickle_weights),
        CheckpointError,
        "not a readable safetensors file",
    ),
    Case(
        "pickle-ckpt-to-load_checkpoint",
        "pickle",
        _pickle_file("model.ckpt", load_checkpoint),
        CheckpointError,
        "is a file; expected a checkpoint directory",
    ),
    Case(
        "pickle-torch-save-to-load_checkpoint",
        "pickle",
        _torch_saved_trap,
        CheckpointError,
        "pickled .ckpt/.pt/.pkl files are never loaded",
    ),
    Case(
        "pickle-ckpt-to-create_predictor",
        "pickle",
        _pickle_file("model.ckpt", lambda p: create_predictor(p, backend="onnx")),
        PredictorError,
        "is a file but not a .onnx model",
    ),
    Case(
        "pickle-named-onnx-to-create_predictor",
        "pickle",
        _pickle_file("model.onnx", lambda p: create_predictor(p, backend="onnx")),
        ExportError,
        "not an ONNX model",
    ),
    Case(
        "checkpoint-save-non-json-metadata",
        "checkpoint",
        _save("ckpt", {"when": object()}),
        CheckpointError,
        "checkpoint metadata must be plain JSON",
    ),
    Case(
        "checkpoint-save-under-a-file",
        "checkpoint",
        _save("blocker/ckpt"),
        CheckpointWriteError,
        "cannot write checkpoint",
    ),
    Case(
        "checkpoint-save-over-a-file",
        "checkpoint",
        _save("blocker", overwrite=True),
        CheckpointError,
        "blocker is a file; a checkpoint is a directory",
    ),
    Case(
        "checkpoint-save-diverged-weights",
        "checkpoint",
        _save_diverged,
        CheckpointError,
        "NaN or infinite values in 1 tensor(s), e.g. ['output_proj.weight']",
    ),
]


# ------------------------------------------------------------------------------- ONNX files


def _proto() -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.ParseFromString(_onnx_bytes())
    return model


def _onnx_file(content: Callable[[], bytes], load: Callable[[Path], object] = load_onnx) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / "model.onnx"
        path.write_bytes(content())
        return lambda: load(path)

    return arrange


def _edited(edit: Callable[[onnx.ModelProto], None]) -> Callable[[], bytes]:
    def content() -> bytes:
        model = _proto()
        edit(model)
        return bytes(model.SerializeToString())

    return content


def _flip_weight(model: onnx.ModelProto) -> None:
    init = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    raw = bytearray(init.raw_data)
    raw[0] ^= 0x01
    init.raw_data = bytes(raw)


def _set_prop(key: str, value: str) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        next(p for p in model.metadata_props if p.key == key).value = value

    return edit


def _re_signed(**changes: Any) -> Callable[[onnx.ModelProto], None]:
    """New metadata with a valid hash: only a signer could do this, the file is self-consistent."""

    def edit(model: onnx.ModelProto) -> None:
        metadata, _ = read_metadata(model, "export")
        embed_metadata(model, metadata.model_copy(update=changes))

    return edit


def _on_onnx_backend(path: Path) -> object:
    return create_predictor(path, backend="onnx")


ONNX_CASES = [
    Case(
        "onnx-garbage-file",
        "onnx-file",
        _onnx_file(lambda: b"\x00\xff garbage \x13\x37" * 40, _on_onnx_backend),
        ExportError,
        "not an ONNX model",
    ),
    Case(
        "onnx-truncated-file",
        "onnx-file",
        _onnx_file(lambda: _onnx_bytes()[: len(_onnx_bytes()) // 2], _on_onnx_backend),
        ExportError,
        "not an ONNX model (protobuf parse failed",
    ),
    Case(
        "onnx-empty-file",
        "onnx-file",
        _onnx_file(lambda: b""),
        ExportError,
        "not an ONNX model (no graph)",
    ),
    Case(
        "onnx-weights-do-not-match-hash",
        "onnx-file",
        _onnx_file(_edited(_flip_weight), _on_onnx_backend),
        ExportError,
        "checksum mismatch",
    ),
    Case(
        "onnx-graph-does-not-match-hash",
        "onnx-file",
        _onnx_file(_edited(lambda m: setattr(m.graph.node[0], "op_type", "Relu"))),
        ExportError,
        "corrupted or was modified after export",
    ),
    Case(
        "onnx-weights-sha256-metadata-edited",
        "onnx-file",
        _onnx_file(_edited(_set_prop("prime.weights_sha256", "0" * 64))),
        ExportError,
        "checksum mismatch",
    ),
    Case(
        "onnx-foreign-file-without-metadata",
        "onnx-file",
        _onnx_file(_edited(lambda m: m.ClearField("metadata_props")), _on_onnx_backend),
        ExportError,
        "no PRIME metadata (prime.sha256 missing)",
    ),
    Case(
        "onnx-signed-config-does-not-fit-graph",
        "onnx-file",
        _onnx_file(
            _edited(
                _re_signed(
                    predictor_config=CONFIG.model_copy(update={"input_dim": 8, "residual": False})
                )
            ),
            _on_onnx_backend,
        ),
        ExportError,
        "the graph does not fit its predictor_config (input_dim=8",
    ),
    Case(
        "onnx-signed-unknown-format-version",
        "onnx-file",
        _onnx_file(_edited(_re_signed(format_version=7))),
        ExportError,
        "unknown PRIME ONNX format version '7'; expected 1",
    ),
    Case(
        "onnx-missing-file",
        "onnx-file",
        lambda tmp_path: lambda: create_predictor(tmp_path / "missing.onnx", backend="onnx"),
        ExportError,
        "missing.onnx: no such ONNX file",
    ),
    Case(
        "onnx-file-on-eager-backend",
        "onnx-file",
        _onnx_file(_onnx_bytes, lambda p: create_predictor(p, backend="eager")),
        PredictorError,
        "backend 'eager' needs the torch model",
    ),
    Case(
        "onnx-unknown-backend",
        "onnx-file",
        _onnx_file(_onnx_bytes, lambda p: create_predictor(p, backend="tensorrt")),
        PredictorError,
        "unknown backend 'tensorrt'",
    ),
]


# ---------------------------------------------------------------- export, training, prediction


def _export_to(target: str, **kwargs: Any) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        (tmp_path / "blocker").write_text("a file, not a directory\n", encoding="utf-8")
        model = tiny_model()
        return lambda: export_onnx(model, tmp_path / target, **kwargs)

    return arrange


def _train(*, dim: int = 16, resume_from: bytes | None = None) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        out = tmp_path / "run"
        if resume_from is not None:
            (out / "lightning").mkdir(parents=True)
            (out / "lightning" / "last.ckpt").write_bytes(
                resume_from.replace(b"MARKER_PATH", str(tmp_path / MARKER).encode())
            )
        train, val = make_encoded(m=32, d=dim, k=8), make_encoded(m=16, d=dim, k=8, seed=1)
        config = TrainingConfig(
            batch_size=16, max_steps=2, warmup_steps=1, accelerator="cpu", max_epochs=1
        )
        resume = resume_from is not None
        return lambda: train_predictor(train, val, CONFIG, config, out, resume=resume)

    return arrange


def _trap_bytes() -> bytes:
    """A pickle whose loading would touch MARKER_PATH (filled in per case)."""
    return pickle.dumps({"state_dict": _Trap(Path("MARKER_PATH")), "global_step": 3})


def _save_embeddings_under_a_file(tmp_path: Path) -> Trigger:
    (tmp_path / "blocker").write_text("a file, not a directory\n", encoding="utf-8")
    frame = pd.DataFrame({"conversation_id": ["c0"], "turn": [0], "embedding": [[0.0, 1.0]]})
    return lambda: save_embeddings(frame, tmp_path / "blocker" / "embeddings.parquet")


def _predict_no_turns(tmp_path: Path) -> Trigger:
    turns = read_turns(_write_rows(tmp_path / "turns.jsonl", valid_rows())).iloc[:0]
    predictor = create_predictor(tiny_model(), backend="eager")
    return lambda: predict_turns(turns, predictor, CountingEncoder(dim=16))


OTHER_CASES = [
    Case(
        "export-under-a-file",
        "export",
        _export_to("blocker/model.onnx"),
        ExportError,
        "blocker is a file, not a directory",
    ),
    Case(
        "export-onto-a-directory",
        "export",
        _export_to("."),
        ExportError,
        "it is a directory; expected a .onnx file path",
    ),
    Case(
        "export-unsupported-opset",
        "export",
        _export_to("model.onnx", opset=17),
        ExportError,
        "opset 17 is not supported",
    ),
    Case(
        "training-encoder-dim-does-not-fit-predictor",
        "training",
        _train(dim=8),
        ConfigError,
        "encoded by stub as 8-d embeddings but the predictor has input_dim=16",
    ),
    Case(
        "pickle-resume-from-foreign-last-ckpt",
        "pickle",
        _train(resume_from=_trap_bytes()),
        CheckpointError,
        "not a Lightning checkpoint that can be resumed safely",
    ),
    Case(
        "training-resume-from-garbage-last-ckpt",
        "training",
        _train(resume_from=b"\x00garbage, not a checkpoint"),
        CheckpointError,
        "it was not unpickled",
    ),
    Case(
        "prediction-output-under-a-file",
        "prediction",
        _save_embeddings_under_a_file,
        WriteError,
        "embeddings.parquet: File exists; expected a writable folder",
    ),
    Case(
        "prediction-no-turns",
        "prediction",
        _predict_no_turns,
        DataValidationError,
        "no turns to predict; expected at least one row",
    ),
]

CASES = [
    *PREDICTOR_CASES,
    *CONFIG_CASES,
    *DATA_CASES,
    *CHECKPOINT_CASES,
    *ONNX_CASES,
    *OTHER_CASES,
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones too) with its content hash: any write shows."""
    return {
        str(path.relative_to(root)): (
            "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
        for path in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_a_typed_error_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    trigger = case.arrange(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(PrimeError) as info:
        trigger()
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    assert case.match in str(info.value)
    assert not (tmp_path / MARKER).exists(), "a pickle was unpickled"
    assert _snapshot(tmp_path) == before, "the failed call left files behind"


def test_the_table_has_unique_ids_and_covers_every_area() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    groups = Counter(case.group for case in CASES)
    assert set(groups) == {
        "predictor",
        "onnx-predictor",
        "config",
        "data",
        "checkpoint",
        "pickle",
        "onnx-file",
        "export",
        "training",
        "prediction",
    }
    assert min(groups["predictor"], groups["onnx-predictor"]) >= len(BAD_REQUESTS)
    assert len(CASES) >= 25


def test_the_unbroken_inputs_are_accepted(tmp_path: Path) -> None:
    """The faults above are the only thing wrong with each case's inputs."""
    model = tiny_model()
    context, query, mask = valid_inputs()
    eager_out = model(torch.from_numpy(context), torch.from_numpy(query), torch.from_numpy(mask))
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_bytes())
    onnx_out = create_predictor(path, backend="onnx").predict(context, query, mask)
    np.testing.assert_allclose(onnx_out, eager_out.detach().numpy(), atol=1e-5)
    turns = read_turns(_write_rows(tmp_path / "turns.jsonl", valid_rows()))
    assert validate_turns(turns).success
    checkpoint = save_checkpoint(model, tmp_path / "ckpt")
    assert load_checkpoint(checkpoint).metadata.predictor_config == CONFIG
    reloaded = tmp_path / "resigned.onnx"
    reloaded.write_bytes(_edited(_re_signed())())  # re-signing alone changes nothing
    assert load_onnx(reloaded).metadata.predictor_config == CONFIG
    config = tmp_path / "training.yaml"
    config.write_text("batch_size: 16\nmax_epochs: 3\ntemperature: 0.05\n", encoding="utf-8")
    assert TrainingConfig.from_yaml(config).batch_size == 16
    frame = pd.DataFrame({"conversation_id": ["c0"], "turn": [0], "embedding": [[0.0, 1.0]]})
    assert save_embeddings(frame, tmp_path / "out" / "embeddings.parquet").is_file()
