"""An online retrieval request, parsed from untrusted JSON into one typed, bounded value.

The endpoint (``prime serve``) and the ZenML deployment both parse through here, so a bad
request gets the same :class:`~prime_model.errors.RequestError` message from either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from prime_model.config import describe_validation_error
from prime_model.data.schema import ROLES, role_ids
from prime_model.errors import MalformedRequestError, RequestError, RequestTooLargeError
from prime_model.http.conversations import ID_PATTERN, check_conversation_id
from prime_model.parsing import parse_json
from prime_model.text import is_blank, shown
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


Role: TypeAlias = Literal["user", "system"]  # data.schema.ROLES: ids 1 and 2, 0 is unknown
TURN_EXAMPLE: Final = '{"role": "user", "text": "Who founded Vulith Works?"} (role: user or system)'
_TURN_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"role": {"enum": list(ROLES)}, "text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}


class RetrievalRequest(BaseModel):
    """The conversation so far (oldest turn first) and the user's current query.

    History entries are texts or ``{"role": "user"|"system", "text": ...}`` objects; objects are
    split into ``history`` (texts) and ``history_roles`` here, so the rest of the service reads
    plain texts. A parallel ``history_roles`` list works too; a turn without a role is unknown,
    which the predictor reads as it always did.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: list[StrictStr] = Field(
        default_factory=list,
        description="previous turns: texts, or objects with a role and a text",
        json_schema_extra={"items": {"anyOf": [{"type": "string"}, _TURN_SCHEMA]}},
    )
    history_roles: list[Role | None] | None = Field(
        None, description="who said each history entry (null: unknown); one per entry"
    )
    query: StrictStr = Field(description="the user's current, possibly ambiguous, question")
    top_k: StrictInt = Field(10, ge=1, le=MAX_TOP_K, description="how many items to return")
    conversation_id: StrictStr | None = Field(
        None,
        description="instead of history: a conversation whose turns were registered with "
        "POST /conversations/{conversation_id}/turns (the query becomes its next user turn)",
        json_schema_extra={"pattern": ID_PATTERN.pattern},
    )

    @model_validator(mode="before")
    @classmethod
    def _split_turn_objects(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("conversation_id") is not None:
            given = [key for key in ("history", "history_roles") if key in data]
            if given:
                raise ValueError(
                    f"conversation_id and {' and '.join(given)} are both given; expected either "
                    "a conversation_id (its registered turns are the history) or a history"
                )
        return split_turn_objects(data)

    @field_validator("conversation_id")
    @classmethod
    def _usable_id(cls, value: str | None) -> str | None:
        return None if value is None else check_conversation_id(value)

    @model_validator(mode="after")
    def _one_role_per_turn(self) -> Self:
        if self.history_roles is not None and len(self.history_roles) != len(self.history):
            raise ValueError(
                f"history_roles has {len(self.history_roles)} entries for {len(self.history)} "
                "history entries; expected one role (user, system or null) per entry"
            )
        return self

    def role_ids(self) -> list[int]:
        """The predictor's role id per history entry: 1 user, 2 system, 0 unknown."""
        return role_ids(self.history_roles, len(self.history))


def split_turn_objects(data: Any) -> Any:
    """A body whose history holds role/text objects, as texts plus a parallel ``history_roles``;
    anything else unchanged (the field validation then says what is wrong with it)."""
    history = data.get("history") if isinstance(data, Mapping) else None
    if not isinstance(history, list) or not any(isinstance(e, Mapping) for e in history):
        return data
    if data.get("history_roles") is not None:
        raise ValueError(
            "roles are given twice: as history objects and as history_roles; expected one of them"
        )
    texts: list[Any] = []
    roles: list[Any] = []
    for index, entry in enumerate(history):
        if not isinstance(entry, Mapping):
            texts.append(entry)
            roles.append(None)
            continue
        unknown = [key for key in entry if key not in ("role", "text")]
        if unknown or "text" not in entry:
            problem = f"unknown keys {shown(unknown[:5])}" if unknown else "no 'text'"
            raise ValueError(f"history[{index}] has {problem}; expected {TURN_EXAMPLE}")
        role = entry.get("role")
        if role is not None and (not isinstance(role, str) or role not in ROLES):
            raise ValueError(
                f"history[{index}].role is {shown(role)}; expected one of {', '.join(ROLES)} "
                "(or no role: unknown)"
            )
        texts.append(entry["text"])
        roles.append(role)
    return {**data, "history": texts, "history_roles": roles}


def parse_request_json(body: bytes | str) -> Mapping[str, Any]:
    """The body as a JSON object: bounded, UTF-8, strict JSON (no duplicate keys, no NaN)."""
    value = parse_json_body(body, f"a JSON object such as {EXAMPLE}")
    if not isinstance(value, dict):
        raise MalformedRequestError(
            f"request body is a JSON {type(value).__name__}; expected a JSON object such as "
            f"{EXAMPLE}"
        )
    return value


def parse_json_body(body: bytes | str, expected: str) -> Any:
    """The body as any JSON value: bounded, UTF-8, strict JSON; errors say ``expected``."""
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise RequestTooLargeError(
            f"request body is {size} bytes; expected at most {MAX_BODY_BYTES}"
        )
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise MalformedRequestError(
            f"request body is not UTF-8 ({exc.reason} at byte {exc.start}); expected {expected}"
        ) from None
    return parse_json(text, "request body", MalformedRequestError, expected=expected)


def parse_request(body: bytes | str | Mapping[str, Any]) -> RetrievalRequest:
    """A :class:`RetrievalRequest`, or a :class:`RequestError` saying what is wrong and how a
    request looks."""
    if isinstance(body, bytes | str):
        body = parse_request_json(body)
    if not isinstance(body, Mapping):
        raise MalformedRequestError(
            f"request is a {type(body).__name__}; expected a JSON object such as {EXAMPLE}"
        )
    for name in ("history", "history_roles"):
        history = body.get(name)
        if isinstance(history, list) and len(history) > MAX_HISTORY_ITEMS:
            raise RequestError(
                f"{name} has {len(history)} entries; expected at most {MAX_HISTORY_ITEMS} turns "
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
    if parameters.get("conversation_id") is not None:
        raise RequestError(
            "conversation_id is for POST /retrieve (the server's conversation store); a "
            "pipeline run reads no store: expected the history in the parameters"
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
