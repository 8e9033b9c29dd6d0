from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, step
from zenml.client import Client
from zenml.models import ArtifactVersionResponse, ModelVersionResponse
from zenml.types import HTMLString

from prime_model.errors import ModelCardError
from prime_model.evaluate.model_card import (
    ArtifactRef,
    ModelCard,
    VersionRow,
    lineage_from_outputs,
    render_model_card,
)
from prime_model.evaluate.promotion import PromotionDecision
from prime_model.evaluate.report import EvaluationTable

MAX_VERSIONS = 50  # newest first: enough to see what production is and what came before


@step(enable_cache=False)  # the versions and their stages change with every run
def model_card(
    evaluation: EvaluationTable, promotion: PromotionDecision
) -> Annotated[HTMLString, "model_card"]:
    """The model card of this run's version, linked to it (the OSS dashboard has no Models page)."""
    context = get_step_context()
    model = context.model_version
    if model is None:
        raise ModelCardError(
            "model_card has no model version to describe: it runs in a pipeline with a model "
            "(see pipelines/training.py)"
        )
    client = Client()
    versions = client.list_model_versions(
        model=model.model.id, sort_by="desc:number", size=MAX_VERSIONS, hydrate=True
    )
    run = client.get_pipeline_run(context.pipeline_run.id)
    outputs = {
        name: _ref(artifacts[0])
        for step_run in run.steps.values()
        for name, artifacts in step_run.outputs.items()
        if artifacts
    }
    card = ModelCard(
        model_name=model.model.name,
        version=model.name,
        description=model.model.description or "",
        run_name=run.name,
        evaluation=evaluation,
        decision=promotion,
        versions=[_row(v, promotion.metric) for v in versions.items],
        lineage=lineage_from_outputs(outputs),
    )
    return HTMLString(render_model_card(card))


def _ref(artifact: ArtifactVersionResponse) -> ArtifactRef:
    fingerprint = artifact.run_metadata.get("fingerprint")
    return ArtifactRef(
        name=artifact.artifact.name,
        artifact_id=str(artifact.id),
        version=str(artifact.version),
        fingerprint=fingerprint if isinstance(fingerprint, str) else None,
    )


def _row(version: ModelVersionResponse, metric: str) -> VersionRow:
    score = version.run_metadata.get(metric)
    return VersionRow(
        name=version.name,
        number=version.number,
        stage=version.stage,
        created=version.created.strftime("%Y-%m-%d %H:%M"),
        score=float(score) if isinstance(score, int | float) else None,
    )
