"""The int8 Y-Encoder: the verified fp32 graph with dynamic int8 weights (ONNX Runtime).

~1.4x the fp32 graph's speed on an AVX2 CPU, but its vectors differ (mean cosine to fp32 ~0.99,
min ~0.97 on real texts), so it has its own identity (``|int8``: another embedding-cache key and
index fingerprint) and is judged by retrieval, never by cosine alone. Its parity floor
(:data:`MIN_COSINE_INT8`) only catches a broken graph. Cached beside the fp32 graph, with the
same sidecar and sha256 check (:mod:`.onnx_cache`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Final

import onnxruntime as ort

from prime_model.encode.onnx_export import untyped_reason
from prime_model.errors import OnnxEncoderError
from prime_model.logs import quiet_loggers

logger = logging.getLogger(__name__)

__all__ = ["INT8_SUFFIX", "MIN_COSINE_INT8", "int8_identity", "int8_key", "quantize_int8"]

MIN_COSINE_INT8: Final = 0.95
INT8_SUFFIX: Final = "|int8"
SCHEME: Final = "dynamic QInt8 weights, per channel"


def int8_identity(identity: str) -> str:
    """The identity of the int8 encoder made from the encoder with ``identity``."""
    return identity + INT8_SUFFIX


def int8_key(fp32_key: dict[str, str]) -> dict[str, str]:
    """The fp32 graph's cache key plus what quantising adds: a new key, a new folder."""
    return {**fp32_key, "precision": "int8", "quantizer": f"onnxruntime {ort.__version__}|{SCHEME}"}


def quantize_int8(data: bytes, name: str) -> bytes:
    """``data`` (a serialised fp32 graph) with dynamic int8 MatMul weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415 - heavy

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prime-int8-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(data)
        try:  # the quantiser logs every node it skips on the root logger's INFO
            with quiet_loggers("", level=logging.ERROR):
                quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
            quantized = target.read_bytes()
        except Exception as exc:  # the quantiser's errors are many and untyped
            raise OnnxEncoderError(
                f"cannot quantise the ONNX Y-Encoder {name!r} to int8 "
                f"({untyped_reason(exc)}); expected an fp32 graph ONNX Runtime quantises"
            ) from None
    logger.info(
        "ONNX Y-Encoder %s: int8 graph made (%.1f MB, %.1f s)",
        name,
        len(quantized) / 1e6,
        time.perf_counter() - started,
    )
    return quantized
