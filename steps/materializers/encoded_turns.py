"""EncodedTurns <-> one safetensors file in the artifact store (no pickle, fast to load)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from prime_model.encode.encoding import EncodedTurns

FILENAME = "encoded_turns.safetensors"


class EncodedTurnsMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EncodedTurns,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: EncodedTurns) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            local = data.save(os.path.join(tmp, FILENAME))
            fileio.copy(str(local), os.path.join(self.uri, FILENAME), overwrite=True)

    def load(self, data_type: type[Any]) -> EncodedTurns:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            local = os.path.join(tmp, FILENAME)
            fileio.copy(os.path.join(self.uri, FILENAME), local, overwrite=True)
            return EncodedTurns.load(local)

    def extract_metadata(self, data: EncodedTurns) -> dict[str, MetadataType]:
        return {
            "turns": len(data),
            "corpus_size": len(data.corpus_ids),
            "max_context_turns": int(data.context_mask.shape[1]),
            "encoder": data.encoder_name,
            "dim": data.dim,
            "fingerprint": data.fingerprint(),
        }
