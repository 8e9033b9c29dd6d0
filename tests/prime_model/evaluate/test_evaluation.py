from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from prime_model import (
    ConfigError,
    DataValidationError,
    EmbeddingPredictor,
    PredictorConfig,
    PredictorError,
)
from prime_model.data import Turn, turns_to_frame
from prime_model.encode.encoding import EncodedTurns, encode_turns
from prime_model.evaluate.baselines import concat_text, concat_texts, mean_of_turns, query_only
from prime_model.evaluate.evaluation import evaluate, predict_encoded, summarise
from prime_model.evaluate.metrics import gold_ranks, retrieval_metrics
from prime_model.evaluate.report import BASELINES, FIRST_TURN, LATER_TURNS, SYSTEMS, EvaluationTable
from prime_model.model import GATE_SCALE
from tests.conftest import CountingEncoder

D = 4


# Targets are the axes; q1 leans towards the wrong target t2, its history points at t1.
VECTORS: dict[str, list[float]] = {
    "t0": [1.0, 0.0, 0.0, 0.0],
    "t1": [0.0, 1.0, 0.0, 0.0],
    "t2": [0.0, 0.0, 1.0, 0.0],
    "q0": [1.0, 0.0, 0.0, 0.0],
    "a0": [0.0, 1.0, 0.0, 0.0],
    "q1": [0.0, 0.6, 0.8, 0.0],
    "q2": [0.0, 0.0, 1.0, 0.0],
    "q0 a0 q1": [0.0, 1.0, 0.0, 0.0],  # concat-text of turn 1: right
    "a0 q1": [0.0, 0.0, 1.0, 0.0],  # the same with one history turn: wrong
}


class StubEncoder(CountingEncoder):
    """A YEncoder looking texts up in VECTORS (unknown texts: the last axis), recording calls."""

    def __init__(self, name: str = "stub", dim: int = D) -> None:
        super().__init__(dim=dim, name=name, table=VECTORS)


class TailEncoder(StubEncoder):
    """A stub with ``fit_to_limit``: keeps the last 5 characters, like a 5-token limit."""

    def fit_to_limit(self, texts: Sequence[str]) -> list[str]:
        return [t[-5:] for t in texts]


def _turns() -> pd.DataFrame:
    return turns_to_frame(
        [
            Turn(conversation_id="a", turn=0, history=[], query="q0", target="t0"),
            Turn(conversation_id="a", turn=1, history=["q0", "a0"], query="q1", target="t1"),
            Turn(conversation_id="b", turn=0, history=[], query="q2", target="t2"),
        ]
    )


@pytest.fixture
def turns() -> pd.DataFrame:
    return _turns()


@pytest.fixture
def encoded(turns: pd.DataFrame) -> EncodedTurns:
    return encode_turns(turns, StubEncoder(), max_context_length=4)


def _model(seed: int = 0, **overrides: object) -> EmbeddingPredictor:
    fields: dict[str, object] = {
        "input_dim": D,
        "output_dim": D,
        "hidden_dim": 16,
        "num_layers": 1,
        "num_heads": 2,
        "max_context_length": 4,
        "dropout": 0.0,
        "max_batch_size": 8,
    }
    torch.manual_seed(seed)
    return EmbeddingPredictor(PredictorConfig(**{**fields, **overrides})).eval()


def _ranks(vectors: torch.Tensor, encoded: EncodedTurns) -> list[int]:
    return gold_ranks(vectors, encoded.corpus, encoded.target_index).tolist()


# --- predict_encoded ------------------------------------------------------------------------


def test_predict_encoded_equals_the_forward_and_restores_training_mode(
    encoded: EncodedTurns,
) -> None:
    model = _model(dropout=0.5)
    with torch.no_grad():
        expected = model(encoded.context, encoded.query, encoded.context_mask)
    model.train()
    for batch_size in (None, 1, 2):
        predicted = predict_encoded(model, encoded, batch_size)
        assert model.training  # put back as it was
        torch.testing.assert_close(predicted, expected)  # in eval mode: dropout is off
    assert predicted.shape == (3, D)
    model.eval()
    predict_encoded(model, encoded)
    assert not model.training


def test_predict_encoded_restores_mode_when_the_model_raises(encoded: EncodedTurns) -> None:
    model = _model(max_context_length=1).train()  # encoded context has N=2 turns
    with pytest.raises(PredictorError, match="max_context_length=1"):
        predict_encoded(model, encoded)
    assert model.training


