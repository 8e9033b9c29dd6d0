"""serving_pipeline: a conversation in, the production model's retrieved content out.

Deploy it with ZenML's deployer (``zenml pipeline deploy pipelines.serving_pipeline``). Its init
hook loads the production version's serving backend, Y-Encoder and ``retrieval_index`` once per
deployment; then

- ``POST /invoke`` runs the pipeline: every request is a tracked run with an ``answer`` artifact
  (lineage and audit, at the cost of the run's bookkeeping: about half a second here);
- ``POST /retrieve`` answers from the same loaded retriever without a run (the fast path, the
  same handler as ``prime serve``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import anyio
import pandas as pd
from fastapi import Request
from fastapi.responses import JSONResponse
from zenml import pipeline, step
from zenml.config import DeploymentSettings
from zenml.config.deployment_settings import EndpointMethod, EndpointSpec, MiddlewareSpec
from zenml.steps.step_context import get_or_create_run_context

from pipelines.registry import production_version, serving_artifacts
from prime_model.data.records import check_file
from prime_model.http.app import RETRIEVE_PATH, SERVING_THREADS, answer_request, default_workers
from prime_model.http.deployment import InvokeGuard
from prime_model.http.request import parse_request
from prime_model.http.service import Retriever, serving_encoder
from prime_model.http.serving_config import ServingConfig
from prime_model.retrieve.building import index_for
from prime_model.retrieve.corpus import CorpusSource
from prime_model.runtime.loader import create_predictor

logger = logging.getLogger(__name__)

_LIMITER: anyio.CapacityLimiter | None = None


def load_production_retriever(
    corpus: Path | None = None, serving: ServingConfig | None = None
) -> Retriever:
    """The production version's best backend, its index and its Y-Encoder, loaded and warm.

    ``corpus``: a corpus file (``prime index``'s format: id + text) to serve instead of the
    version's ``retrieval_index``, encoded with the version's Y-Encoder (behind the on-disk
    cache, so a second start encodes nothing) into an index built like the version's.
    """
    if corpus is not None:
        check_file(corpus)  # before the store is read: a typo fails at once
    version = production_version()
    artifacts = serving_artifacts(version)
    index = artifacts.index
    if corpus is not None:
        source = CorpusSource(path=str(corpus))  # the turns are not read when a path is given
        index = index_for(pd.DataFrame(), artifacts.encoder, source, artifacts.index_config)
        logger.info("indexed %d corpus items from %s", len(index), corpus)
    predictor = create_predictor(
        artifacts.checkpoint,
        "auto",
        onnx_fp32=artifacts.onnx_fp32,
        onnx_int8=artifacts.onnx_int8,
        threads=SERVING_THREADS,
    )
    retriever = Retriever(
        predictor,
        serving_encoder(artifacts.encoder, serving),
        index,
        model_version=f"{version.model.name}:{version.name}",
        config=serving,
    )
    retriever.warmup()
    logger.info("serving %s", retriever.info())
    return retriever


def _retriever() -> Retriever:
    state = get_or_create_run_context().state
    if not isinstance(state, Retriever):  # a plain `zenml pipeline run`: no init hook state
        state = load_production_retriever()
    return state


async def retrieve_endpoint(request: Request) -> JSONResponse:
    """``POST /retrieve`` on the deployment: no pipeline run, the loaded retriever answers."""
    global _LIMITER  # noqa: PLW0603 - one limiter per deployment process, made on first use
    _LIMITER = _LIMITER or anyio.CapacityLimiter(default_workers())
    return await answer_request(request, _retriever(), _LIMITER)


class InvokeValidation(InvokeGuard):
    """``POST /invoke`` bodies checked against this deployment's loaded retriever."""

    def retriever(self) -> Retriever:
        return _retriever()


@step(enable_cache=False)
def retrieve(
    history: list[str],
    query: str,
    top_k: int = 10,
    history_roles: list[str | None] | None = None,
) -> Annotated[dict[str, Any], "answer"]:
    """The top-k corpus items for the conversation, with the model version that chose them."""
    body = {"history": history, "query": query, "top_k": top_k, "history_roles": history_roles}
    request = parse_request(body)
    return _retriever().answer(request).to_json()


DEPLOYMENT = DeploymentSettings(
    app_title="PRIME retrieval",
    custom_endpoints=[
        EndpointSpec(path=RETRIEVE_PATH, method=EndpointMethod.POST, handler=retrieve_endpoint)
    ],
    custom_middlewares=[MiddlewareSpec(middleware=InvokeValidation)],
)


@pipeline(
    on_init=load_production_retriever,
    enable_cache=False,
    settings={"deployment": DEPLOYMENT},
)
def serving_pipeline(
    history: tuple[str, ...] = (),
    query: str = "Where was she born?",
    top_k: int = 10,
    history_roles: tuple[str | None, ...] | None = None,
) -> Annotated[dict[str, Any], "answer"]:
    """One conversation -> its answer; deployed, every ``/invoke`` is one run.

    ``history_roles``: user/system (or null) per history entry, for a model that reads roles.
    """
    roles = None if history_roles is None else list(history_roles)
    answer: dict[str, Any] = retrieve(list(history), query, top_k, roles)
    return answer
