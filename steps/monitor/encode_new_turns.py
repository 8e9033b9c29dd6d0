from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.encoding import EncodedTurns, encode_turns
from prime_model.encode.engine import load_encoder
from steps.materializers import EncodedTurnsMaterializer


@step(output_materializers={"encoded_new": EncodedTurnsMaterializer})
def encode_new_turns(
    new_turns: pd.DataFrame, encoder: EncoderConfig, max_context_length: int
) -> Annotated[EncodedTurns, "encoded_new"]:
    """New turns through the same frozen Y-Encoder, for the drift check."""
    return encode_turns(new_turns, load_encoder(encoder), max_context_length)
