"""The gate of register_model, without an orchestrator."""

from __future__ import annotations

from zenml.client import Client
from zenml.enums import ModelStages

from pipelines.registry import production_evaluation_set, production_score
from prime_model.evaluate.evaluation_set import EvaluationSet
from prime_model.evaluate.promotion import GateConfig
from prime_model.evaluate.report import BASELINES, EvaluationTable
from steps.evaluate.register_model import apply_gate


def _table(
    model: float, baseline: float, evaluation_set: EvaluationSet | None = None
) -> EvaluationTable:
    rows = {name: {"recall@10": baseline} for name in BASELINES}
    return EvaluationTable(
        num_turns=10, rows={"model": {"recall@10": model}, **rows}, best_baseline="query-only",
        relative_gain=None, relative_gains={}, corpus_size=10, encoder_name="stub",
        max_context_length=4, evaluation_set=evaluation_set,
    )  # fmt: skip


def _set(name: str, fingerprint: str) -> EvaluationSet:
    return EvaluationSet(name=name, fingerprint=fingerprint, num_turns=10, num_conversations=3)


def test_gate_promotes_better_models_and_keeps_production_otherwise() -> None:
    client = Client()
    client.create_model(name="gate-test")
    gate = GateConfig(floor=0.5)
    for name in ("v1", "v2", "v3"):
        client.create_model_version(model_name_or_id="gate-test", name=name)

    first = apply_gate("gate-test", "v1", _table(0.8, 0.6), gate)
    assert first.promote
    assert client.get_model_version("gate-test", ModelStages.PRODUCTION).name == "v1"
    assert production_score("gate-test", gate.metric) == 0.8

    worse = apply_gate("gate-test", "v2", _table(0.7, 0.6), gate)  # below production
    assert not worse.promote
    assert "below the production version's 0.8" in worse.reasons[0]
    assert client.get_model_version("gate-test", ModelStages.PRODUCTION).name == "v1"
    promotion = client.get_model_version("gate-test", "v2").run_metadata["promotion"]
    assert isinstance(promotion, dict)
    assert promotion["promote"] is False
    gate_decision = client.get_model_version("gate-test", "v2").run_metadata["gate_decision"]
    assert isinstance(gate_decision, dict) and gate_decision["decision"] == "not promoted"
    assert "below the production version's 0.8" in gate_decision["why"]

    better = apply_gate("gate-test", "v3", _table(0.9, 0.6), gate)
    assert better.promote
    assert client.get_model_version("gate-test", ModelStages.PRODUCTION).name == "v3"


def test_no_production_version_yet() -> None:
    Client().create_model(name="empty-model")
    assert production_score("empty-model", GateConfig().metric) is None


def test_a_version_judged_on_another_set_is_not_held_to_productions_score() -> None:
    client = Client()
    client.create_model(name="set-test")
    gate = GateConfig(floor=0.5)
    for name in ("v1", "v2", "v3"):
        client.create_model_version(model_name_or_id="set-test", name=name)
    sample, real = _set("test split", "a" * 64), _set("canard + topiocqa test split", "b" * 64)

    assert apply_gate("set-test", "v1", _table(0.95, 0.6, sample), gate).promote
    assert production_evaluation_set("set-test") == sample  # recorded on the version
    same_set = apply_gate("set-test", "v2", _table(0.7, 0.6, sample), gate)
    assert not same_set.promote  # below production on the same set
    real_data = apply_gate("set-test", "v3", _table(0.7, 0.6, real), gate)
    assert real_data.promote  # below 0.95, but that was the sample's score
    assert real_data.notes[0].startswith("evaluation set changed: production was judged on")
    version = client.get_model_version("set-test", "v3")
    assert version.stage == ModelStages.PRODUCTION
    assert version.run_metadata["evaluation_set"] == real.model_dump(mode="json")
    decision = version.run_metadata["gate_decision"]
    assert isinstance(decision, dict) and decision["compared_with"] == "baselines only"
