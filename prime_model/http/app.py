"""``prime serve``: the retriever as a small ASGI app (FastAPI), one process, no per-request
bookkeeping.

``POST /retrieve`` takes ``{"history": [...], "query": "...", "top_k": 10}`` (or, instead of the
history, a ``conversation_id`` whose turns were registered with ``POST
/conversations/{conversation_id}/turns``); ``GET /health`` and ``GET /info`` say whether and what
it serves. Errors are JSON ``{"error": type, "message": ...}``: 400 for a body that is not JSON
(an object), 404 for a conversation the server does not hold, 413 for one over the size limit,
422 for bad fields, 500 (still typed, no traceback) only for a failure after the request was
accepted. An error body is bounded (:data:`MAX_ERROR_CHARS`) whatever the request held. The work
runs on a small thread pool sized to the cores, so concurrent requests overlap without
oversubscribing.
No redirects: Starlette's trailing-slash redirect would send a client, and its conversation, to
whatever ``Host`` the request named (docs/threat-model.md).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from prime_model.errors import (
    ClientGoneError,
    ConfigError,
    MalformedRequestError,
    PrimeError,
    RequestError,
    RequestTooLargeError,
    UnknownConversationError,
)
from prime_model.http.conversations import (
    TURN_EXAMPLE,
    check_conversation_id,
    parse_turns,
)
from prime_model.http.request import (
    MAX_BODY_BYTES,
    MAX_TEXT_CHARS,
    RetrievalRequest,
    parse_json_body,
    parse_request,
)
from prime_model.http.service import Retriever

logger = logging.getLogger(__name__)

RETRIEVE_PATH: Final = "/retrieve"
TURNS_PATH: Final = "/conversations/{conversation_id}/turns"
TURNS_EXPECTED: Final = f"{TURN_EXAMPLE} or a list of such objects"
MAX_ERROR_CHARS: Final = 2_000
"""Longest error message sent back: 40,000 unknown keys must not echo a 2 MB body."""
CLIENT_GONE: Final = 499  # nginx's "client closed request": nobody reads it


SERVING_THREADS: Final = 1
"""ONNX Runtime threads per request: requests run side by side on the pool (one per core), so
intra-op threads would only oversubscribe the cores and spin."""


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def error_status(error: PrimeError) -> int:
    """The HTTP status for one of our errors: the client's fault is 4xx, ours 500."""
    if isinstance(error, ClientGoneError):
        return CLIENT_GONE
    if isinstance(error, RequestTooLargeError):
        return 413
    if isinstance(error, UnknownConversationError):
        return 404
    if isinstance(error, MalformedRequestError):
        return 400
    if isinstance(error, RequestError):
        return 422
    return 500


def error_body(error: PrimeError) -> dict[str, str]:
    """The error as JSON, its message cut to :data:`MAX_ERROR_CHARS` (saying how much was cut)."""
    return {"error": type(error).__name__, "message": bounded_message(str(error))}


def bounded_message(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit} more characters not shown)"


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (announced or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"request body is {declared} bytes; expected at most {limit}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(
                    f"request body is over {limit} bytes; expected at most {limit}"
                )
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-upload: typed, so every caller answers it quietly
        logger.debug("client disconnected after %d bytes of its request body", size)
        raise ClientGoneError(
            f"the client disconnected after {size} bytes of its request body"
        ) from None
    return b"".join(chunks)


async def answer_request(
    request: Request, retriever: Retriever, limiter: anyio.CapacityLimiter
) -> JSONResponse:
    """One ``POST /retrieve``: parse, answer on the thread pool, map our errors to statuses.

    Shared by ``prime serve`` and the ZenML deployment's ``/retrieve`` endpoint."""

    async def work() -> dict[str, Any]:
        parsed = parse_request(await read_body(request))
        answer = await anyio.to_thread.run_sync(retriever.answer, parsed, limiter=limiter)
        return answer.to_json()

    return await _json_answer(work)


async def register_turns(
    request: Request, conversation_id: str, retriever: Retriever, limiter: anyio.CapacityLimiter
) -> JSONResponse:
    """One ``POST /conversations/{id}/turns``: parse, then encode and store the turns."""

    async def work() -> dict[str, Any]:
        check_conversation_id(conversation_id)
        body = await read_body(request)
        turns = parse_turns(parse_json_body(body, TURNS_EXPECTED), MAX_TEXT_CHARS)
        return await anyio.to_thread.run_sync(
            retriever.register, conversation_id, turns, limiter=limiter
        )

    return await _json_answer(work)


async def _json_answer(work: Callable[[], Awaitable[dict[str, Any]]]) -> JSONResponse:
    """``work``'s answer as JSON; our errors as their status, anything else a bare 500."""
    try:
        answer = await work()
    except PrimeError as exc:
        status = error_status(exc)
        if status >= 500:
            logger.error("request failed after validation: %s", bounded_message(str(exc)))
        return JSONResponse(error_body(exc), status_code=status)
    except Exception:  # a bug of ours: logged once with its traceback, never sent to clients
        logger.exception("request failed")
        return JSONResponse(
            {"error": "InternalError", "message": "the request failed inside the server"}, 500
        )
    return JSONResponse(answer)


def create_app(retriever: Retriever, *, workers: int | None = None) -> FastAPI:
    """The app around one loaded :class:`Retriever`."""
    app = FastAPI(
        title="PRIME retrieval",
        summary="conversation -> retrieved content",
        redirect_slashes=False,
    )
    limiter = anyio.CapacityLimiter(workers or default_workers())

    @app.post(RETRIEVE_PATH, openapi_extra=_REQUEST_BODY)
    async def retrieve(request: Request) -> JSONResponse:
        return await answer_request(request, retriever, limiter)

    @app.post(TURNS_PATH, openapi_extra=_TURNS_BODY)
    async def turns(request: Request, conversation_id: str) -> JSONResponse:
        return await register_turns(request, conversation_id, retriever, limiter)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {**retriever.info(), **retriever.serving_info()}

    return app


_REQUEST_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RetrievalRequest.model_json_schema()}},
    }
}
"""The body ``POST /retrieve`` reads by hand (bounded), documented for clients and for the
schema-driven tests."""
_TURN: Final = {
    "type": "object",
    "properties": {"role": {"enum": ["user", "system"]}, "text": {"type": "string"}},
    "required": ["role", "text"],
    "additionalProperties": False,
}
_TURNS_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [_TURN, {"type": "array", "items": _TURN}]}}
        },
    }
}
"""``POST /conversations/{id}/turns``: one turn or a list of them."""


def listen(host: str, port: int) -> socket.socket:
    """The bound listening socket, or a :class:`ConfigError` saying why not (port in use, ...).

    Bound here, before the warm-up, so a busy port fails at once with our ``error:`` line rather
    than after start-up with uvicorn's text and exit code 3."""
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; expected a free port and an "
            "address of this machine (choose another with --port / --host)"
        ) from None


def serve(retriever: Retriever, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Bind, warm up, then serve until interrupted (uvicorn: one process, access log off)."""
    sock = listen(host, port)
    try:
        retriever.warmup()
        logger.info("serving %s on http://%s:%d%s", retriever.info(), host, port, RETRIEVE_PATH)
        config = uvicorn.Config(
            create_app(retriever), host=host, port=port, access_log=False, log_level="warning"
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
