"""Which backend answers: the one chooser from a model, a checkpoint or an exported file to a
predictor.

It loads what was built and never builds: the ONNX backends run a verified file written by the
export step (``export_onnx`` in the pipelines, ``prime export`` by hand), so nothing is exported
or quantised here and a served model is always the one that passed the export's parity and
Recall@10 checks. Asking for an ONNX backend without such a file is a :class:`PredictorError`
that says how to write one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal, TypeAlias

import torch

from prime_model.checkpoint import PredictorCheckpoint, load_checkpoint
from prime_model.devices import check_device
from prime_model.errors import PredictorError
from prime_model.model import EmbeddingPredictor
from prime_model.runtime.calibration import random_batch
from prime_model.runtime.cpu import instruction_set
from prime_model.runtime.inference import (
    BACKENDS,
    DEFAULT_BUCKETS,
    EagerPredictor,
    InferencePredictor,
    parity,
)
from prime_model.runtime.onnx_file import VerifiedOnnx
from prime_model.runtime.onnx_runtime import OnnxPredictor
from prime_model.runtime.optimized import OptimizedPredictor

logger = logging.getLogger(__name__)

Backend: TypeAlias = Literal["auto", "eager", "compiled", "onnx", "onnx-int8"]
Source: TypeAlias = EmbeddingPredictor | PredictorCheckpoint | str | Path

AUTO: Final = "auto"
INT8_MIN_COSINE: Final = 0.999
"""Least cosine an int8 model's rows may have to fp32's: the export judges int8 by it, and a
stored int8 model is re-checked by it on a CPU other than the one it was judged on."""
_RECHECK_ROWS: Final = 32
EXPORT_HINT: Final = (
    "export it first: `prime export --checkpoint CKPT_DIR --out model.onnx` (add "
    "`--int8 model-int8.onnx --data TURNS_FILE` for int8, kept only when Recall@10 holds) and "
    "pass the .onnx file, or use the pipeline's onnx_model / onnx_int8_model artifacts"
)


def resolve_device(
    device: str | torch.device | None, model: EmbeddingPredictor | None
) -> torch.device:
    """None: the model's device (CPU for a file); "auto": CUDA when available, else CPU.

    A device this machine lacks (``cuda`` without a GPU, ``cuda:3`` on a 1-GPU host) is a
    :class:`PredictorError` here, not an ``AssertionError`` at the first ``.to()``.
    """
    if device is None:
        return model.pred_token.device if model is not None else torch.device("cpu")
    return check_device(device, PredictorError)


def int8_holds_here(
    int8: VerifiedOnnx, fp32: VerifiedOnnx, min_cosine: float | None = None
) -> bool:
    """Whether a stored int8 model still matches its fp32 source on this CPU.

    int8 was judged on the CPU it was exported on; dynamic int8's error differs between CPUs
    with and without VNNI, so on another instruction set it is re-checked on random inputs
    (a second, not the full Recall@10 judgement) before it may serve."""
    min_cosine = INT8_MIN_COSINE if min_cosine is None else min_cosine
    quantization = int8.metadata.quantization or {}
    here = instruction_set().label
    if quantization.get("cpu") == here:
        return True
    config = fp32.metadata.predictor_config
    batch = random_batch(config, _RECHECK_ROWS, config.max_context_length, seed=0)
    stats = parity(
        OnnxPredictor(int8).predict_batch(batch), OnnxPredictor(fp32).predict_batch(batch)
    )
    if stats.min_cosine >= min_cosine:
        return True
    logger.warning(
        "the stored int8 model was judged on a %s CPU; on this %s one its min cosine to fp32 is "
        "%.5f < %s, so fp32 serves (re-export on this machine to choose int8 for it)",
        quantization.get("cpu", "unknown"),
        here,
        stats.min_cosine,
        min_cosine,
    )
    return False


def auto_backend(
    device: torch.device, onnx_fp32: VerifiedOnnx | None, onnx_int8: VerifiedOnnx | None
) -> str:
    """The fastest measured backend among those at hand: CUDA graphs on CUDA; on CPU the stored
    int8 model where it holds on this CPU, else the stored fp32 one, else eager (torch.compile
    measured no faster than eager on CPU)."""
    if device.type == "cuda":
        return "compiled"
    if onnx_int8 is not None and (onnx_fp32 is None or int8_holds_here(onnx_int8, onnx_fp32)):
        return "onnx-int8"
    return "eager" if onnx_fp32 is None else "onnx"


def create_predictor(
    source: Source,
    backend: Backend | str = AUTO,
    device: str | torch.device | None = None,
    *,
    onnx_fp32: VerifiedOnnx | None = None,
    onnx_int8: VerifiedOnnx | None = None,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    threads: int | None = None,
) -> InferencePredictor:
    """One inference interface over a model, a checkpoint (directory) or an exported ``.onnx``.

    ``backend``: "eager", "compiled" (:class:`OptimizedPredictor`), "onnx" / "onnx-int8" (ONNX
    Runtime on ``onnx_fp32`` / ``onnx_int8``, the verified models the export wrote) or "auto"
    (:func:`auto_backend`). A ``.onnx`` source runs as it is (fp32 or int8). ``threads``: ONNX
    Runtime intra-op threads (default: torch's, i.e. the physical cores).
    """
    if backend != AUTO and backend not in BACKENDS:
        raise PredictorError(f"unknown backend {backend!r}; expected auto or one of {BACKENDS}")
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_file() or path.suffix == ".onnx":
            return _file_predictor(path, backend, device, threads)
        source = load_checkpoint(path)
    if isinstance(source, PredictorCheckpoint):
        model = source.model
    elif isinstance(source, EmbeddingPredictor):
        model = source
    else:
        raise PredictorError(
            f"cannot build a predictor from a {type(source).__name__}; expected an "
            "EmbeddingPredictor, a PredictorCheckpoint, a checkpoint directory or a .onnx file"
        )
    target = resolve_device(device, model)
    chosen = auto_backend(target, onnx_fp32, onnx_int8) if backend == AUTO else backend
    if chosen in ("onnx", "onnx-int8"):
        stored = onnx_int8 if chosen == "onnx-int8" else onnx_fp32
        if stored is None:
            raise PredictorError(
                f"backend {chosen!r} runs an exported model and none was given; " + EXPORT_HINT
            )
        logger.info("inference backend: stored %s model (%s)", chosen, stored.sha256[:12])
        return OnnxPredictor(stored, device=target, threads=threads)
    logger.info("inference backend: %s on %s", chosen, target)
    if chosen == "eager":
        return EagerPredictor(model, target)
    return OptimizedPredictor(model, device=target, buckets=buckets)


def _file_predictor(
    path: Path, backend: str, device: str | torch.device | None, threads: int | None
) -> OnnxPredictor:
    if backend in ("eager", "compiled"):
        raise PredictorError(
            f"backend {backend!r} needs the torch model (a checkpoint directory); {path} is an "
            "ONNX file, which runs with backend onnx, onnx-int8 or auto"
        )
    if path.suffix != ".onnx":
        raise PredictorError(
            f"{path} is a file but not a .onnx model; expected a checkpoint directory or .onnx"
        )
    predictor = OnnxPredictor.from_file(path, device=resolve_device(device, None), threads=threads)
    if backend == "onnx-int8" and predictor.backend != "onnx-int8":
        raise PredictorError(
            f"{path} is an fp32 model and backend 'onnx-int8' runs an int8 one; " + EXPORT_HINT
        )
    return predictor
