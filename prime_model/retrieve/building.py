"""The index a trained model serves with: its training targets or a corpus file, encoded with
the Y-Encoder (on the engine its config names) behind the on-disk cache (the targets were just
encoded for training), with progress lines off a terminal."""

from __future__ import annotations

import pandas as pd

from prime_model.encode.cache import cached, default_cache_dir
from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.engine import load_encoder
from prime_model.encode.progress import ProgressEncoder
from prime_model.retrieve.corpus import CorpusSource, build_index, corpus_from_turns, read_corpus
from prime_model.retrieve.index import IndexConfig, RetrievalIndex


def index_for(
    turns: pd.DataFrame, encoder: EncoderConfig, corpus: CorpusSource, config: IndexConfig
) -> RetrievalIndex:
    items = corpus_from_turns(turns) if corpus.path is None else read_corpus(corpus.path)
    loaded = load_encoder(encoder)
    encoding = cached(ProgressEncoder(loaded), default_cache_dir(), loaded.identity)
    return build_index(items, encoding, config)
