from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.encode.cache import cached, default_cache_dir
from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.encoding import EncodedTurns, encode_splits
from prime_model.encode.engine import load_encoder
from prime_model.encode.progress import ProgressEncoder
from steps.materializers import EncodedTurnsMaterializer

ENCODED_NAMES = ("encoded_train", "encoded_val", "encoded_test")
EncodedOutputs = tuple[
    Annotated[EncodedTurns, "encoded_train"],
    Annotated[EncodedTurns, "encoded_val"],
    Annotated[EncodedTurns, "encoded_test"],
]


# one entry per output: ZenML hashes outputs in this order, and a bare class gave a random one
@step(output_materializers=dict.fromkeys(ENCODED_NAMES, EncodedTurnsMaterializer))
def encode_turns(  # noqa: PLR0917 - one input per split, then the encoding settings
    train_turns: pd.DataFrame,
    val_turns: pd.DataFrame,
    test_turns: pd.DataFrame,
    encoder: EncoderConfig,
    max_context_length: int,
    concat: bool = False,
) -> EncodedOutputs:
    """Each unique text once, with the frozen Y-Encoder; cached across training changes.

    Through the on-disk embedding cache ``prime evaluate`` and ``index_corpus`` use: a run whose
    splits changed (a new file, a new split) encodes only the texts no run has encoded yet, and
    logs how many it read and encoded. ``concat``: also embed history + query as one text, for a
    predictor with concat_input.
    """
    splits = {"train": train_turns, "val": val_turns, "test": test_turns}
    loaded = load_encoder(encoder)  # the engine the config names (default torch)
    encoding = cached(ProgressEncoder(loaded), default_cache_dir(), loaded.identity)
    encoded = encode_splits(splits, encoding, max_context_length, concat=concat)
    return encoded["train"], encoded["val"], encoded["test"]
