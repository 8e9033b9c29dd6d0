"""Turn tables <-> Parquet, loaded back through ``conform_frame`` (lists, dtypes, column order)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pandas as pd
from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from prime_model.data.schema import conform_frame

FILENAME = "turns.parquet"


class TurnTableMaterializer(BaseMaterializer):
    """Used explicitly by the steps that output turn tables (not for every DataFrame)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (pd.DataFrame,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    SKIP_REGISTRATION: ClassVar[bool] = True

    def save(self, data: pd.DataFrame) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            local = os.path.join(tmp, FILENAME)
            data.to_parquet(local, index=False)
            fileio.copy(local, os.path.join(self.uri, FILENAME), overwrite=True)

    def load(self, data_type: type[Any]) -> pd.DataFrame:
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            local = os.path.join(tmp, FILENAME)
            fileio.copy(os.path.join(self.uri, FILENAME), local, overwrite=True)
            return conform_frame(pd.read_parquet(local), source=self.uri)

    def extract_metadata(self, data: pd.DataFrame) -> dict[str, MetadataType]:
        return {"rows": len(data), "conversations": int(data["conversation_id"].nunique())}
