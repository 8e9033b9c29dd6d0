"""Hostile tensors, checkpoints, devices and file kinds: a second table of bad inputs.

Each case arranges its inputs under its own ``tmp_path`` (with ``monkeypatch`` to simulate a full
disk or a machine without CUDA), then makes one call that must fail with a typed
:class:`PrimeError` whose message names what was wrong and what was expected, and must leave
``tmp_path`` as it was. Every call runs in a daemon thread with a deadline, so a regression that
blocks (opening a FIFO) fails the case instead of hanging the suite.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import struct
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from prime_model import (
    CheckpointError,
    ConfigError,
    EmbeddingPredictor,
    ExportError,
    PredictorError,
    PrimeError,
    TrainingConfig,
    create_predictor,
    load_checkpoint,
    save_checkpoint,
)
from prime_model import checkpoint as checkpoint_module
from prime_model.atomic import atomic_directory, atomic_file, sha256_file, write_text_atomic
from prime_model.checkpoint import METADATA_FILE, WEIGHTS_FILE
from prime_model.cli.train import _write_report
from prime_model.errors import CheckpointWriteError, WriteError
from prime_model.export.export import export_onnx, export_verified
from prime_model.model_inputs import MAX_INPUT_MAGNITUDE
from prime_model.runtime.inference import EagerPredictor
from prime_model.runtime.onnx_file import SHA256_KEY, content_sha256, load_onnx
from prime_model.runtime.optimized import OptimizedPredictor
from prime_model.train.training import train_predictor
from tests.conftest import make_encoded
from tests.prime_model.runtime.inference_support import CONFIG
from tests.reliability.support import Inputs, Trigger, tiny_model, valid_inputs

Arrange = Callable[[Path, pytest.MonkeyPatch], Trigger]
DEADLINE_S = 60.0  # generous on 2 shared cores; a blocked open() never returns at all


@dataclass(frozen=True)
class Case:
    """``arrange`` writes the inputs under tmp_path and returns the call that must fail."""

    id: str
    group: str
    arrange: Arrange
    error: type[PrimeError]
    match: str


@cache
def _onnx_bytes() -> bytes:
    return export_verified(tiny_model()).data


def _call_with_deadline(trigger: Trigger, deadline_s: float = DEADLINE_S) -> BaseException | None:
    """Run ``trigger`` in a daemon thread: its exception, None if it returned, or a failure."""
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            trigger()
            outcome["error"] = None
        except BaseException as exc:  # handed back to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(deadline_s)
    if thread.is_alive():
        pytest.fail(f"the call blocked for more than {deadline_s:.0f}s (opened a FIFO?)")
    return outcome["error"]


# ------------------------------------------------------------ predictor inputs, two backends


def _with_value(array: np.ndarray, value: float, dtype: Any = np.float32) -> np.ndarray:
    out = array.astype(dtype)
    out.flat[1] = value
    return out


def _csr(array: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array).to_sparse_csr()


# the same hostile request, sent to the eager model and to an ONNX Runtime predictor
HOSTILE_REQUESTS: dict[str, tuple[Callable[[Any, Any, Any], Inputs], str]] = {
    "float32-near-max": (
        lambda c, q, m: (_with_value(c, 3e38), q, m),
        "context has values of magnitude up to 3.000e+38, beyond the accepted |x| <= 1e+04",
    ),
    "float64-1e300-overflows-the-cast": (
        lambda c, q, m: (c, _with_value(q, 1e300, np.float64), m),
        "query (float64) has values beyond float32's range (|x| > 3.40e+38), which become "
        "infinite when cast to float32",
    ),
    "float64-just-beyond-float32": (
        lambda c, q, m: (_with_value(c, 3.5e38, np.float64), q, m),
        "context (float64) has values beyond float32's range",
    ),
    "squares-overflow-in-layernorm": (
        lambda c, q, m: (np.full_like(c, 1e20), q, m),
        "context has values of magnitude up to 1.000e+20, beyond the accepted",
    ),
    "just-above-the-bound": (
        lambda c, q, m: (c, _with_value(q, -1.5 * MAX_INPUT_MAGNITUDE), m),
        "query has values of magnitude up to 1.500e+04, beyond the accepted |x| <= 1e+04",
    ),
    "float64-nan": (
        lambda c, q, m: (_with_value(c, np.nan, np.float64), q, m),
        "context contains NaN or infinite values; expected finite embeddings",
    ),
    "sparse-coo-context": (
        lambda c, q, m: (torch.from_numpy(c).to_sparse(), q, m),
        "context is a sparse tensor (layout torch.sparse_coo); expected a dense tensor",
    ),
    "sparse-csr-query": (
        lambda c, q, m: (c, _csr(q), m),
        "query is a sparse tensor (layout torch.sparse_csr); expected a dense tensor",
    ),
    "sparse-mask": (
        lambda c, q, m: (c, q, torch.from_numpy(m).to_sparse()),
        "context_mask is a sparse tensor (layout torch.sparse_coo)",
    ),
}


def _as_tensors(inputs: Inputs) -> Inputs:
    return tuple(  # type: ignore[return-value]
        torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in inputs
    )


def _eager_model(change: Callable[[Any, Any, Any], Inputs]) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        model = tiny_model()
        context, query, mask = _as_tensors(change(*valid_inputs()))
        return lambda: model(context, query, mask)

    return arrange


def _onnx_predictor(change: Callable[[Any, Any, Any], Inputs]) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        path = tmp_path / "model.onnx"
        path.write_bytes(_onnx_bytes())
        predictor = create_predictor(path, backend="onnx")
        context, query, mask = change(*valid_inputs())
        return lambda: predictor.predict(context, query, mask)

    return arrange


PREDICTOR_CASES = [
    *(
        Case(f"eager-{name}", "predictor", _eager_model(change), PredictorError, match)
        for name, (change, match) in HOSTILE_REQUESTS.items()
    ),
    *(
        Case(f"onnx-{name}", "onnx-predictor", _onnx_predictor(change), PredictorError, match)
        for name, (change, match) in HOSTILE_REQUESTS.items()
    ),
]


# ------------------------------------------------------------------------------- checkpoints


def _re_sign(directory: Path) -> None:
    """Record the current weights' size and sha256, as a tool that knows the format would."""
    weights = directory / WEIGHTS_FILE
    path = directory / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["weights_sha256"] = sha256_file(weights)
    raw["weights_bytes"] = weights.stat().st_size
    path.write_text(json.dumps(raw), encoding="utf-8")


