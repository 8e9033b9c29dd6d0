"""PredictorCheckpoint <-> a PRIME checkpoint directory in the artifact store.

The only writer of a pipeline's checkpoint: training hands it over in memory, with the sha256
of the bytes written here. Loading goes through ``load_checkpoint``, so size, sha256 and shapes
are verified every time a step receives the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from prime_model.checkpoint import (
    METADATA_FILE,
    WEIGHTS_FILE,
    PredictorCheckpoint,
    load_checkpoint,
    write_checkpoint,
)

FILES = (WEIGHTS_FILE, METADATA_FILE)


class PredictorCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (PredictorCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: PredictorCheckpoint) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            local = write_checkpoint(data, Path(tmp) / "checkpoint")
            for name in FILES:
                fileio.copy(str(local / name), os.path.join(self.uri, name), overwrite=True)

    def load(self, data_type: type[Any]) -> PredictorCheckpoint:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            for name in FILES:
                fileio.copy(os.path.join(self.uri, name), os.path.join(tmp, name), overwrite=True)
            return load_checkpoint(tmp)

    def extract_metadata(self, data: PredictorCheckpoint) -> dict[str, MetadataType]:
        metrics = data.metadata.training.get("metrics", {})
        return {
            "parameters": sum(p.numel() for p in data.model.parameters()),
            "weights_sha256": data.metadata.weights_sha256,
            "predictor_config": data.metadata.predictor_config.model_dump(),
            **{f"best_{k.replace('/', '_')}": float(v) for k, v in metrics.items()},
        }

    def save_visualizations(self, data: PredictorCheckpoint) -> dict[str, VisualizationType]:
        path = os.path.join(self.uri, "checkpoint.md")
        config = data.metadata.predictor_config.model_dump()
        lines = ["# PRIME predictor checkpoint", "", "| field | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in config.items()]
        with fileio.open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return {path: VisualizationType.MARKDOWN}
