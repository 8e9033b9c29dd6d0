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
from typing import Annotated, Any

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from zenml import pipeline, step
from zenml.config import DeploymentSettings
from zenml.config.deployment_settings import EndpointMethod, EndpointSpec, MiddlewareSpec
from zenml.steps.step_context import get_or_create_run_context

from pipelines.production import production_version, serving_artifacts
from prime_model.errors import PrimeError
from prime_model.retrieve.app import (
    RETRIEVE_PATH,
    SERVING_THREADS,
    answer_request,
    default_workers,
    error_body,
    error_status,
    read_body,
)
from prime_model.retrieve.request import parse_invoke_body, parse_request
from prime_model.retrieve.service import Retriever, serving_encoder
from prime_model.serve.serving_models import serving_predictor

logger = logging.getLogger(__name__)

_LIMITER: anyio.CapacityLimiter | None = None


def load_production_retriever() -> Retriever:
    """The production version's best backend, its index and its Y-Encoder, loaded and warm."""
    version = production_version()
    artifacts = serving_artifacts(version)
    predictor = serving_predictor(
        artifacts.checkpoint,
        "auto",
        onnx_fp32=artifacts.onnx_fp32,
        onnx_int8=artifacts.onnx_int8,
        threads=SERVING_THREADS,
    )
    retriever = Retriever(
        predictor,
        serving_encoder(artifacts.encoder),
        artifacts.index,
        model_version=f"{version.model.name}:{version.name}",
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


class InvokeValidation:
    """ASGI middleware: ``POST /invoke`` bodies get our checks (4xx with the library's message)
    before ZenML starts a run that could only fail (which it reports as a 200)."""

    def __init__(self, app: ASGIApp, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/invoke":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(Request(scope, receive))
            _retriever().check(parse_invoke_body(body))
        except PrimeError as exc:
            response = JSONResponse(error_body(exc), status_code=error_status(exc))
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


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
