"""The torch model as an fp32 ONNX graph with dynamic axes and PRIME metadata (not yet checked).

Exporter choice (torch 2.13): ``torch.onnx.export(dynamo=True)``, the default. Both exporters
produced correct graphs here (max abs diff ~1e-7 against eager), but the dynamo one is the
maintained path (the TorchScript exporter is deprecated), it emits the model's ops directly
(``Gelu``, ``LayerNormalization``, an attention subgraph) instead of ~150 ``Constant``/``Shape``
nodes, it does not warn about tracing the position table, and its dynamic axes come from
``torch.export.Dim`` constraints, which are checked rather than assumed. It needs onnxscript.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import onnx
import torch
from safetensors.torch import save as safetensors_bytes

from prime_model.checkpoint import package_version
from prime_model.errors import ExportError
from prime_model.logs import quiet_loggers
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.onnx_file import (
    CONCAT_INPUT,
    OUTPUT_NAME,
    ROLES_INPUT,
    OnnxMetadata,
    embed_metadata,
    input_names,
)
from prime_model.runtime.serving import ServingForward

DEFAULT_OPSET: Final = 20  # the dynamo exporter's own default; ONNX Runtime 1.18+ runs it
MIN_OPSET: Final = 18  # below it the exporter silently writes opset 18 instead


def weights_sha256(model: EmbeddingPredictor) -> str:
    """sha256 of the weights as ``save_checkpoint`` writes them, so it matches a checkpoint's."""
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    return hashlib.sha256(
        safetensors_bytes(state, metadata={"format": "prime-predictor"})
    ).hexdigest()


# the exporter's optimiser logs each pass on INFO ("Replaced initializer ...", "Skipping constant
# folding ...", "Removed 17 unused nodes": ~40 lines an export); its warnings still show
_OPTIMIZER_LOGGERS: Final = ("onnxscript", "onnx_ir")


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter warns about things that are fine here (merged axis names, torchvision ops
    it skips, a pytree deprecation); keep them out of logs and out of warnings-as-errors."""
    with (
        quiet_loggers("torch.onnx._internal.exporter._registration", level=logging.ERROR),
        quiet_loggers(*_OPTIMIZER_LOGGERS),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        yield


def cpu_float_copy(model: EmbeddingPredictor) -> EmbeddingPredictor:
    param = model.pred_token
    if param.device.type == "cpu" and param.dtype == torch.float32 and not model.training:
        return model
    return copy.deepcopy(model).float().cpu().eval()


_STAGING_OUTPUT: Final = "prime_output"


def _name_output(graph: onnx.GraphProto) -> None:
    """Give the output its public name, :data:`OUTPUT_NAME`. The exporter names each value after
    its op, so the role embedding's lookup is already called "embedding": it is renamed first,
    or the graph would not be in SSA form."""
    renames = {OUTPUT_NAME: f"{OUTPUT_NAME}_lookup", _STAGING_OUTPUT: OUTPUT_NAME}
    for node in graph.node:
        for values in (node.input, node.output):
            values[:] = [renames.get(name, name) for name in values]
    for value in (*graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)


def to_onnx_model(
    model: EmbeddingPredictor, *, opset: int = DEFAULT_OPSET, source_sha256: str | None = None
) -> onnx.ModelProto:
    """Trace ``model`` to an fp32 ONNX graph with dynamic batch/context axes and PRIME metadata."""
    if opset < MIN_OPSET:
        raise ExportError(
            f"opset {opset} is not supported: torch.onnx.export writes opset {MIN_OPSET} or "
            f"newer; expected {MIN_OPSET} <= opset (default {DEFAULT_OPSET})"
        )
    model = cpu_float_copy(model)
    cfg = model.config
    n_max = cfg.max_context_length
    # example sizes of 2 keep torch.export from specialising the dynamic axes to 0/1
    example_n = min(2, n_max)
    example = (
        torch.randn(2, example_n, cfg.input_dim),
        torch.randn(2, cfg.input_dim),
        torch.ones(2, example_n, dtype=torch.bool),
    )
    batch = torch.export.Dim("batch", min=1)
    dims = {0: batch, 1: torch.export.Dim("turns", min=1, max=n_max)} if n_max > 1 else {0: batch}
    shapes: dict[str, dict[int, Any]] = {"context": dims, "query": {0: batch}, "context_mask": dims}
    extra: dict[str, torch.Tensor] = {}  # graph inputs only a model with the flag reads
    if cfg.role_embedding:
        extra[ROLES_INPUT] = torch.randint(0, 3, (2, example_n))
        shapes[ROLES_INPUT] = dims
    if cfg.concat_input:
        extra[CONCAT_INPUT] = torch.randn(2, cfg.input_dim)
        shapes[CONCAT_INPUT] = {0: batch}
    try:
        with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(
                ServingForward(model).eval(),  # its forward's argument names name the inputs
                example,
                None,
                kwargs=extra,
                dynamo=True,
                external_data=False,
                verbose=False,
                opset_version=opset,
                input_names=list(input_names(cfg)),
                output_names=[_STAGING_OUTPUT if cfg.role_embedding else OUTPUT_NAME],
                dynamic_shapes=shapes,
            )
    except Exception as exc:  # the exporter's errors are many and untyped
        raise ExportError(f"torch.onnx.export failed at opset {opset}: {exc}") from None
    if program is None:  # pragma: no cover - only with f= given
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    if cfg.role_embedding:
        _name_output(proto.graph)
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter falls back instead of failing: never record a wrong opset
        raise ExportError(
            f"torch.onnx.export wrote opset {written} when asked for opset {opset}; "
            f"choose an opset it can write (default {DEFAULT_OPSET})"
        )
    embed_metadata(
        proto,
        OnnxMetadata(
            kind="fp32",
            predictor_config=cfg,
            weights_sha256=source_sha256 or weights_sha256(model),
            package_version=package_version(),
            opset=opset,
        ),
    )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph fails onnx.checker: {exc}") from None
    return proto
