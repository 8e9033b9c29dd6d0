"""int8 quantisation of a verified fp32 ONNX model, in memory, by one of two schemes.

- ``dynamic``: int8 weights and uint8 activations quantised per call (no calibration data);
  integer matmuls everywhere. Fast with VNNI; without it (AVX2-only) full 8-bit weights saturate,
  so the CPU's default turns on ``reduce_range`` (see :mod:`prime_model.runtime.cpu`).
- ``weight-only``: ``MatMulNBits`` blocks of 8- or 4-bit weights with a scale per block; the
  activations are quantised per block inside the kernel without 16-bit saturation, so its error
  does not depend on VNNI.

Which scheme is accurate *and* fast differs from CPU to CPU, so none is assumed: the candidates
are measured where the model is exported (:func:`prime_model.export.quantize.choose_quantization`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from pydantic import Field

from prime_model.config import FrozenConfig
from prime_model.errors import ExportError
from prime_model.runtime.cpu import InstructionSet, instruction_set
from prime_model.runtime.onnx_file import OnnxMetadata, VerifiedOnnx, embed_metadata, verify_onnx

_OP_TYPES: Final = ["MatMul", "Gemm"]  # the weight-bearing ops; attention's QKᵀ/AV stay fp32
# the last block's attention is split into last_q / last_kv by prime_model.runtime.serving
_ATTENTION_SCOPES: Final = (".attn.", "last_q", "last_kv")  # module paths in "namespace"
_PROJECTION_SCOPES: Final = ("context_proj", "query_proj", "concat_proj", "output_proj")
_INT8_COMPUTE: Final = 4  # MatMulNBits accuracy_level: int8 dot products (fp32 ones are slow)

Scheme = Literal["dynamic", "weight-only"]


class QuantizationOptions(FrozenConfig):
    """The choices that matter for int8 on this model (see the module docstring)."""

    scheme: Scheme = "dynamic"
    per_channel: bool = Field(True, description="dynamic: one scale per output column")
    keep_attention_fp32: bool = Field(False, description="leave qkv and out-projections fp32")
    keep_projections_fp32: bool = Field(
        False, description="leave the input (context/query/concat) and output projections fp32"
    )
    reduce_range: bool = Field(False, description="dynamic: 7-bit weights, for CPUs without VNNI")
    bits: Literal[4, 8] = Field(8, description="weight-only: bits per weight")
    block_size: Literal[16, 32, 64, 128, 256] = Field(
        128, description="weight-only: weights per scale"
    )

    @property
    def label(self) -> str:
        if self.scheme == "weight-only":
            parts = [f"weight-only int{self.bits}", f"block {self.block_size}"]
        else:
            parts = ["dynamic", "per-channel" if self.per_channel else "per-tensor"]
            if self.reduce_range:
                parts.append("reduce-range")
        if self.keep_attention_fp32:
            parts.append("attention fp32")
        if self.keep_projections_fp32:
            parts.append("in/out projections fp32")
        return ", ".join(parts)


def default_options(cpu: InstructionSet | None = None) -> QuantizationOptions:
    """The unmeasured choice for ``cpu`` (default: this one): dynamic per-channel, 7-bit weights
    where there is no VNNI. Used where no evaluation set is at hand to measure candidates."""
    cpu = cpu or instruction_set()
    return QuantizationOptions(reduce_range=not cpu.has_vnni)


def candidate_options(cpu: InstructionSet | None = None) -> tuple[QuantizationOptions, ...]:
    """What :func:`~prime_model.export.quantize.choose_quantization` measures, best guess first."""
    first = default_options(cpu)
    return (
        first,
        first.model_copy(update={"reduce_range": not first.reduce_range}),
        QuantizationOptions(scheme="weight-only", bits=8, block_size=128),
        QuantizationOptions(scheme="weight-only", bits=8, block_size=32),
        QuantizationOptions(scheme="weight-only", bits=4, block_size=32),
    )


@contextmanager
def _quiet_quantizers() -> Iterator[None]:
    """The ORT quantisers log per node and per tensor on INFO, partly on the root logger: not the
    user's concern. Importing matmul_nbits_quantizer calls logging.basicConfig(level=INFO) on the
    root logger, which would turn on every library's INFO logs: undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quantization = logging.getLogger("onnxruntime.quantization")
    previous = quantization.level
    quantization.setLevel(logging.WARNING)

    def keep(record: logging.LogRecord) -> bool:
        quantizer = "onnxruntime" in record.pathname and "quantization" in record.pathname
        hint = "pre-processing" in record.getMessage()  # a generic hint; our graph is optimised
        return not hint and (record.levelno >= logging.WARNING or not quantizer)

    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
        root.handlers[:] = handlers
        root.setLevel(level)
        quantization.setLevel(previous)


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
            if node.op_type == "Gemm":  # both quantisers first rewrite Gemm as <name>_MatMul
                excluded.append(f"{node.name}_MatMul")
    if not excluded:
        raise ExportError(
            f"found no nodes of {scopes} to keep in fp32: the graph lacks the exporter's "
            "namespace metadata; export it with prime_model.export.export.export_onnx"
        )
    return excluded


