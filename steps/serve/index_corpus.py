from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.encode.encoders import EncoderConfig
from prime_model.retrieve.building import index_for
from prime_model.retrieve.corpus import CorpusSource
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from steps.materializers import RetrievalIndexMaterializer


@step(output_materializers=RetrievalIndexMaterializer)
def index_corpus(
    turns: pd.DataFrame, encoder: EncoderConfig, corpus: CorpusSource, index: IndexConfig
) -> Annotated[RetrievalIndex, "retrieval_index"]:
    """What serving retrieves from, versioned with the model that predicts into it."""
    return index_for(turns, encoder, corpus, index)
