"""The ONNX Runtime backend: serves PRIME ONNX files once :mod:`prime_model.runtime.onnx_file` has
verified them (fp32 or int8, as the export wrote them; quantising is the export's job)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from prime_model.errors import ExportError, PredictorError
from prime_model.runtime.inference import Batch, FloatArray, InferencePredictor
from prime_model.runtime.inputs import optional_inputs
from prime_model.runtime.onnx_file import (
    CONCAT_INPUT,
    INPUT_NAMES,
    OUTPUT_NAME,
    ROLES_INPUT,
    OnnxMetadata,
    VerifiedOnnx,
    load_onnx,
)

logger = logging.getLogger(__name__)


def default_threads() -> int:
    """Physical cores: torch sizes its own pool that way, and SMT siblings only contend."""
    return max(1, torch.get_num_threads())


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """All graph optimisations (fusions, constant folding, layout), one sequential executor with
    ``threads`` intra-op threads: the graph is a chain, inter-op parallelism has nothing to do."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's optimiser notes are not the user's concern
    return options


def make_session(data: bytes, device: torch.device, threads: int | None = None) -> Any:
    """An ``InferenceSession`` on the device's execution provider."""
    available = ort.get_available_providers()
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise PredictorError(
                f"ONNX Runtime has no CUDA provider here (available: {available}); run the onnx "
                "backends on device='cpu', or use backend='compiled' on CUDA"
            )
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0})]
    elif device.type == "cpu":
        providers = [("CPUExecutionProvider", {})]
    else:
        raise PredictorError(f"the onnx backends run on cpu or cuda, not {device}")
    try:
        return ort.InferenceSession(data, session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise ExportError(f"ONNX Runtime cannot load the model: {exc}") from None


class OnnxPredictor(InferencePredictor):
    """A verified PRIME ONNX model (fp32 or int8) on ONNX Runtime.

    The graph has dynamic batch and context axes, so requests run at their own size (no padding);
    an empty context (N=0) gets one masked-out turn, which the model ignores. A model with
    ``role_embedding`` / ``concat_input`` has ``context_roles`` / ``concat`` graph inputs too.
    """

    def __init__(
        self,
        onnx_model: VerifiedOnnx,
        *,
        device: torch.device | None = None,
        threads: int | None = None,
    ) -> None:
        meta = onnx_model.metadata
        target = device or torch.device("cpu")
        backend = "onnx-int8" if meta.kind == "int8" else "onnx"
        super().__init__(meta.predictor_config, target, backend)
        self.onnx_model = onnx_model
        self.threads = threads
        self.session = make_session(onnx_model.data, target, threads)

    @classmethod
    def from_file(
        cls, path: str | Path, *, device: torch.device | None = None, threads: int | None = None
    ) -> OnnxPredictor:
        return cls(load_onnx(path), device=device, threads=threads)

    @property
    def metadata(self) -> OnnxMetadata:
        return self.onnx_model.metadata

    @property
    def weight_bytes(self) -> int:
        return self.onnx_model.weight_bytes

    def _predict(self, batch: Batch) -> FloatArray:
        if batch.context.shape[1] == 0:
            batch = batch.padded(batch.size, 1)
        feeds = dict(
            zip(INPUT_NAMES, (batch.context, batch.query, batch.context_mask), strict=True)
        )
        roles, concat = optional_inputs(self.config, batch)  # the graph has exactly these inputs
        if roles is not None:
            feeds[ROLES_INPUT] = roles
        if concat is not None:
            feeds[CONCAT_INPUT] = concat
        try:
            outputs = self.session.run([OUTPUT_NAME], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ExportError(
                f"ONNX Runtime failed to run the model on inputs that passed validation: {exc}"
            ) from None
        return np.asarray(outputs[0], dtype=np.float32)
