"""An online retrieval request, parsed from untrusted JSON into one typed, bounded value.

The endpoint (``prime serve``) and the ZenML deployment both parse through here, so a bad
request gets the same :class:`~prime_model.errors.RequestError` message from either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from prime_model.config import describe_validation_error
from prime_model.errors import RequestError
from prime_model.parsing import is_blank, parse_json, shown
from prime_model.unicode_checks import has_lone_surrogate

MAX_BODY_BYTES: Final = 1 << 20
"""Largest request body read: ten 20k-character turns fit many times over."""
MAX_TEXT_CHARS: Final = 20_000
"""Longest turn or query; the Y-Encoder keeps only its first ~256 tokens anyway."""
MAX_TOP_K: Final = 100
MAX_LISTED_ERRORS: Final = 10
"""Field errors a message lists: 100,000 bad turns must not become a 6 MB message."""
MAX_HISTORY_ITEMS: Final = 1_000
"""More turns than any model reads: refused before validating each one."""
EXAMPLE: Final = '{"history": ["Who founded Vulith Works?"], "query": "Where was she born?"}'


class RequestTooLargeError(RequestError):
    """The body is over :data:`MAX_BODY_BYTES` (HTTP 413)."""


class MalformedRequestError(RequestError):
    """The body is not a JSON object (HTTP 400); field problems are plain RequestErrors (422)."""


class RetrievalRequest(BaseModel):
    """The conversation so far (oldest turn first) and the user's current query."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: list[StrictStr] = Field(default_factory=list, description="previous turns")
    query: StrictStr = Field(description="the user's current, possibly ambiguous, question")
    top_k: StrictInt = Field(10, ge=1, le=MAX_TOP_K, description="how many items to return")


def parse_request_json(body: bytes | str) -> Mapping[str, Any]:
    """The body as a JSON object: bounded, UTF-8, strict JSON (no duplicate keys, no NaN)."""
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise RequestTooLargeError(
            f"request body is {size} bytes; expected at most {MAX_BODY_BYTES}"
        )
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise MalformedRequestError(
            f"request body is not UTF-8 ({exc.reason} at byte {exc.start}); expected a JSON "
            f"object such as {EXAMPLE}"
        ) from None
    value = parse_json(
        text, "request body", MalformedRequestError, expected=f"a JSON object such as {EXAMPLE}"
    )
    if not isinstance(value, dict):
        raise MalformedRequestError(
            f"request body is a JSON {type(value).__name__}; expected a JSON object such as "
            f"{EXAMPLE}"
        )
    return value


def parse_request(body: bytes | str | Mapping[str, Any]) -> RetrievalRequest:
    """A :class:`RetrievalRequest`, or a :class:`RequestError` saying what is wrong and how a
    request looks."""
    if isinstance(body, bytes | str):
        body = parse_request_json(body)
    if not isinstance(body, Mapping):
        raise MalformedRequestError(
            f"request is a {type(body).__name__}; expected a JSON object such as {EXAMPLE}"
        )
    history = body.get("history")
    if isinstance(history, list) and len(history) > MAX_HISTORY_ITEMS:
        raise RequestError(
            f"history has {len(history)} entries; expected at most {MAX_HISTORY_ITEMS} turns "
            "(send the most recent ones)"
        )
    try:
        request = RetrievalRequest.model_validate(dict(body))
    except ValidationError as exc:
        raise RequestError(
            f"invalid request:\n{_described(exc)}\nexpected a JSON object such as {EXAMPLE}"
        ) from None
    _check_texts(request)
    return request


def _described(exc: ValidationError) -> str:
    """The first :data:`MAX_LISTED_ERRORS` field errors, then how many more there are."""
    count = exc.error_count()
    if count <= MAX_LISTED_ERRORS:
        return describe_validation_error(exc)
    lines = describe_validation_error(exc).splitlines()[:MAX_LISTED_ERRORS]
    return "\n".join([*lines, f"  ... and {count - MAX_LISTED_ERRORS} more invalid fields"])


def parse_invoke_body(body: bytes) -> RetrievalRequest:
    """A ZenML deployment's ``/invoke`` body, ``{"parameters": {...}}``, as a request.

    ZenML checks the parameters' types itself; this adds our checks (blank texts, sizes, top_k)
    before a pipeline run is started for a request that could only fail."""
    outer = parse_request_json(body)
    parameters = outer.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise RequestError(
            f'parameters is {shown(parameters)}; expected an object such as {{"parameters": '
            f"{EXAMPLE}}}"
        )
    return parse_request(
        {k: v for k, v in parameters.items() if k in RetrievalRequest.model_fields}
    )


def _check_texts(request: RetrievalRequest) -> None:
    if is_blank(request.query):
        raise RequestError("query is empty or invisible-only; expected the user's question")
    for index, turn in enumerate(request.history):
        if is_blank(turn):
            raise RequestError(
                f"history[{index}] is empty or invisible-only; expected the text of that turn"
            )
    for where, text in [("query", request.query)] + [
        (f"history[{i}]", t) for i, t in enumerate(request.history)
    ]:
        if len(text) > MAX_TEXT_CHARS:
            raise RequestError(
                f"{where} has {len(text)} characters; expected at most {MAX_TEXT_CHARS}"
            )
        if has_lone_surrogate(text):  # reachable from Python callers; JSON bodies are refused
            raise RequestError(
                f"{where} holds a lone surrogate (such as \\ud800), which has no UTF-8 form; "
                "expected valid Unicode text"
            )