def _plain_gemm(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> bool:
    attrs: dict[str, Any] = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return (
        node.op_type == "Gemm"
        and node.input[1] in weights
        and len(weights[node.input[1]].dims) == 2
        and attrs.get("transA", 0) == 0
        and attrs.get("alpha", 1.0) == 1.0
        and attrs.get("beta", 1.0) == 1.0
    )


def gemm_as_matmul(model: onnx.ModelProto) -> int:
    """Rewrite ``Gemm(A, W, b)`` with a constant W as ``MatMul(A, W) + b``, in place.

    MatMulNBits replaces MatMul only, and the serving graph's last-token layers export as Gemm;
    left alone they would stay fp32. Returns how many were rewritten."""
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        if not _plain_gemm(node, weights):
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = numpy_helper.to_array(weights[node.input[1]])
        name = f"{node.input[1]}_kn"
        kn = weight.T if attrs.get("transB", 0) else weight
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(kn), name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_product" if has_bias else node.output[0]
        matmul = helper.make_node("MatMul", [node.input[0], name], [product], f"{node.name}_MatMul")
        matmul.metadata_props.extend(node.metadata_props)
        nodes.append(matmul)
        if has_bias:
            nodes.append(
                helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], f"{node.name}_Add"
                )
            )
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return rewritten


def _dynamic(
    model: onnx.ModelProto, options: QuantizationOptions, excluded: list[str]
) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory(prefix="prime-int8-") as tmp:
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            model,
            out,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(_OP_TYPES),
            per_channel=options.per_channel,
            reduce_range=options.reduce_range,
            nodes_to_exclude=excluded,
        )
        return onnx.load(out)


def _weight_only(
    model: onnx.ModelProto, options: QuantizationOptions, excluded: list[str]
) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import (  # noqa: PLC0415 - see above
        MatMulNBitsQuantizer,
    )

    gemm_as_matmul(model)
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=options.bits,
        block_size=options.block_size,
        is_symmetric=True,
        accuracy_level=_INT8_COMPUTE,
        nodes_to_exclude=excluded,
        op_types_to_quantize=("MatMul",),
    )
    quantizer.process()
    quantized: onnx.ModelProto = quantizer.model.model
    return quantized


def quantize_verified(
    fp32: VerifiedOnnx, options: QuantizationOptions | None = None
) -> VerifiedOnnx:
    """int8 of a verified fp32 model, in memory; ``options`` default to this CPU's
    :func:`default_options`."""
    options = options or default_options()
    if fp32.metadata.kind != "fp32":
        raise ExportError(f"expected an fp32 model to quantise, got a {fp32.metadata.kind} one")
    model = onnx.load_model_from_string(fp32.data)
    excluded = _excluded_nodes(model, options)
    quantize = _weight_only if options.scheme == "weight-only" else _dynamic
    with _quiet_quantizers():
        try:
            quantized = quantize(model, options, excluded)
        except Exception as exc:  # onnxruntime.quantization raises untyped errors
            raise ExportError(f"int8 quantisation failed ({options.label}): {exc}") from None
    meta = fp32.metadata
    embed_metadata(
        quantized,
        OnnxMetadata(
            kind="int8",
            predictor_config=meta.predictor_config,
            weights_sha256=meta.weights_sha256,
            package_version=meta.package_version,
            opset=meta.opset,
            quantization={
                **options.model_dump(),
                "source_sha256": fp32.sha256,
                "cpu": instruction_set().label,
            },
        ),
    )
    return verify_onnx(quantized.SerializeToString(), "quantised model")