def test_predict_encoded_batch_size_checks(encoded: EncodedTurns) -> None:
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        predict_encoded(_model(), encoded, 0)
    with pytest.raises(ConfigError, match="batch_size=9 exceeds the model's max_batch_size=8"):
        predict_encoded(_model(), encoded, 9)
    unlimited = _model(max_batch_size=None)
    assert predict_encoded(unlimited, encoded).shape == (3, D)  # default chunk of 256


# --- baselines ------------------------------------------------------------------------------


def test_query_only_ranks_by_the_query_alone(encoded: EncodedTurns) -> None:
    torch.testing.assert_close(query_only(encoded), encoded.query)
    assert _ranks(query_only(encoded), encoded) == [1, 2, 1]  # q1 prefers t2 over its gold t1


def test_mean_of_turns_by_hand(encoded: EncodedTurns) -> None:
    q0, a0, q1 = (torch.tensor(VECTORS[t]) for t in ("q0", "a0", "q1"))
    expected = torch.stack(
        [
            torch.tensor(VECTORS["q0"]),  # no history: the query itself
            F.normalize((q0 + a0 + q1) / 3, dim=0),
            torch.tensor(VECTORS["q2"]),
        ]
    )
    torch.testing.assert_close(mean_of_turns(encoded), expected)
    assert _ranks(mean_of_turns(encoded), encoded) == [1, 1, 1]


def test_concat_text_sends_joined_most_recent_turns(turns: pd.DataFrame) -> None:
    encoder = StubEncoder()
    vectors = concat_text(turns, encoder, max_context_length=4)
    assert encoder.calls == [["q0", "q0 a0 q1", "q2"]]  # unique texts, oldest turn first
    torch.testing.assert_close(vectors[1], torch.tensor(VECTORS["t1"]))
    assert concat_texts(turns, max_context_length=1) == ["q0", "a0 q1", "q2"]


def test_concat_text_truncates_from_the_oldest_side(turns: pd.DataFrame) -> None:
    encoder = TailEncoder()
    concat_text(turns, encoder, max_context_length=4)
    assert encoder.calls == [["q0", "a0 q1", "q2"]]  # "q0 a0 q1" lost its start, kept the query
    plain = StubEncoder()  # no fit_to_limit: texts go as they are
    concat_text(turns, plain, max_context_length=4)
    assert plain.calls == [["q0", "q0 a0 q1", "q2"]]


def test_concat_text_checks_the_encoder_output(turns: pd.DataFrame) -> None:
    class Broken(StubEncoder):
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return np.zeros((1, D), dtype=np.float32)

    with pytest.raises(DataValidationError, match=r"returned shape \(1, 4\) for 3 texts"):
        concat_text(turns, Broken(), max_context_length=4)


# --- evaluate -------------------------------------------------------------------------------


