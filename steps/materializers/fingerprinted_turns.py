"""The loaded turn table, with its content fingerprint as ZenML's content hash.

A file source is read again on every run (the file may change under the same path), so its
``turns`` artifact is new each time; ZenML keys the next step's cache by an input's content
hash where the materializer gives one (``CachePolicy.include_artifact_values``), so unchanged
data hits the cache downstream and changed data re-runs it.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from prime_model.data.source import fingerprint_turns
from steps.materializers.turn_table import TurnTableMaterializer


class FingerprintedTurnTableMaterializer(TurnTableMaterializer):
    """A :class:`TurnTableMaterializer` whose content hash is the dataset fingerprint."""

    # ZenML reads this from the class's own namespace: without it, this class would become the
    # default materializer of every DataFrame (predict_embeddings' output included).
    SKIP_REGISTRATION: ClassVar[bool] = True

    def compute_content_hash(self, data: pd.DataFrame) -> str:
        return fingerprint_turns(data)
