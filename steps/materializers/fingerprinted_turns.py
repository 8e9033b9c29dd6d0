"""The loaded turn table, with its content fingerprint as ZenML's content hash.

A file source is read again on every run (the file may change under the same path), so its
``turns`` artifact is new each time; ZenML keys the next step's cache by an input's content
hash where the materializer gives one (``CachePolicy.include_artifact_values``), so unchanged
data hits the cache downstream and changed data re-runs it. The same fingerprint is the
artifact's ``fingerprint`` metadata (the model card's dataset version), computed once per save.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
from zenml.artifact_stores.base_artifact_store import BaseArtifactStore
from zenml.metadata.metadata_types import MetadataType

from prime_model.data.source import fingerprint_turns
from steps.materializers.turn_table import TurnTableMaterializer


class FingerprintedTurnTableMaterializer(TurnTableMaterializer):
    """A :class:`TurnTableMaterializer` whose content hash is the dataset fingerprint."""

    # ZenML reads this from the class's own namespace: without it, this class would become the
    # default materializer of every DataFrame (predict_embeddings' output included).
    SKIP_REGISTRATION: ClassVar[bool] = True

    def __init__(self, uri: str, artifact_store: BaseArtifactStore | None = None) -> None:
        super().__init__(uri, artifact_store)
        self._memo: tuple[pd.DataFrame, str] | None = None

    def compute_content_hash(self, data: pd.DataFrame) -> str:
        return self._fingerprint(data)

    def extract_metadata(self, data: pd.DataFrame) -> dict[str, MetadataType]:
        return {**super().extract_metadata(data), "fingerprint": self._fingerprint(data)}

    def _fingerprint(self, data: pd.DataFrame) -> str:
        """Hashing the whole table costs seconds on real data: once per saved object."""
        if self._memo is None or self._memo[0] is not data:
            self._memo = (data, fingerprint_turns(data))
        return self._memo[1]
