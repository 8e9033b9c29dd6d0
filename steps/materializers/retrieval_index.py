"""RetrievalIndex <-> its directory in the artifact store, sha256-verified on every load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from prime_model.retrieve.index import RetrievalIndex


class RetrievalIndexMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (RetrievalIndex,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: RetrievalIndex) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            local = data.save(Path(tmp) / "index")
            for path in sorted(local.iterdir()):
                fileio.copy(str(path), os.path.join(self.uri, path.name), overwrite=True)

    def load(self, data_type: type[Any]) -> RetrievalIndex:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            for name in fileio.listdir(self.uri):
                fileio.copy(os.path.join(self.uri, str(name)), os.path.join(tmp, str(name)))
            return RetrievalIndex.load(tmp)

    def extract_metadata(self, data: RetrievalIndex) -> dict[str, MetadataType]:
        return {
            "items": len(data),
            "dim": data.dim,
            "encoder": data.encoder_name,
            "index_config": data.config.model_dump(),
        }