def _saved(edit: Callable[[Path], object], **load: Any) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        directory = save_checkpoint(tiny_model(), tmp_path / "ckpt")
        edit(directory)
        return lambda: load_checkpoint(directory, **load)

    return arrange


def _one_tensor_as(dtype: torch.dtype) -> Callable[[Path], None]:
    """``norm.weight`` stored as ``dtype``, right shape, correctly signed: it used to load."""

    def edit(directory: Path) -> None:
        state = {k: v.clone() for k, v in tiny_model().state_dict().items()}
        state["norm.weight"] = state["norm.weight"].to(dtype)
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "prime-predictor"})
        _re_sign(directory)

    return edit


def _declared_config(**changes: int) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / METADATA_FILE
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["predictor_config"].update(changes)
        path.write_text(json.dumps(raw), encoding="utf-8")

    return edit


def _header_declares(name: str, shape: list[int]) -> Callable[[Path], None]:
    """Rewrite one tensor's shape in the safetensors header (data unchanged), then re-sign."""

    def edit(directory: Path) -> None:
        weights = directory / WEIGHTS_FILE
        data = weights.read_bytes()
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        header[name]["shape"] = shape
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        weights.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size :])
        _re_sign(directory)

    return edit


def _metadata_text(text: str) -> Callable[[Path], object]:
    return lambda directory: (directory / METADATA_FILE).write_text(text, encoding="utf-8")


def _format_version_digits(digits: int) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / METADATA_FILE
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"format_version": 1', f'"format_version": {"9" * digits}'))

    return edit


def _save_model(model: Callable[[], EmbeddingPredictor]) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        built = model()
        return lambda: save_checkpoint(built, tmp_path / "ckpt")

    return arrange


def _sparse_parameter() -> EmbeddingPredictor:
    model = tiny_model()
    model.norm.weight = torch.nn.Parameter(model.norm.weight.detach().to_sparse())
    return model


