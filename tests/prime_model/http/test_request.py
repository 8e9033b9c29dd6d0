from __future__ import annotations

import json

import pytest

from prime_model.errors import MalformedRequestError, RequestError, RequestTooLargeError
from prime_model.http.request import (
    MAX_BODY_BYTES,
    MAX_TEXT_CHARS,
    parse_invoke_body,
    parse_request,
)


def test_a_good_request_parses_with_defaults() -> None:
    request = parse_request(b'{"history": ["Who founded it?"], "query": "Where was she born?"}')
    assert (request.history, request.query, request.top_k) == (
        ["Who founded it?"],
        "Where was she born?",
        10,
    )
    assert parse_request({"query": "q", "top_k": 3}).history == []


BAD = [
    (b'{"history": []}', RequestError, r"query: Field required"),
    (b'{"query": 5}', RequestError, r"query: Input should be a valid string \(got 5\)"),
    (
        b'{"query": "q", "history": "one turn"}',
        RequestError,
        "history: Input should be a valid list",
    ),
    (
        b'{"query": "q", "history": ["a", 3]}',
        RequestError,
        r"history.1: Input should be a valid string",
    ),
    (b'{"query": "q", "top_k": "3"}', RequestError, "top_k: Input should be a valid integer"),
    (
        b'{"query": "q", "top_k": 0}',
        RequestError,
        "top_k: Input should be greater than or equal to 1",
    ),
    (b'{"query": "q", "top_k": 101}', RequestError, "less than or equal to 100"),
    (b'{"query": "q", "quer": 1}', RequestError, "quer: Extra inputs are not permitted"),
    (b'{"query": " \\u200b "}', RequestError, "query is empty or invisible-only"),
    (b'{"query": "q", "history": ["a", ""]}', RequestError, r"history\[1\] is empty"),
    (b'{"query": "q", "query": "r"}', MalformedRequestError, "duplicate key 'query'"),
    (b'{"query": NaN}', MalformedRequestError, "NaN"),
    (b"[1, 2]", MalformedRequestError, "is a JSON list; expected a JSON object"),
    (b"{oops", MalformedRequestError, "invalid JSON on line 1"),
    (b"\xff\xfe", MalformedRequestError, "not UTF-8"),
    (b"", MalformedRequestError, "invalid JSON"),
]


@pytest.mark.parametrize(("body", "error", "message"), BAD)
def test_every_bad_request_is_a_typed_error_naming_the_problem(
    body: bytes, error: type[RequestError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_request(body)
    assert type(caught.value) is error
    if error is RequestError:
        assert "expected" in str(caught.value)


def test_oversized_bodies_and_texts() -> None:
    with pytest.raises(RequestTooLargeError, match=f"expected at most {MAX_BODY_BYTES}"):
        parse_request(b" " * (MAX_BODY_BYTES + 1))
    long = json.dumps({"query": "x" * (MAX_TEXT_CHARS + 1)})
    with pytest.raises(RequestError, match=f"query has {MAX_TEXT_CHARS + 1} characters"):
        parse_request(long)


def test_invoke_bodies_unwrap_zenml_parameters() -> None:
    request = parse_invoke_body(b'{"parameters": {"query": "q", "history": ["a"], "top_k": 2}}')
    assert (request.history, request.top_k) == (["a"], 2)
    with pytest.raises(RequestError, match="query: Field required"):
        parse_invoke_body(b'{"parameters": {}}')
    with pytest.raises(RequestError, match="parameters is 'x'"):
        parse_invoke_body(b'{"parameters": "x"}')
    with pytest.raises(RequestError, match="query is empty"):
        parse_invoke_body(b'{"parameters": {"query": " "}}')
