"""The property layer: generated inputs instead of hand-picked ones, bounded in time.

* Schemathesis reads ``prime serve``'s OpenAPI schema and sends requests built from it (valid
  bodies and every kind of malformed one) to the app in process: no answer is a 5xx, every
  answer is JSON, and no body is larger than a bounded size.
* Hypothesis writes arbitrary Unicode (NULs, line and paragraph separators, BOMs, astral
  characters, lone surrogates) and nested JSON values into the readers' formats: each file is
  read back exactly, or refused with a typed error; never truncated, never an untyped crash.

Offline and deterministic: ``derandomize`` fixes the examples, the database is off (no files),
and each test is capped by ``max_examples`` (about 30 s for the whole module on 2 cores).
"""

from __future__ import annotations

import csv
import json
from typing import Any

import pandas as pd
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.conftest import SANDBOX

# Hypothesis keeps caches (unicode tables, constants) in ./.hypothesis: the session's sandbox
# instead, so the checkout is left as it was found
set_hypothesis_home_dir(SANDBOX.root / "hypothesis")

import schemathesis  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from prime_model.data import read_turns  # noqa: E402
from prime_model.errors import DataValidationError, PrimeError  # noqa: E402
from prime_model.http.app import MAX_ERROR_CHARS, create_app  # noqa: E402
from prime_model.parsing import parse_json  # noqa: E402
from prime_model.retrieve.corpus import read_corpus  # noqa: E402
from prime_model.text import is_blank  # noqa: E402
from prime_model.unicode_checks import has_lone_surrogate  # noqa: E402
from tests.prime_model.retrieve.support import tiny_retriever  # noqa: E402

BOUNDED = settings(
    max_examples=40,
    deadline=None,  # a shared 2-core machine: timing per example is noise
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_ANSWER_BYTES = 64 * 1024  # 100 hits of 20k-character texts would be more; these are short

APP = create_app(tiny_retriever(), workers=2)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)


# ------------------------------------------------------------------------------ HTTP


@SCHEMA.parametrize()
@settings(BOUNDED, max_examples=60)
def test_no_generated_request_gets_a_5xx_or_an_unbounded_answer(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, response.text[:500]
    assert response.headers.get("content-type", [""])[0].startswith("application/json")
    assert len(response.content) <= MAX_ANSWER_BYTES
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message"} or "detail" in body
        assert len(body.get("message", "")) <= MAX_ERROR_CHARS + 60


FINITE = st.floats(allow_nan=False, allow_infinity=False)  # NaN/Infinity are not JSON
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(body=st.dictionaries(st.sampled_from(["history", "query", "top_k", "x"]), JSON_VALUES))
@BOUNDED
def test_arbitrary_json_objects_get_typed_json_answers(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode("ascii")  # \\u escapes: lone surrogates travel too
    with TestClient(APP) as client:
        response = client.post("/retrieve", content=raw)
    assert response.status_code in (200, 400, 413, 422), response.text[:300]
    assert len(response.content) <= MAX_ANSWER_BYTES
    if response.status_code != 200:
        assert response.json()["error"] in {"RequestError", "MalformedRequestError"}


# --------------------------------------------------------------------------- readers

ANY_TEXT = st.text(min_size=1, max_size=40)  # every code point but surrogates
# what breaks readers: NUL, separators str.splitlines cuts at, BOM, CR, and lone surrogates
# (valid in JSON as \\ud800 escapes, with no UTF-8 form)
TRICKY = st.sampled_from(
    ["\0", "\u2028", "\u2029", "\u0085", "\ufeff", "\r", "\n", "\t", "\f", "\ud800", "\udfff"]
)
TEXT = st.one_of(ANY_TEXT, st.lists(TRICKY | ANY_TEXT, min_size=1, max_size=6).map("".join))


def _outcome(read: Any) -> tuple[str, Any]:
    try:
        return "read", read()
    except PrimeError as exc:
        return "refused", exc


@given(texts=st.lists(TEXT, min_size=1, max_size=5), ascii_only=st.booleans())
@BOUNDED
def test_a_jsonl_corpus_round_trips_or_names_the_bad_text(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str], ascii_only: bool
) -> None:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    lines = [
        json.dumps({"id": f"id-{i}", "text": t}, ensure_ascii=ascii_only)
        for i, t in enumerate(texts)
    ]
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except UnicodeEncodeError:  # a raw surrogate cannot even be written as UTF-8
        assert not ascii_only and any(has_lone_surrogate(t) for t in texts)
        return
    kind, result = _outcome(lambda: read_corpus(path))
    if any(has_lone_surrogate(t) for t in texts):
        assert kind == "refused" and "lone surrogate" in str(result)
    elif any(is_blank(t) for t in texts):
        assert kind == "refused" and "blank text" in str(result)
    else:
        assert kind == "read", result
        assert result["text"].tolist() == texts  # exactly: nothing cut at a NUL or U+2028


@given(texts=st.lists(TEXT, min_size=1, max_size=5))
@BOUNDED
def test_a_csv_corpus_round_trips_or_refuses_a_nul(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str]
) -> None:
    if any(has_lone_surrogate(t) for t in texts):
        texts = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
    path = tmp_path_factory.mktemp("corpus") / "corpus.csv"
    frame = pd.DataFrame({"id": [f"id-{i}" for i in range(len(texts))], "text": texts})
    # every cell quoted: unquoted, "a\r" before the line's "\n" is just a CRLF line end
    path.write_bytes(frame.to_csv(index=False, quoting=csv.QUOTE_ALL).encode("utf-8"))
    kind, result = _outcome(lambda: read_corpus(path))
    if any("\0" in t for t in texts):
        assert kind == "refused" and "NUL byte" in str(result)
    elif any(is_blank(t) for t in texts):
        assert kind == "refused" and isinstance(result, DataValidationError)
    else:
        assert kind == "read", result
        # CSV has no way to say "\r" versus "\r\n" inside a quoted cell; the rest is exact
        assert (
            result["text"].tolist() == [t.replace("\r\n", "\n") for t in texts]
            or result["text"].tolist() == texts
        )