def test_evaluate_scores_every_system_on_the_same_corpus(
    encoded: EncodedTurns, turns: pd.DataFrame
) -> None:
    model = _model()
    table = evaluate(model, encoded, turns, StubEncoder())
    assert list(table.rows) == list(SYSTEMS)
    assert (table.num_turns, table.corpus_size, table.max_context_length) == (3, 3, 4)
    assert table.encoder_name == "stub"
    gold = encoded.target_index
    expected_model = retrieval_metrics(predict_encoded(model, encoded), encoded.corpus, gold)
    assert table.rows["model"] == expected_model
    assert table.rows["query-only"]["recall@1"] == pytest.approx(2 / 3)
    assert table.rows["query-only"]["mrr"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert table.rows["concat-text"]["recall@1"] == 1.0
    assert table.rows["mean-of-turns"]["recall@1"] == 1.0
    assert table.best_baseline in BASELINES
    assert table.metrics == ["recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "p@5"]


def test_evaluate_breaks_results_down_by_first_and_later_turns(
    encoded: EncodedTurns, turns: pd.DataFrame
) -> None:
    table = evaluate(_model(), encoded, turns, StubEncoder())
    first, later = table.breakdown[FIRST_TURN], table.breakdown[LATER_TURNS]
    assert (first.num_turns, later.num_turns) == (2, 1)
    assert first.rows["query-only"]["mrr"] == 1.0
    assert later.rows["query-only"]["mrr"] == 0.5  # context matters after the first turn
    assert later.rows["concat-text"]["mrr"] == 1.0


def test_first_turns_are_those_with_an_empty_history_whatever_their_number(
    turns: pd.DataFrame,
) -> None:
    """Datasets count turns from 1: the breakdown must not depend on turn == 0."""
    one_based = turns.assign(turn=turns["turn"] + 1)
    encoded = encode_turns(one_based, StubEncoder(), max_context_length=4)
    table = evaluate(_model(), encoded, one_based, StubEncoder())
    first, later = table.breakdown[FIRST_TURN], table.breakdown[LATER_TURNS]
    assert (first.num_turns, later.num_turns) == (2, 1)
    assert first.rows["query-only"]["mrr"] == 1.0


def test_evaluate_reads_as_many_turns_as_the_model(
    encoded: EncodedTurns, turns: pd.DataFrame
) -> None:
    short = encode_turns(turns, StubEncoder(), max_context_length=1)
    encoder = StubEncoder()
    table = evaluate(_model(), short, turns, encoder, max_context_length=1)
    assert encoder.calls == [["q0", "a0 q1", "q2"]]
    assert table.rows["concat-text"]["recall@1"] == pytest.approx(2 / 3)
    with pytest.raises(DataValidationError, match=r"row 1: .* keeps 2 turns .* context has 1"):
        evaluate(_model(), short, turns, StubEncoder())  # default: the model's 4


def test_evaluate_without_any_history() -> None:
    first_turns = _turns().iloc[[0, 2]].reset_index(drop=True)
    encoded = encode_turns(first_turns, StubEncoder(), max_context_length=4)
    assert encoded.context.shape == (2, 0, D)
    table = evaluate(_model(), encoded, first_turns, StubEncoder())
    assert list(table.breakdown) == [FIRST_TURN]
    assert table.rows["mean-of-turns"] == table.rows["query-only"]


def test_summarise_best_baseline_and_gains() -> None:
    ranks = {
        "model": torch.tensor([1, 1, 1, 1]),
        "query-only": torch.tensor([1, 11, 11, 1]),
        "concat-text": torch.tensor([1, 1, 11, 1]),
        "mean-of-turns": torch.tensor([11, 11, 11, 2]),
    }
    results = summarise(ranks)
    assert results.best_baseline == "concat-text"
    assert results.relative_gain == pytest.approx(1 / 0.75 - 1)
    assert results.relative_gains["recall@10"] == results.relative_gain
    assert results.relative_gains["mrr"] == pytest.approx(1 / ((3 + 1 / 11) / 4) - 1)
    hopeless = summarise({name: torch.tensor([20, 30]) for name in SYSTEMS})
    assert hopeless.relative_gain is None  # the best baseline's recall@10 is 0
    assert hopeless.best_baseline == "query-only"  # ties go to the first baseline


def test_evaluate_checks_dims(encoded: EncodedTurns, turns: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"produces 5-d embeddings but the encoded turns are 4-d"):
        evaluate(_model(), encoded, turns, StubEncoder(dim=5))
    with pytest.raises(ConfigError, match=r"produces 4-d .* output_dim=3"):
        evaluate(_model(output_dim=3, residual=False), encoded, turns, StubEncoder())


def test_evaluate_checks_the_turns_are_the_encoded_ones(
    encoded: EncodedTurns, turns: pd.DataFrame
) -> None:
    encoder = StubEncoder()
    with pytest.raises(DataValidationError, match=r"turn table has 2 rows but the encoded .* 3"):
        evaluate(_model(), encoded, turns.iloc[:2], encoder)
    swapped = turns.iloc[[0, 2, 1]].reset_index(drop=True)
    with pytest.raises(
        DataValidationError,
        match=r"row 1: turn table has \(conversation 'b', turn 0\) but the encoded turns have "
        r"\(conversation 'a', turn 1\)",
    ):
        evaluate(_model(), encoded, swapped, encoder)
    with pytest.raises(DataValidationError, match=r"lacks column\(s\) \['query'\]"):
        evaluate(_model(), encoded, turns.drop(columns="query"), encoder)


# --- reports --------------------------------------------------------------------------------


@pytest.fixture
def table(encoded: EncodedTurns, turns: pd.DataFrame) -> EvaluationTable:
    return evaluate(_model(), encoded, turns, StubEncoder(name="<script>alert('x')</script>|*"))


def test_to_dict_is_json_and_round_trips(table: EvaluationTable) -> None:
    data = json.loads(json.dumps(table.to_dict()))
    assert set(data["rows"]) == set(SYSTEMS)
    assert set(data["breakdown"]) == {FIRST_TURN, LATER_TURNS}
    assert EvaluationTable.model_validate(data) == table


def test_markdown_table(table: EvaluationTable) -> None:
    text = table.to_markdown()
    assert "| system | recall@1 | recall@5 | recall@10 | mrr | ndcg@10 | p@5 |" in text
    qo = table.rows["query-only"]
    assert f"| query-only | {qo['recall@1']:.3f} | {qo['recall@5']:.3f} |" in text
    assert "| **model** |" in text
    assert f"Model vs best baseline ({table.best_baseline}): recall@10" in text
    assert "Retrieval on 3 turns against a corpus of 3 targets" in text
    assert "<script>alert('x')</script>\\|\\*" in text  # cannot break the table
    assert f"**{FIRST_TURN}** (2 turns)" in text


def test_markdown_gain_line() -> None:
    ranks = {
        "model": torch.tensor([1, 1, 1, 1]),
        "query-only": torch.tensor([1, 11, 11, 1]),
        "concat-text": torch.tensor([1, 1, 11, 1]),
        "mean-of-turns": torch.tensor([30, 30, 30, 30]),
    }
    results = summarise(ranks)
    table = EvaluationTable(
        **results.model_dump(), corpus_size=40, encoder_name="e", max_context_length=2
    )
    text = table.to_markdown()
    assert "Model vs best baseline (concat-text): recall@10 +33.3 %" in text
    hopeless = summarise({name: torch.tensor([20, 30]) for name in SYSTEMS})
    table = EvaluationTable(
        **hopeless.model_dump(), corpus_size=40, encoder_name="e", max_context_length=2
    )
    assert "recall@10 n/a" in table.to_markdown()


def test_html_is_self_contained_and_escaped(table: EvaluationTable) -> None:
    page = table.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;|*" in page
    for external in ("<link", "src=", "@import", "url("):
        assert external not in page
    assert page.count("<svg") == 2 * 3  # recall@10 and MRR, overall and per breakdown
    assert page.count("<table>") == 3
    model = table.rows["model"]
    assert f"<td>{model['recall@10']:.3f}</td>" in page
    assert f"<h2>{LATER_TURNS} (1 turns)</h2>" in page


def test_predict_encoded_with_no_turns() -> None:
    empty = EncodedTurns(
        context=torch.zeros(0, 0, D),
        context_mask=torch.zeros(0, 0, dtype=torch.bool),
        query=torch.zeros(0, D),
        target=torch.zeros(0, D),
        target_index=torch.zeros(0, dtype=torch.long),
        corpus=torch.zeros(0, D),
        conversation_ids=[],
        turns=torch.zeros(0, dtype=torch.long),
        corpus_ids=[],
        encoder_name="stub",
        dim=D,
    )
    assert predict_encoded(_model(output_dim=3, residual=False), empty).shape == (0, 3)


def test_markdown_without_the_breakdown_is_the_overall_table_only(table: EvaluationTable) -> None:
    full, short = table.to_markdown(), table.to_markdown(breakdown=False)
    assert table.breakdown and full.startswith(short.rstrip("\n")) and len(short) < len(full)
    assert all(f"**{name}**" not in short and f"**{name}**" in full for name in table.breakdown)


def test_query_concat_mix_is_scored_and_a_concat_model_reads_the_encoded_concat(
    turns: pd.DataFrame,
) -> None:
    with_roles = turns.copy()
    with_roles["history_roles"] = pd.Series([[], ["user", "system"], []], dtype=object)
    encoded = encode_turns(with_roles, StubEncoder(), max_context_length=4, concat=True)
    model = _model(residual=True, concat_input=True, role_embedding=True)
    with torch.no_grad():
        model.concat_gate.fill_(0.5 / GATE_SCALE)  # the model is now exactly the free mix
    table = evaluate(model, encoded, with_roles, StubEncoder(), by_history=True)
    mix = F.normalize(encoded.query + 0.5 * encoded.concat, dim=-1)  # type: ignore[operator]
    gold = encoded.target_index
    assert table.rows["query+concat"] == retrieval_metrics(mix, encoded.corpus, gold)
    assert table.rows["model"] == table.rows["query+concat"]
    assert set(table.breakdown) == {
        FIRST_TURN, LATER_TURNS, "history 1-4", "with system turns"
    }  # fmt: skip
    assert table.breakdown["with system turns"].num_turns == 1
