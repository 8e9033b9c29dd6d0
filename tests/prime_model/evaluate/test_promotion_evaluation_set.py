"""The gate compares like with like: production's score is a bar only on the same test split."""

from __future__ import annotations

import pandas as pd

from prime_model.evaluate.evaluation_set import EvaluationSet, evaluation_set_of, set_change_note
from prime_model.evaluate.promotion import GateConfig, decide_promotion
from prime_model.evaluate.report import EvaluationTable

GATE = GateConfig(floor=0.5)


def _turns(sources: list[str] | None = None, query: str = "q") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "conversation_id": ["a", "a", "b"],
            "turn": [0, 1, 0],
            "history": [[], ["h"], []],
            "query": [query, "q2", "q3"],
            "target": ["t1", "t2", "t3"],
            "target_id": [None, None, None],
        }
    )
    if sources is not None:
        frame["source"] = sources
    return frame


SAMPLE = evaluation_set_of(_turns())
REAL = evaluation_set_of(_turns(["topiocqa", "canard", "canard"], query="other"))


def test_the_set_is_named_by_its_sources_and_fingerprinted_by_content() -> None:
    assert SAMPLE.name == "test split"
    assert REAL.name == "canard + topiocqa test split"
    assert (REAL.num_turns, REAL.num_conversations) == (3, 2)
    assert evaluation_set_of(_turns()).same_as(SAMPLE)  # same content, same set
    assert not REAL.same_as(SAMPLE)
    assert evaluation_set_of(_turns(), name="sample").name == "sample"
    assert REAL.fingerprint[:12] in REAL.label and "3 turns" in REAL.label


def test_same_set_compares_with_production_as_always() -> None:
    decision = decide_promotion(0.8, 0.7, 0.85, GATE, evaluated_on=SAMPLE, production_on=SAMPLE)
    assert not decision.promote
    assert "below the production version's 0.85" in decision.reasons[0]
    assert decision.compared_with_production and decision.notes == []


def test_a_changed_set_is_judged_on_the_floor_and_baselines_only_and_says_so() -> None:
    decision = decide_promotion(0.6, 0.5, 0.95, GATE, evaluated_on=REAL, production_on=SAMPLE)
    assert decision.promote  # 0.6 < production's 0.95, but that was another set
    assert not decision.compared_with_production and decision.set_changed
    note = decision.notes[0]
    assert note.startswith("evaluation set changed: production was judged on test split (")
    assert "this version on canard + topiocqa test split (" in note
    assert note.endswith("compared with baselines only")
    assert note in decision.explanation()
    still_below_baseline = decide_promotion(
        0.6, 0.65, 0.95, GATE, evaluated_on=REAL, production_on=SAMPLE
    )
    assert not still_below_baseline.promote
    assert still_below_baseline.explanation()[-1] == note


def test_an_unknown_set_compares_as_before_and_no_production_needs_no_note() -> None:
    unknown = decide_promotion(0.8, 0.7, 0.85, GATE, evaluated_on=REAL, production_on=None)
    assert not unknown.promote and unknown.compared_with_production
    first = decide_promotion(0.8, 0.7, None, GATE, evaluated_on=REAL, production_on=SAMPLE)
    assert first.promote and first.notes == []
    assert "nothing was in production yet" in first.explanation()
    assert set_change_note(SAMPLE, SAMPLE) is None and set_change_note(None, REAL) is None


def test_metadata_says_what_was_compared_and_on_which_sets() -> None:
    rows = {"model": {"recall@10": 0.6}, "query-only": {"recall@10": 0.5}}
    table = EvaluationTable(
        num_turns=3, rows=rows, best_baseline="query-only", relative_gain=0.2,
        relative_gains={}, corpus_size=3, encoder_name="stub", max_context_length=4,
    )  # fmt: skip
    changed = decide_promotion(0.6, 0.5, 0.95, GATE, evaluated_on=REAL, production_on=SAMPLE)
    meta = changed.metadata(table)["gate_decision"]
    assert meta["compared_with"] == "baselines only"
    assert meta["evaluation_set"] == REAL.label
    assert meta["production_evaluation_set"] == SAMPLE.label
    assert "evaluation set changed" in meta["why"]
    same = decide_promotion(0.6, 0.5, 0.55, GATE).metadata(table)["gate_decision"]
    assert same["compared_with"] == "production and baselines"
    assert same["evaluation_set"] == "unknown"


def test_a_set_round_trips_through_metadata() -> None:
    assert EvaluationSet.model_validate(REAL.model_dump(mode="json")) == REAL


def test_the_card_names_the_set_and_says_when_production_was_not_compared() -> None:
    from prime_model.evaluate.model_card import ModelCard, render_model_card  # noqa: PLC0415
    from prime_model.evaluate.oracle import REWRITE_ORACLE  # noqa: PLC0415
    from prime_model.evaluate.report import RetrievalResults  # noqa: PLC0415

    rows = {"model": {"recall@10": 0.6}, "query-only": {"recall@10": 0.5}}
    segment = RetrievalResults(
        num_turns=2, rows=rows, best_baseline="query-only", relative_gain=0.2, relative_gains={}
    )
    table = EvaluationTable(
        num_turns=3, rows=rows | {REWRITE_ORACLE: {"recall@10": 0.9}}, best_baseline="query-only",
        relative_gain=0.2, relative_gains={}, corpus_size=3, encoder_name="stub",
        max_context_length=4, breakdown={"history 1-4": segment}, evaluation_set=REAL,
    )  # fmt: skip
    decision = decide_promotion(0.6, 0.5, 0.95, GATE, evaluated_on=REAL, production_on=SAMPLE)
    page = render_model_card(
        ModelCard(model_name="m", version="2", evaluation=table, decision=decision)
    )
    assert f"Evaluation set: {REAL.label}." in page
    assert "evaluation set changed: production was judged on" in page
    assert "production 0.9500 (on another evaluation set: not compared)" in page
    assert "<td>rewrite oracle</td>" in page and "<h3>history 1-4 (2 turns)</h3>" in page
    meta = decision.metadata(table)
    assert meta["headline_metrics"]["rewrite oracle recall@10"] == 0.9
    assert meta["metrics_by_segment"] == {
        "history 1-4": "model 0.6000 vs query-only 0.5000 (2 turns)"
    }