def _raise(exc: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _overwrite_failing(target: str, failure: Callable[..., Any]) -> Arrange:
    """A checkpoint exists; saving over it fails in ``target`` (a name in the checkpoint module)."""

    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        directory = save_checkpoint(tiny_model(seed=1), tmp_path / "ckpt")
        monkeypatch.setattr(checkpoint_module, target, failure)
        model = tiny_model()
        return lambda: save_checkpoint(model, directory, overwrite=True)

    return arrange


def _final_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
    """The old checkpoint is moved aside, then moving the new one in fails: the old comes back."""
    directory = save_checkpoint(tiny_model(seed=1), tmp_path / "ckpt")
    rename = Path.rename

    def failing_rename(self: Path, target: Any) -> Any:
        if self.name.endswith(".tmp") and Path(target) == directory:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    model = tiny_model()
    return lambda: save_checkpoint(model, directory, overwrite=True)


def _export_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
    (tmp_path / "model.onnx").write_bytes(b"the previous export")
    monkeypatch.setattr(Path, "write_bytes", _raise(_disk_full()))
    model = tiny_model()
    return lambda: export_onnx(model, tmp_path / "model.onnx")


def _report_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
    """Through the real atomic path: its staging file is removed, the old report is kept."""
    (tmp_path / "evaluation.md").write_text("the previous report\n", encoding="utf-8")
    monkeypatch.setattr(Path, "write_text", _raise(_disk_full()))
    return lambda: _write_report(tmp_path / "evaluation.md", "# new report\n")


CHECKPOINT_CASES = [
    *(
        Case(
            f"checkpoint-signed-{name}-tensor",
            "checkpoint",
            _saved(_one_tensor_as(dtype)),
            CheckpointError,
            f"1 tensor(s) have the wrong dtype ('norm.weight' is {name}); expected float32",
        )
        for name, dtype in (
            ("int64", torch.int64),
            ("float16", torch.float16),
            ("bfloat16", torch.bfloat16),
            ("bool", torch.bool),
            ("float64", torch.float64),
        )
    ),
    Case(
        "checkpoint-declares-hidden-dim-1e9",
        "checkpoint",
        _saved(_declared_config(hidden_dim=10**9, num_heads=1)),
        CheckpointError,
        "check input_dim, hidden_dim, mlp_ratio and num_layers (got {",  # too many parameters
    ),
    Case(
        "checkpoint-declares-hidden-dim-4096",  # within the parameter bound: the header says no
        "checkpoint",
        _saved(_declared_config(hidden_dim=4096, num_heads=1)),
        CheckpointError,
        "'blocks.0.attn.proj.weight: (32, 32) in file, (4096, 4096) expected'",
    ),
    Case(
        "checkpoint-declares-num-layers-1e5",  # within the parameter bound: the header says no
        "checkpoint",
        _saved(_declared_config(num_layers=10**5)),
        CheckpointError,
        "declares num_layers=100000, model.safetensors holds 2 block(s)",
    ),
    Case(
        "checkpoint-header-declares-a-huge-shape",
        "checkpoint",
        _saved(_header_declares("norm.weight", [10**9, 10**9])),
        CheckpointError,
        "not a readable safetensors file (Error while deserializing header",
    ),
    Case(
        "checkpoint-header-declares-another-shape",
        "checkpoint",
        _saved(_header_declares("norm.weight", [4, 8])),
        CheckpointError,
        "shape mismatches ['norm.weight: (4, 8) in file, (32,) expected']",
    ),
    Case(
        "checkpoint-metadata-nested-100000-deep",
        "checkpoint",
        _saved(_metadata_text("[" * 100_000 + "]" * 100_000)),
        CheckpointError,
        "metadata.json: not valid JSON for a checkpoint (JSON nested more than 100 levels",
    ),
    Case(
        "checkpoint-metadata-integer-of-5000-digits",
        "checkpoint",
        _saved(_format_version_digits(5000)),
        CheckpointError,
        "metadata.json: not valid JSON for a checkpoint (JSON number has more than 4300 digits",
    ),
    Case(
        "checkpoint-metadata-integer-of-4000-digits",
        "checkpoint",
        _saved(_format_version_digits(4000)),
        CheckpointError,
        "unknown checkpoint format version <int of about 400",  # shown(), never 4000 digits
    ),
    Case(
        "checkpoint-metadata-duplicate-key",
        "checkpoint",
        _saved(_metadata_text('{"format_version": 1, "format_version": 1}')),
        CheckpointError,
        "duplicate key 'format_version'",
    ),
    Case(
        "checkpoint-save-sparse-parameter",
        "checkpoint",
        _save_model(_sparse_parameter),
        CheckpointError,
        "norm.weight is sparse (torch.sparse_coo); expected a dense tensor",
    ),
    Case(
        "checkpoint-save-float16-model",
        "checkpoint",
        _save_model(lambda: tiny_model().half()),
        CheckpointError,
        "34 tensor(s) are not dense float32 (pred_token is float16; expected float32",
    ),
    Case(
        "checkpoint-save-disk-full-in-safetensors",
        "disk-full",
        _overwrite_failing("save_file", _raise(_disk_full())),
        CheckpointWriteError,
        "ckpt: the disk is full; the previous checkpoint there is unchanged",
    ),
    Case(
        "checkpoint-save-safetensor-error",
        "disk-full",
        _overwrite_failing(
            "save_file",
            _raise(SafetensorError("Error while serializing: IoError(Os { code: 28 })")),
        ),
        CheckpointWriteError,
        # safetensors' "Os { code: 28 }" is ENOSPC: read as such since round 3 (atomic.write_error)
        "ckpt: the disk is full; the previous checkpoint there is unchanged",
    ),
    Case(
        "checkpoint-save-disk-full-writing-metadata",
        "disk-full",
        _overwrite_failing("write_text_synced", _raise(_disk_full())),
        CheckpointWriteError,
        "cannot write checkpoint",
    ),
    Case(
        "checkpoint-save-final-rename-fails",
        "disk-full",
        _final_rename_fails,
        CheckpointWriteError,
        "OSError: '[Errno 5] Input/output error'; the previous checkpoint there is unchanged",
    ),
    Case(
        "report-disk-full",
        "disk-full",
        _report_disk_full,
        WriteError,
        "evaluation.md: No space left on device (the disk is full); expected a writable folder",
    ),
    Case(
        "export-disk-full",
        "disk-full",
        _export_disk_full,
        ExportError,
        "model.onnx: No space left on device",
    ),
]


# ------------------------------------------------------------------------ ONNX metadata JSON


def _onnx_with_prop(key: str, value: str) -> Callable[[], bytes]:
    """An export whose ``key`` metadata entry is ``value``, re-signed so the hash matches."""

    def content() -> bytes:
        model = onnx.ModelProto()
        model.ParseFromString(_onnx_bytes())
        entries = {p.key: p.value for p in model.metadata_props if p.key.startswith("prime.")}
        entries.pop(SHA256_KEY)
        entries[key] = value
        entries[SHA256_KEY] = content_sha256(model, entries)
        del model.metadata_props[:]
        for name, text in sorted(entries.items()):
            model.metadata_props.add(key=name, value=text)
        return bytes(model.SerializeToString())

    return content


def _onnx_file(content: Callable[[], bytes]) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        path = tmp_path / "model.onnx"
        path.write_bytes(content())
        return lambda: load_onnx(path)

    return arrange


ONNX_CASES = [
    Case(
        "onnx-metadata-nested-100000-deep",
        "onnx-file",
        _onnx_file(_onnx_with_prop("prime.predictor_config", "[" * 100_000 + "]" * 100_000)),
        ExportError,
        "metadata prime.predictor_config: JSON nested more than 100 levels deep",
    ),
    Case(
        "onnx-metadata-integer-of-5000-digits",
        "onnx-file",
        _onnx_file(_onnx_with_prop("prime.quantization", '{"bits": ' + "9" * 5000 + "}")),
        ExportError,
        "metadata prime.quantization: JSON number has more than 4300 digits",
    ),
    Case(
        "onnx-metadata-format-version-of-100000-characters",
        "onnx-file",
        _onnx_file(_onnx_with_prop("prime.format_version", "7" * 100_000)),
        ExportError,
        "unknown PRIME ONNX format version '77777",
    ),
]


# ---------------------------------------------------------------------------------- devices


def _no_cuda(monkeypatch: pytest.MonkeyPatch, count: int = 0) -> None:
    """This machine, as far as torch can tell, has ``count`` CUDA devices."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def _device(make: Callable[[EmbeddingPredictor, Path], object], gpus: int = 0) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        _no_cuda(monkeypatch, gpus)
        model = tiny_model()
        return lambda: make(model, tmp_path)

    return arrange


def _load_on(device: str) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        directory = save_checkpoint(tiny_model(), tmp_path / "ckpt")
        _no_cuda(monkeypatch)
        return lambda: load_checkpoint(directory, device=device)

    return arrange


def _onnx_on(device: str) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        path = tmp_path / "model.onnx"
        path.write_bytes(_onnx_bytes())
        _no_cuda(monkeypatch)
        return lambda: create_predictor(path, backend="onnx", device=device)

    return arrange


def _train_on(accelerator: str, devices: int | str = "auto", gpus: int = 0) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        _no_cuda(monkeypatch, gpus)
        train, val = make_encoded(m=32, d=16, k=8), make_encoded(m=16, d=16, k=8, seed=1)
        config = TrainingConfig(
            batch_size=16, max_steps=2, warmup_steps=1, max_epochs=1,
            accelerator=accelerator, devices=devices,
        )  # fmt: skip
        return lambda: train_predictor(train, val, CONFIG, config, tmp_path / "run")

    return arrange


NO_CUDA = "but no CUDA device is available on this machine"

DEVICE_CASES = [
    Case(
        "device-cuda-eager",
        "device",
        _device(lambda m, _: create_predictor(m, backend="eager", device="cuda")),
        PredictorError,
        f"device 'cuda' was asked for, {NO_CUDA} (torch.cuda.is_available() is False); "
        "pass device='cpu'",
    ),
    Case(
        "device-cuda-3-compiled",
        "device",
        _device(lambda m, _: create_predictor(m, backend="compiled", device="cuda:3")),
        PredictorError,
        f"device 'cuda:3' was asked for, {NO_CUDA}",
    ),
    Case(
        "device-cuda-3-on-a-one-gpu-machine",
        "device",
        _device(lambda m, _: create_predictor(m, backend="eager", device="cuda:3"), gpus=1),
        PredictorError,
        "device 'cuda:3' was asked for, but this machine has 1 CUDA device(s) (cuda:0 to cuda:0)",
    ),
    Case(
        "device-cuda-eager-predictor",
        "device",
        _device(lambda m, _: EagerPredictor(m, "cuda")),
        PredictorError,
        NO_CUDA,
    ),
    Case(
        "device-cuda-optimized-predictor",
        "device",
        _device(lambda m, _: OptimizedPredictor(m, device="cuda:0", compile=False)),
        PredictorError,
        NO_CUDA,
    ),
    Case(
        "device-cuda-load-checkpoint",
        "device",
        _load_on("cuda"),
        PredictorError,
        NO_CUDA,
    ),
    Case(
        "device-cuda-onnx-file",
        "device",
        _onnx_on("cuda:1"),
        PredictorError,
        f"device 'cuda:1' was asked for, {NO_CUDA}",
    ),
    Case(
        "device-unsupported-type",
        "device",
        _device(lambda m, _: create_predictor(m, backend="eager", device="meta")),
        PredictorError,
        "unsupported device 'meta'; expected 'cpu', 'cuda', 'cuda:<index>', 'mps' or 'auto'",
    ),
    Case(
        "training-accelerator-gpu-without-one",
        "training",
        _train_on("gpu"),
        ConfigError,
        "accelerator 'gpu' asks for a GPU, but no CUDA device is available on this machine "
        "(torch.cuda.is_available() is False); set accelerator: cpu",
    ),
    Case(
        "training-accelerator-cuda-without-one",
        "training",
        _train_on("cuda", devices=1),
        ConfigError,
        "accelerator 'cuda' asks for a GPU, but no CUDA device is available",
    ),
    Case(
        "training-more-gpus-than-the-machine-has",
        "training",
        _train_on("gpu", devices=4, gpus=2),
        ConfigError,
        "devices=4 asks for 4 GPUs, but this machine has 2 CUDA device(s)",
    ),
    Case(
        "training-accelerator-lightning-refuses",
        "training",
        _train_on("cpu", devices="x"),
        ConfigError,
        "Lightning cannot train with accelerator='cpu', devices='x'",
    ),
]


# ----------------------------------------------------------------------- FIFOs (would hang)


def _fifo(name: str, call: Callable[[Path], object]) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        path = tmp_path / name
        os.mkfifo(path)
        return lambda: call(path)

    return arrange


def _fifo_in_checkpoint(name: str) -> Arrange:
    def arrange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
        directory = save_checkpoint(tiny_model(), tmp_path / "ckpt")
        (directory / name).unlink()
        os.mkfifo(directory / name)
        return lambda: load_checkpoint(directory)

    return arrange


def _resume_from_fifo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trigger:
    out = tmp_path / "run"
    (out / "lightning").mkdir(parents=True)
    os.mkfifo(out / "lightning" / "last.ckpt")
    train, val = make_encoded(m=32, d=16, k=8), make_encoded(m=16, d=16, k=8, seed=1)
    config = TrainingConfig(
        batch_size=16, max_steps=2, warmup_steps=1, accelerator="cpu", max_epochs=1
    )
    return lambda: train_predictor(train, val, CONFIG, config, out, resume=True)


FIFO = "is a named pipe (FIFO)"

FIFO_CASES = [
    Case(
        "fifo-onnx-create-predictor",
        "fifo",
        _fifo("model.onnx", lambda p: create_predictor(p, backend="onnx")),
        ExportError,
        f"model.onnx: cannot read ONNX file: it {FIFO}",
    ),
    Case(
        "fifo-onnx-auto-backend",
        "fifo",
        _fifo("model.onnx", create_predictor),
        ExportError,
        FIFO,
    ),
    Case(
        "fifo-onnx-load",
        "fifo",
        _fifo("model.onnx", load_onnx),
        ExportError,
        "expected a regular file",
    ),
    Case(
        "fifo-as-checkpoint-directory",
        "fifo",
        _fifo("ckpt", load_checkpoint),
        CheckpointError,
        f"ckpt {FIFO}; expected a checkpoint directory holding model.safetensors",
    ),
    Case(
        "fifo-as-checkpoint-to-create-predictor",
        "fifo",
        _fifo("ckpt", lambda p: create_predictor(p, backend="eager")),
        CheckpointError,
        f"ckpt {FIFO}; expected a checkpoint directory",
    ),
    Case(
        "fifo-as-checkpoint-metadata",
        "fifo",
        _fifo_in_checkpoint(METADATA_FILE),
        CheckpointError,
        f"metadata.json: cannot read metadata.json: it {FIFO}",
    ),
    Case(
        "fifo-as-checkpoint-weights",
        "fifo",
        _fifo_in_checkpoint(WEIGHTS_FILE),
        CheckpointError,
        f"model.safetensors: cannot read the weights file: it {FIFO}",
    ),
    Case(
        "fifo-as-last-ckpt-to-resume",
        "fifo",
        _resume_from_fifo,
        CheckpointError,
        f"last.ckpt: cannot read Lightning checkpoint to resume: it {FIFO}",
    ),
]

CASES = [*PREDICTOR_CASES, *CHECKPOINT_CASES, *ONNX_CASES, *DEVICE_CASES, *FIFO_CASES]


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its kind, mode and content hash; FIFOs are never opened."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            kind = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            kind = "dir" if stat.S_ISDIR(info.st_mode) else "fifo/other"
        seen[str(path.relative_to(root))] = f"{kind} {stat.S_IMODE(info.st_mode):o}"
    return seen


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_gives_a_typed_error_and_writes_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = case.arrange(tmp_path, monkeypatch)
    before = _snapshot(tmp_path)
    error = _call_with_deadline(trigger)
    monkeypatch.undo()  # the snapshot below must use the real file system calls
    assert error is not None, "the hostile input was accepted"
    assert isinstance(error, PrimeError), f"untyped {type(error).__name__}: {error}"
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    assert case.match in str(error)
    assert _snapshot(tmp_path) == before, "the failed call left files behind or changed some"


def test_the_table_has_unique_ids_and_covers_every_class() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    groups = Counter(case.group for case in CASES)
    assert set(groups) == {
        "predictor",
        "onnx-predictor",
        "checkpoint",
        "disk-full",
        "onnx-file",
        "device",
        "training",
        "fifo",
    }
    assert groups["predictor"] == groups["onnx-predictor"] == len(HOSTILE_REQUESTS)


def test_a_failed_overwrite_leaves_the_previous_checkpoint_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tiny_model(seed=1)
    directory = save_checkpoint(old, tmp_path / "ckpt")
    monkeypatch.setattr(checkpoint_module, "save_file", _raise(_disk_full()))
    with pytest.raises(CheckpointError, match="the previous checkpoint there is unchanged"):
        save_checkpoint(tiny_model(), directory, overwrite=True)
    monkeypatch.undo()
    loaded = load_checkpoint(directory).model
    for name, tensor in old.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_first_save_on_a_full_disk_says_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "save_file", _raise(_disk_full()))
    with pytest.raises(CheckpointError, match="the disk is full; nothing was written there"):
        save_checkpoint(tiny_model(), tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", list(HOSTILE_REQUESTS))
def test_eager_and_onnx_refuse_identically(name: str, tmp_path: Path) -> None:
    change, _ = HOSTILE_REQUESTS[name]
    errors = []
    for arrange in (_eager_model(change), _onnx_predictor(change)):
        with pytest.raises(PredictorError) as info:
            arrange(tmp_path, pytest.MonkeyPatch())()
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_values_at_the_bound_are_served_and_backends_agree(tmp_path: Path) -> None:
    """The bound refuses only what overflows: inputs right at it give finite, equal outputs."""
    context, query, mask = valid_inputs()
    context = np.clip(context * MAX_INPUT_MAGNITUDE, -MAX_INPUT_MAGNITUDE, MAX_INPUT_MAGNITUDE)
    query = np.full_like(query, -MAX_INPUT_MAGNITUDE)
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_bytes())
    onnx_out = create_predictor(path, backend="onnx").predict(context, query, mask)
    with torch.inference_mode():
        eager_out = tiny_model()(*_as_tensors((context, query, mask))).numpy()
    assert np.isfinite(onnx_out).all() and np.isfinite(eager_out).all()
    np.testing.assert_allclose(onnx_out, eager_out, atol=1e-5)
    float64_out = create_predictor(tiny_model(), backend="eager").predict(
        context.astype(np.float64), query.astype(np.float64), mask
    )
    np.testing.assert_allclose(float64_out, eager_out, atol=1e-6)


# ------------------------------------------------------------------------------------ umask


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_atomic_writes_honour_the_umask(mask: int, tmp_path: Path) -> None:
    """Like a plain open()/mkdir: 0666 & ~umask for files, 0777 & ~umask for directories."""
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    with _umask(mask):
        checkpoint = save_checkpoint(tiny_model(), tmp_path / "ckpt")
        save_checkpoint(tiny_model(seed=1), checkpoint, overwrite=True)  # the replacing path too
        report = write_text_atomic(tmp_path / "report.md", "# report\n")
        with atomic_file(tmp_path / "blob.bin") as staging:
            staging.write_bytes(b"blob")
        with atomic_directory(tmp_path / "tree") as staging:
            (staging / "sub").mkdir()
            (staging / "sub" / "leaf.txt").write_text("leaf", encoding="utf-8")
        export = export_onnx(tiny_model(), tmp_path / "model.onnx").path
    assert _mode(checkpoint) == dir_mode
    assert _mode(checkpoint / WEIGHTS_FILE) == file_mode
    assert _mode(checkpoint / METADATA_FILE) == file_mode
    for path in (report, tmp_path / "blob.bin", tmp_path / "tree" / "sub" / "leaf.txt", export):
        assert _mode(path) == file_mode, path
    assert _mode(tmp_path / "tree") == _mode(tmp_path / "tree" / "sub") == dir_mode
    assert load_checkpoint(checkpoint).metadata.predictor_config == CONFIG


def test_an_encoder_on_a_missing_gpu_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder  # noqa: PLC0415

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device is available"):
        SentenceTransformerEncoder(EncoderConfig(device="cuda"))
