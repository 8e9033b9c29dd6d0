"""Hostile HTTP clients against ``prime serve``: every answer is typed JSON, bounded, and stays on
this host; a client that goes away costs no traceback; a busy port is one ``error:`` line.

The app runs in process (Starlette's TestClient, or the raw ASGI callable where a test needs to
script the client's messages); the retriever is the tiny one from the retrieval tests.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator, MutableMapping
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from prime_model.encode.encoders import EncoderConfig
from prime_model.encode.onnx_encoder import OnnxTextEncoder
from prime_model.errors import ClientGoneError, ConfigError, DataValidationError, RequestError
from prime_model.http import app as app_module
from prime_model.http.app import MAX_ERROR_CHARS, create_app
from prime_model.http.request import MAX_HISTORY_ITEMS, MAX_LISTED_ERRORS, parse_request
from prime_model.http.service import Retriever
from tests.conftest import CountingEncoder
from tests.prime_model.retrieve.support import TINY, tiny_retriever

BOUND = MAX_ERROR_CHARS + 500  # the message plus the JSON around it


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(tiny_retriever(), workers=2)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


# ------------------------------------------------------------------------ crashes: surrogates


@pytest.mark.parametrize(
    "body",
    [
        '{"query": "\\ud800"}',
        '{"query": "q", "history": ["fine", "a\\udfffb"]}',
        '{"query": "q", "\\ud800": 1}',
    ],
)
def test_a_lone_surrogate_is_a_400_naming_it_not_a_plain_text_500(
    client: TestClient, body: str
) -> None:
    response = client.post("/retrieve", content=body.encode("ascii"))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "MalformedRequestError"
    assert "lone surrogate" in response.json()["message"]


def test_a_valid_surrogate_pair_is_an_ordinary_character(client: TestClient) -> None:
    response = client.post("/retrieve", content=b'{"query": "rocket \\ud83d\\ude80?"}')
    assert response.status_code == 200, response.text


def test_python_callers_get_the_same_refusal_as_http_clients() -> None:
    """The ZenML step hands parse_request a dict, not JSON: checked after validation too."""
    with pytest.raises(RequestError, match=r"history\[0\] holds a lone surrogate"):
        parse_request({"query": "q", "history": ["\udc00"]})


def test_the_onnx_encoder_refuses_a_lone_surrogate_with_a_typed_error() -> None:
    """Behind the parser, the serving encoder still never hands one to the tokenizer."""
    encoder = OnnxTextEncoder(EncoderConfig(device="cpu"))
    with pytest.raises(DataValidationError, match="text 1 holds a lone surrogate"):
        encoder.encode(["fine", "bad \ud800"])
    assert encoder.encode(["fine"]).shape == (1, encoder.dim)


def test_an_unexpected_failure_is_a_json_500_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(CountingEncoder):
        def encode(self, texts: Any) -> npt.NDArray[np.float32]:
            raise TypeError("TextEncodeInput must be Union[...]")  # what the tokenizer raised

    with TestClient(create_app(tiny_retriever(Broken(dim=TINY.input_dim)))) as broken:
        response = broken.post("/retrieve", json={"query": "q"})
    assert response.status_code == 500
    assert response.json()["error"] == "InternalError"
    assert "Traceback" not in response.text and "TextEncodeInput" not in response.text
    assert [r.message for r in caplog.records if r.levelno >= logging.ERROR] == ["request failed"]


# ------------------------------------------------------------- unclear: bounded error bodies


def test_forty_thousand_unknown_keys_get_a_bounded_error(client: TestClient) -> None:
    body = json.dumps({"query": "q", **{f"k{i:05d}": 1 for i in range(40_000)}}).encode()
    assert len(body) > 400_000
    response = client.post("/retrieve", content=body)
    assert response.status_code == 422
    assert len(response.content) < BOUND
    message = response.json()["message"]
    assert f"and {40_000 - MAX_LISTED_ERRORS} more invalid fields" in message
    assert "k00000: Extra inputs are not permitted" in message


def test_a_hundred_thousand_integer_turns_get_a_bounded_error(client: TestClient) -> None:
    body = json.dumps({"query": "q", "history": list(range(100_000))}).encode()
    response = client.post("/retrieve", content=body)
    assert response.status_code == 422
    assert len(response.content) < BOUND
    assert f"expected at most {MAX_HISTORY_ITEMS} turns" in response.json()["message"]


def test_many_bad_turns_under_the_turn_cap_list_ten_and_count_the_rest(
    client: TestClient,
) -> None:
    response = client.post("/retrieve", json={"query": "q", "history": list(range(900))})
    assert response.status_code == 422 and len(response.content) < BOUND
    message = response.json()["message"]
    assert message.count("Input should be a valid string") == MAX_LISTED_ERRORS
    assert f"and {900 - MAX_LISTED_ERRORS} more invalid fields" in message


def test_every_error_body_is_cut_to_the_bound() -> None:
    long = app_module.bounded_message("x" * 10 * MAX_ERROR_CHARS)
    assert len(long) < MAX_ERROR_CHARS + 60 and long.endswith("more characters not shown)")
    assert app_module.bounded_message("short") == "short"


# ---------------------------------------------------------------- unclear: no open redirect


@pytest.mark.parametrize("path", ["/retrieve/", "/health/", "/info/"])
def test_a_trailing_slash_with_a_foreign_host_is_not_redirected(
    client: TestClient, path: str
) -> None:
    method = client.post if path == "/retrieve/" else client.get
    response = method(path, headers={"host": "attacker.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "attacker.example" not in response.text


# ------------------------------------------------------------- crashes: client disconnects


def _scope(length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/retrieve",
        "raw_path": b"/retrieve",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % length)],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }


def test_a_client_gone_mid_upload_logs_no_traceback(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[MutableMapping[str, Any]] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        for _ in range(3):  # per request: the log must not grow a traceback each time
            messages[:] = [
                {"type": "http.request", "body": b'{"query": "half', "more_body": True},
                {"type": "http.disconnect"},
            ]
            await app(_scope(1000), receive, send)

    with caplog.at_level(logging.DEBUG):
        anyio.run(run)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 3 and all(m["status"] == app_module.CLIENT_GONE for m in starts)


# ---------------------------------------------------------------- crashes: a port in use


def test_serving_on_a_port_in_use_is_a_config_error_before_warm_up() -> None:
    class Unwarmed(Retriever):
        def warmup(self) -> None:
            raise AssertionError("warmed up before the port was bound")

    base = tiny_retriever()
    retriever = Unwarmed(base.predictor, base.encoder, base.index, model_version="tiny:1")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on 127\.0\.0\.1:{port}: "):
            app_module.serve(retriever, "127.0.0.1", port)


def test_prime_serve_on_a_port_in_use_ends_with_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI path: ``main`` turns the ConfigError into ``error: ...`` and exit code 2."""
    from prime_model.cli import main as cli_main  # noqa: PLC0415

    def fake_serve(args: Any) -> int:
        app_module.serve(tiny_retriever(), "127.0.0.1", args.port)
        return 0

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        parser = cli_main.build_parser()
        monkeypatch.setattr(parser, "parse_args", lambda argv: _serve_args(port, fake_serve))
        monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
        assert cli_main.main(["serve"]) == cli_main.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert err.count("\n") == 1 and "Traceback" not in err


def _serve_args(port: int, command: Any) -> Any:
    import argparse  # noqa: PLC0415

    return argparse.Namespace(port=port, command=command, quiet=True, debug=False)


def test_read_body_turns_a_disconnect_into_a_typed_error() -> None:
    """The ZenML deployment's /invoke check reads bodies with it too: one typed error for both."""
    messages: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": b"12345", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def read() -> bytes:
        return await app_module.read_body(Request(_scope(100), receive))

    with pytest.raises(ClientGoneError, match="disconnected after 5 bytes"):
        anyio.run(read)
    assert app_module.error_status(ClientGoneError("x")) == app_module.CLIENT_GONE
