"""ASGI middleware for a deployment whose ``POST /invoke`` starts a pipeline run (the ZenML
deployment of ``serving_pipeline``): bodies that could only fail get our checks and a 4xx with
the library's message before any run starts, since a run that fails is reported as a 200.

Knows nothing of ZenML: the deployment subclasses :class:`InvokeGuard` to say which loaded
:class:`~prime_model.http.service.Retriever` judges a request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prime_model.errors import PrimeError
from prime_model.http.app import error_body, error_status, read_body
from prime_model.http.request import parse_invoke_body
from prime_model.http.service import Retriever

INVOKE_PATH: Final = "/invoke"


class InvokeGuard(ABC):
    """Checks ``POST /invoke`` bodies, then replays them unchanged to the wrapped app."""

    def __init__(self, app: ASGIApp, **_: Any) -> None:
        self.app = app

    @abstractmethod
    def retriever(self) -> Retriever:
        """The loaded retriever whose model decides what a request may hold (e.g. its turns)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != INVOKE_PATH:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(Request(scope, receive))
            self.retriever().check(parse_invoke_body(body))
        except PrimeError as exc:
            response = JSONResponse(error_body(exc), status_code=error_status(exc))
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
