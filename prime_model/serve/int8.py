"""int8 dynamic quantisation of a verified fp32 ONNX model, in memory, with the options that matter.

Dynamic quantisation needs no calibration data: weights are quantised offline, activations per
call. Whether the result is good enough is judged in :mod:`prime_model.serve.quantize`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from pydantic import BaseModel, ConfigDict, Field

from prime_model.errors import ExportError
from prime_model.serve.onnx_file import OnnxMetadata, VerifiedOnnx, embed_metadata, verify_onnx

_OP_TYPES: Final = ["MatMul", "Gemm"]  # the weight-bearing ops; attention's QKᵀ/AV stay fp32
# the last block's attention is split into last_q / last_kv by prime_model.serve.serving
_ATTENTION_SCOPES: Final = (".attn.", "last_q", "last_kv")  # module paths in "namespace"
_PROJECTION_SCOPES: Final = ("context_proj", "query_proj", "output_proj")


class QuantizationOptions(BaseModel):
    """The choices that matter for dynamic int8 on this model (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_channel: bool = Field(True, description="one scale per output column, not per matrix")
    keep_attention_fp32: bool = Field(False, description="leave qkv and out-projections fp32")
    keep_projections_fp32: bool = Field(
        False, description="leave the input (context/query) and output projections fp32"
    )
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI")

    @property
    def label(self) -> str:
        parts = ["per-channel" if self.per_channel else "per-tensor"]
        if self.keep_attention_fp32:
            parts.append("attention fp32")
        if self.keep_projections_fp32:
            parts.append("in/out projections fp32")
        if self.reduce_range:
            parts.append("reduce-range")
        return ", ".join(parts)


# Measured at the default preset on 2 cores (see quantize.compare_quantization): per-channel
# MatMul/Gemm with everything quantised was the fastest variant within the Recall@10 tolerance.
DEFAULT_OPTIONS: Final = QuantizationOptions()
CANDIDATE_OPTIONS: Final = (
    QuantizationOptions(per_channel=False),
    QuantizationOptions(per_channel=True),
    QuantizationOptions(per_channel=True, keep_attention_fp32=True),
    QuantizationOptions(per_channel=True, keep_projections_fp32=True),
)


@contextmanager
def _no_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic logs a generic 'run pre-processing' hint on the root logger; our graph
    is already optimised by the exporter, so drop that one record."""

    def keep(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _excluded_nodes(model: onnx.ModelProto, options: QuantizationOptions) -> list[str]:
    scopes: list[str] = []
    if options.keep_attention_fp32:
        scopes.extend(_ATTENTION_SCOPES)
    if options.keep_projections_fp32:
        scopes.extend(_PROJECTION_SCOPES)
    if not scopes:
        return []
    excluded = []
    for node in model.graph.node:
        if node.op_type not in _OP_TYPES:
            continue
        namespace = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
        if any(scope in namespace for scope in scopes):
            excluded.append(node.name)
            if node.op_type == "Gemm":  # the quantiser first rewrites Gemm as <name>_MatMul
                excluded.append(f"{node.name}_MatMul")
    if not excluded:
        raise ExportError(
            f"found no nodes of {scopes} to keep in fp32: the graph lacks the exporter's "
            "namespace metadata; export it with prime_model.serve.export.export_onnx"
        )
    return excluded


def quantize_verified(
    fp32: VerifiedOnnx, options: QuantizationOptions = DEFAULT_OPTIONS
) -> VerifiedOnnx:
    """Dynamic int8 (uint8 activations, int8 weights) of a verified fp32 model, in memory."""
    if fp32.metadata.kind != "fp32":
        raise ExportError(f"expected an fp32 model to quantise, got a {fp32.metadata.kind} one")
    model = onnx.load_model_from_string(fp32.data)
    excluded = _excluded_nodes(model, options)
    with tempfile.TemporaryDirectory(prefix="prime-int8-") as tmp, _no_preprocess_hint():
        out = Path(tmp) / "int8.onnx"
        try:
            quantize_dynamic(
                model,
                out,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(_OP_TYPES),
                per_channel=options.per_channel,
                reduce_range=options.reduce_range,
                nodes_to_exclude=excluded,
            )
        except Exception as exc:  # onnxruntime.quantization raises untyped errors
            raise ExportError(f"int8 quantisation failed ({options.label}): {exc}") from None
        quantized = onnx.load(out)
    meta = fp32.metadata
    embed_metadata(
        quantized,
        OnnxMetadata(
            kind="int8",
            predictor_config=meta.predictor_config,
            weights_sha256=meta.weights_sha256,
            package_version=meta.package_version,
            opset=meta.opset,
            quantization={**options.model_dump(), "source_sha256": fp32.sha256},
        ),
    )
    return verify_onnx(quantized.SerializeToString(), "quantised model")