@given(value=JSON_VALUES, depth=st.integers(0, 150))
@BOUNDED
def test_nested_json_parses_or_is_a_typed_error(value: Any, depth: int) -> None:
    text = "[" * depth + json.dumps(value) + "]" * depth
    kind, result = _outcome(lambda: parse_json(text, "generated"))
    if depth + _depth(value) > 100:
        assert kind == "refused" and "nested more than 100 levels" in str(result)
    elif kind == "refused":
        assert "lone surrogate" in str(result)
    else:
        unwrapped = result
        for _ in range(depth):
            unwrapped = unwrapped[0]
        assert unwrapped == value


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(
    queries=st.lists(TEXT, min_size=3, max_size=3), newline=st.sampled_from(["\n", "\r\n", "\r"])
)
@BOUNDED
def test_turn_files_round_trip_whatever_the_line_endings(
    tmp_path_factory: pytest.TempPathFactory, queries: list[str], newline: str
) -> None:
    rows = [
        {"conversation_id": "c", "turn": t, "history": queries[:t], "query": q, "target": "t",
         "target_id": None}
        for t, q in enumerate(queries)
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("turns") / "turns.jsonl"
    path.write_text(newline.join(json.dumps(r) for r in rows) + newline, encoding="ascii")
    kind, result = _outcome(lambda: read_turns(path))
    if kind == "read":
        assert result["query"].tolist() == queries
        assert [list(h) for h in result["history"]] == [queries[:t] for t in range(3)]
    else:
        assert isinstance(result, DataValidationError)
        assert any(has_lone_surrogate(q) or is_blank(q) for q in queries), result


def test_the_schema_documents_the_request_body() -> None:
    """What Schemathesis generates from: the request model, not an empty body."""
    operation = APP.openapi()["paths"]["/retrieve"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["query"] and schema["additionalProperties"] is False


@given(history=JSON_VALUES)
@BOUNDED
def test_any_json_value_as_a_history_is_read_as_texts_or_refused(
    tmp_path_factory: pytest.TempPathFactory, history: Any
) -> None:
    row = {"conversation_id": "c", "turn": 0, "history": history, "query": "q", "target": "t"}
    path = tmp_path_factory.mktemp("turns") / "turns.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="ascii")
    kind, result = _outcome(lambda: read_turns(path))
    texts = isinstance(history, list) and all(isinstance(h, str) for h in history)
    if kind == "read":  # as texts (a reader may also accept {role, text} entries)
        got = list(result.loc[0, "history"])
        assert all(isinstance(h, str) for h in got)
        assert got == history or not texts
    else:
        assert isinstance(result, DataValidationError)
        assert not texts or any(has_lone_surrogate(h) or is_blank(h) for h in history), result
