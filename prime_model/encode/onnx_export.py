"""Tracing the whole Y-Encoder to ONNX, and the ONNX Runtime session that serves it.

The whole ``SentenceTransformer`` module (transformer, its own pooling, Normalize if present) is
exported with ``torch.onnx.export(dynamo=True)``, so CLS-pooling models stay CLS-pooled; a model
the exporter cannot trace is refused, never re-implemented with a guessed pooling.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch

from prime_model.errors import OnnxEncoderError
from prime_model.logs import quiet_loggers

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

OPSET: Final = 20  # the dynamo exporter's default; ONNX Runtime 1.18+ runs it
OUTPUT_NAME: Final = "sentence_embedding"
_EXPORTER_LOGGERS: Final = ("onnxscript", "onnx_ir", "torch.onnx._internal.exporter._registration")


class _Pair(torch.nn.Module):
    """The sentence-transformer as a plain (input_ids, attention_mask) -> embedding module."""

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        out: torch.Tensor = self.model(features)[OUTPUT_NAME]
        return out


class _Triple(_Pair):
    """As :class:`_Pair`, for tokenizers that also produce ``token_type_ids`` (BERT)."""

    def forward(  # type: ignore[override]
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        features = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        out: torch.Tensor = self.model(features)[OUTPUT_NAME]
        return out


@contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporter warns about things that are fine here (merged axis names, torchvision ops it
    skips) and its optimiser logs every pass on INFO; keep both out of logs and warnings."""
    with quiet_loggers(*_EXPORTER_LOGGERS, level=logging.ERROR), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        yield


def untyped_reason(exc: Exception) -> str:
    """The first line of an exception from a library whose errors are many and untyped."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def export_graph(
    model: SentenceTransformer,
    example: Mapping[str, npt.NDArray[np.int64]],
    input_names: Sequence[str],
    max_seq_length: int | None,
    name: str,
) -> bytes:
    """The serialised ONNX graph of ``model`` with dynamic batch and sequence axes; ``example``
    (tokenised, batch 2: no 0/1 specialising) is what the tracer runs."""
    started = time.perf_counter()
    module = model if _on_cpu_fp32(model) else copy.deepcopy(model).float().cpu()
    wrapper = (_Triple if "token_type_ids" in input_names else _Pair)(module).eval()
    args = tuple(torch.from_numpy(example[key]) for key in input_names)
    batch = torch.export.Dim("batch", min=1)
    seq = torch.export.Dim("seq", min=1, max=max_seq_length)
    axes = {0: batch, 1: seq}
    try:
        with _quiet_export(), torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(
                wrapper,
                args,
                None,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
                opset_version=OPSET,
                input_names=list(input_names),
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dict.fromkeys(input_names, axes),
            )
    except Exception as exc:  # the exporter's errors are many and untyped
        raise OnnxEncoderError(
            f"torch.onnx.export cannot trace Y-Encoder {name!r} ({untyped_reason(exc)}); "
            "expected a sentence-transformers model whose modules torch.export supports. Serve "
            "it with SentenceTransformerEncoder instead: pooling is not re-implemented by hand"
        ) from None
    if program is None:  # pragma: no cover - only with f= given
        raise OnnxEncoderError("torch.onnx.export returned no program")
    data: bytes = program.model_proto.SerializeToString()
    logger.info(
        "ONNX Y-Encoder %s: exported (%.1f MB, %.1f s)",
        name,
        len(data) / 1e6,
        time.perf_counter() - started,
    )
    return data


def make_session(data: bytes, *, threads: int, allow_spinning: bool, path: Path) -> Any:
    """An ONNX Runtime CPU session sized for serving: ``threads`` intra-op threads, one
    sequential executor (the graph is a chain), no spinning unless asked for; ``path`` names
    the graph in errors."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    if not allow_spinning:  # idle pool threads sleep instead of burning a core
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise OnnxEncoderError(
            f"ONNX Y-Encoder {path} cannot be loaded by ONNX Runtime {ort.__version__} "
            f"({untyped_reason(exc)}); expected a graph its CPU execution provider runs"
        ) from None


def _on_cpu_fp32(model: SentenceTransformer) -> bool:
    return all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
