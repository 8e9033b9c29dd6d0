from __future__ import annotations

import pandas as pd
import pytest

from prime_model import ConfigError, DataValidationError
from prime_model.data import SampleConfig, generate_sample
from prime_model.encode.encoders import SentenceTransformerEncoder
from prime_model.encode.encoding import EncodedTurns, encode_splits
from prime_model.monitor.drift import (
    DriftConfig,
    DriftResult,
    detect_drift,
)
from tests.conftest import make_encoded

Splits = dict[str, tuple[EncodedTurns, pd.DataFrame]]


@pytest.fixture(scope="module")
def splits() -> Splits:
    """Two halves of one sample, and current conversations about cities and rivers only."""
    turns = generate_sample(SampleConfig(num_conversations=360, seed=0))
    opening = turns[turns["turn"] == 0].set_index("conversation_id")["target_id"]
    kind = opening.str.split(":").str[0]
    ids = sorted(turns["conversation_id"].unique())
    half = len(ids) // 2
    frames = {
        "reference": turns[turns["conversation_id"].isin(ids[:half])],
        "same": turns[turns["conversation_id"].isin(ids[half:])],
        "shifted": turns[
            turns["conversation_id"].isin([c for c in ids[half:] if kind[c] in ("city", "river")])
        ],
    }
    encoded = encode_splits(frames, SentenceTransformerEncoder(), max_context_length=10)
    return {name: (encoded[name], frame) for name, frame in frames.items()}


def _check(splits: Splits, current: str) -> DriftResult:
    reference, current_split = splits["reference"], splits[current]
    result, html = detect_drift(*reference, *current_split, DriftConfig(max_rows=120))
    assert "<html" in html.lower() and "Drift in embeddings" in html
    assert all(
        s.threshold is None and "bootstrap 95% quantile" in s.test for s in result.embeddings
    )
    assert all(s.threshold == 0.05 for s in result.columns)
    return result


def test_same_distribution_does_not_drift(splits: Splits) -> None:
    result = _check(splits, "same")
    assert not result.drifted, result.describe()
    assert all(0.3 < s.score < 0.65 for s in result.embeddings)  # ROC AUC near chance
    assert result.reference_rows == result.current_rows == 120  # one turn per conversation


def test_a_different_entity_mix_drifts(splits: Splits) -> None:
    result = _check(splits, "shifted")
    assert result.drifted, result.describe()
    assert result.score > 0.65
    assert result.describe().startswith("embedding drift in")


def test_bad_inputs() -> None:
    small = make_encoded(m=40, d=16)
    turns = pd.DataFrame(
        {
            "conversation_id": [f"c{i // 2}" for i in range(40)],
            "query": ["q"] * 40,
            "history": [["h"]] * 40,
        }
    )
    with pytest.raises(DataValidationError, match="39 turns but 40 encoded rows"):
        detect_drift(small, turns.head(39), small, turns)
    with pytest.raises(DataValidationError, match="16-d, current 8-d"):
        detect_drift(small, turns, make_encoded(m=40, d=8), turns)
    few = turns.assign(conversation_id=["c0"] * 20 + ["c1"] * 20)
    with pytest.raises(DataValidationError, match="2 conversations to check"):
        detect_drift(small, few, small, turns)
    with pytest.raises(ConfigError, match="method"):
        DriftConfig(**{"method": "psi"})
