"""VerifiedOnnx <-> ``model.onnx`` in the artifact store, re-verified on every load.

Loading goes through ``verify_onnx``: a file whose graph or weights no longer match the sha256
in its own metadata is refused, so a tampered artifact never serves.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from prime_model.runtime.onnx_file import VerifiedOnnx, verify_onnx

FILENAME = "model.onnx"


class VerifiedOnnxMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (VerifiedOnnx,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: VerifiedOnnx) -> None:
        with fileio.open(os.path.join(self.uri, FILENAME), "wb") as handle:
            handle.write(data.data)

    def load(self, data_type: type[Any]) -> VerifiedOnnx:
        path = os.path.join(self.uri, FILENAME)
        with fileio.open(path, "rb") as handle:
            return verify_onnx(handle.read(), path)

    def extract_metadata(self, data: VerifiedOnnx) -> dict[str, MetadataType]:
        meta = data.metadata
        return {
            "kind": meta.kind,
            "sha256": data.sha256,
            "weights_sha256": meta.weights_sha256,
            "opset": meta.opset,
            "bytes": len(data.data),
            "weight_bytes": data.weight_bytes,
        }
