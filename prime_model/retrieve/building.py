"""The index a trained model serves with: its training targets or a corpus file, encoded with
the Y-Encoder behind the on-disk cache (the targets were just encoded for training)."""

from __future__ import annotations

import pandas as pd

from prime_model.encode.cache import cached, default_cache_dir
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder
from prime_model.retrieve.corpus import CorpusSource, build_index, corpus_from_turns, read_corpus
from prime_model.retrieve.index import IndexConfig, RetrievalIndex


def index_for(
    turns: pd.DataFrame, encoder: EncoderConfig, corpus: CorpusSource, config: IndexConfig
) -> RetrievalIndex:
    items = corpus_from_turns(turns) if corpus.path is None else read_corpus(corpus.path)
    loaded = SentenceTransformerEncoder(encoder)
    return build_index(items, cached(loaded, default_cache_dir(), loaded.identity), config)
