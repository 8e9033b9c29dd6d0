"""The load test's requests: turns of conversations, in the order each client sends them.

Two sources: the generated sample (unseen conversations, short texts; the default) and a public
conversational data set read with :func:`prime_model.data.read_turns` (doc2dial, CANARD dev,
TopiOCQA: long system turns, as an assistant's history holds). Two orders: ``conversation``
(each client takes whole conversations and sends their turns in order, so a turn's history was
the previous request's history + query, and the server's text cache holds it) and ``shuffled``
(turns in a seeded random order, split among the clients: a turn's history is rarely cached).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from prime_model.data import read_turns
from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.data.schema import ROLE_COLUMN, truncate_histories
from prime_model.errors import ConfigError

REQUEST_SEED: Final = 11  # training uses seed 0: these conversations are new to the model
SHUFFLE_SEED: Final = 13
ORDERS: Final = ("conversation", "shuffled")
RETRIEVE_PATH: Final = "/retrieve"
PASS_MARK: Final = "~PASS~"  # noqa: S105 - a placeholder, not a secret
"""In a conversation id: replaced by ``.p<pass>`` when sent (never a valid id character)."""
APIS: Final = ("retrieve", "conversation")
DEFAULT_TARGETS: Final = {"doc2dial": "passage", "canard": "answer", "topiocqa": "answer"}
"""What each public set's turns retrieve; only the index's extra texts depend on it."""


@dataclass(frozen=True)
class TurnRequest:
    """One turn as a client sends it: the history already cut to the model's turns."""

    conversation_id: str
    turn: int
    history: tuple[str, ...]
    roles: tuple[str | None, ...] | None
    query: str
    new_turns: tuple[tuple[str, str | None], ...] = ()
    """(text, role) said since the conversation's previous turn: what an assistant registers
    with a conversation API; the whole (cut) history when ``continues`` is False."""
    continues: bool = False
    """Whether this turn's history is the previous turn's history + its query + ``new_turns``."""


@dataclass(frozen=True)
class Call:
    """One HTTP POST; ``kind`` names what its latency is reported as (``retrieve`` for the
    request the user waits on, ``register`` for a conversation API's bookkeeping call)."""

    kind: str
    path: str
    body: bytes


Step = tuple[Call, ...]
"""The calls of one turn, sent in order on one connection."""


# ------------------------------------------------------------------------------------ sources


def sample_turns(max_turns: int, conversations: int = 300) -> list[TurnRequest]:
    """Turns of generated conversations the model never saw (no roles: the sample has none)."""
    frame = generate_sample(SampleConfig(num_conversations=conversations, seed=REQUEST_SEED))
    return frame_turns(frame, max_turns)


def read_conversations(
    path: Path, fmt: str, target: str | None = None, max_conversations: int | None = None
) -> pd.DataFrame:
    """A public conversational file's turn table (``target``: the format's default when None),
    its first ``max_conversations`` conversations in file order when given."""
    if max_conversations is not None and max_conversations < 1:
        raise ConfigError(f"max_conversations={max_conversations}; expected at least 1")
    frame = read_turns(path, fmt, target=target or DEFAULT_TARGETS.get(fmt, "passage"))
    if max_conversations is not None:
        keep = list(dict.fromkeys(frame["conversation_id"]))[:max_conversations]
        frame = frame[frame["conversation_id"].isin(keep)].reset_index(drop=True)
    return frame


def frame_turns(frame: pd.DataFrame, max_turns: int) -> list[TurnRequest]:
    """Every row as a request, grouped by conversation (first appearance) and in turn order;
    histories keep their ``max_turns`` most recent entries, roles cut alike when present."""
    cut = truncate_histories(frame, max_turns)
    cids = [str(c) for c in cut["conversation_id"]]
    numbers = [int(t) for t in cut["turn"]]
    full: list[list[str]] = [list(h) for h in frame["history"]]
    cut_history: list[tuple[str, ...]] = [tuple(h) for h in cut["history"]]
    queries = [str(q) for q in cut["query"]]
    has_roles = ROLE_COLUMN in cut.columns
    all_roles: list[list[str | None] | None] = (
        [None if r is None else list(r) for r in frame[ROLE_COLUMN]]
        if has_roles
        else [None] * len(cut)
    )
    first_seen = {c: i for i, c in enumerate(dict.fromkeys(cids))}
    out: list[TurnRequest] = []
    previous: tuple[str, list[str], str] | None = None  # conversation, full history, query
    for i in sorted(range(len(cids)), key=lambda i: (first_seen[cids[i]], numbers[i])):
        who = all_roles[i]
        kept = cut_history[i]
        every: list[str | None] = [None] * len(full[i]) if who is None else who
        start = _continues(previous, cids[i], full[i])
        said = list(zip(full[i], every, strict=True))
        new = said[start:] if start is not None else (said[-len(kept) :] if kept else [])
        roles = None if who is None else tuple(who[len(who) - len(kept) :])
        out.append(
            TurnRequest(cids[i], numbers[i], kept, roles, queries[i], tuple(new), start is not None)
        )
        previous = (cids[i], full[i], queries[i])
    return out


def _continues(
    previous: tuple[str, list[str], str] | None, cid: str, full: list[str]
) -> int | None:
    """Where the new part of ``full`` starts, if it extends the previous turn of ``cid``."""
    if previous is None or previous[0] != cid:
        return None
    before, query = previous[1], previous[2]
    n = len(before)
    if full[:n] == before and len(full) > n and full[n] == query:
        return n + 1
    return None


# ------------------------------------------------------------------------------------- bodies


def retrieve_body(turn: TurnRequest, top_k: int = 10) -> bytes:
    """``POST /retrieve``'s JSON: history as ``{"role", "text"}`` objects where roles are known
    (a role-embedding model reads them), plain texts otherwise."""
    history: list[object] = list(turn.history)
    if turn.roles is not None:
        history = [
            {"text": text} if role is None else {"role": role, "text": text}
            for text, role in zip(turn.history, turn.roles, strict=True)
        ]
    return json.dumps({"history": history, "query": turn.query, "top_k": top_k}).encode()


def request_bodies(max_turns: int, conversations: int = 300, top_k: int = 10) -> list[bytes]:
    """JSON bodies of unseen sample turns, histories cut to the ``max_turns`` most recent."""
    return [retrieve_body(t, top_k) for t in sample_turns(max_turns, conversations)]


def fresh_queries(bodies: Sequence[bytes], repeats: int) -> list[bytes]:
    """``repeats`` copies of the requests, each query made unique (a numbered suffix), so no
    query is ever in the server's text cache: every request pays one encoder call or more."""
    out: list[bytes] = []
    for body in list(bodies) * repeats:
        request = json.loads(body)
        request["query"] = f"{request['query']} (#{len(out)})"
        out.append(json.dumps(request).encode())
    return out


def invoke_bodies(bodies: Sequence[bytes]) -> list[bytes]:
    """The same requests in a ZenML deployment's ``/invoke`` shape."""
    return [json.dumps({"parameters": json.loads(b)}).encode() for b in bodies]


# ------------------------------------------------------------------------------------- orders


def client_orders(
    turns: Sequence[TurnRequest], clients: int, order: str, seed: int = SHUFFLE_SEED
) -> list[list[TurnRequest]]:
    """Each client's turns. ``conversation``: whole conversations dealt round-robin, turns in
    order; ``shuffled``: all turns in a seeded random order, dealt round-robin."""
    if clients < 1:
        raise ConfigError(f"clients={clients}; expected at least 1")
    if order not in ORDERS:
        raise ConfigError(f"order {order!r}; expected one of {', '.join(ORDERS)}")
    if not turns:
        raise ConfigError("no turns to send; expected at least one request")
    if order == "shuffled":
        mixed = list(turns)
        random.Random(seed).shuffle(mixed)  # noqa: S311 - a replayable order, not a secret
        return [mixed[i::clients] for i in range(clients)]
    grouped: dict[str, list[TurnRequest]] = {}
    for turn in turns:
        grouped.setdefault(turn.conversation_id, []).append(turn)
    conversations = list(grouped.values())
    if len(conversations) < clients:
        raise ConfigError(
            f"{len(conversations)} conversations for {clients} clients; expected at least one "
            "conversation per client"
        )
    return [
        [turn for conversation in conversations[i::clients] for turn in conversation]
        for i in range(clients)
    ]


def retrieve_steps(turns: Sequence[TurnRequest], path: str = RETRIEVE_PATH) -> list[Step]:
    """One ``/retrieve`` call per turn: the whole (cut) history travels with each request."""
    return [(Call("retrieve", path, retrieve_body(turn)),) for turn in turns]


def conversation_steps(turns: Sequence[TurnRequest], top_k: int = 10) -> list[Step]:
    """The conversation API, as an assistant would use it: per turn, first register what was
    said since the last request (``POST /conversations/{id}/turns``: the system response, timed
    as ``register``), then ``POST /retrieve`` with the conversation id and the query only (the
    server stores the query as the next user turn).

    ``turns`` are one client's, whole conversations in order. A conversation opens on the
    server with its first turn that has a history (the whole cut history registered); a turn
    with no history is a plain request, and one that does not extend the previous turn opens a
    conversation of its own. Ids end in :data:`PASS_MARK`, which each client replaces by its
    pass, so a cycle opens new conversations instead of appending to old ones."""
    steps: list[Step] = []
    open_id: str | None = None
    for turn in turns:
        if turn.continues and open_id is not None:
            said = turn.new_turns
        elif turn.history:
            open_id = _usable_id(f"{turn.conversation_id}.t{turn.turn}") + PASS_MARK
            said = tuple(zip(turn.history, turn.roles or (None,) * len(turn.history), strict=True))
        else:
            open_id = None
            steps.append((Call("retrieve", RETRIEVE_PATH, retrieve_body(turn, top_k)),))
            continue
        if any(role is None for _, role in said):
            raise ConfigError(
                f"conversation {turn.conversation_id!r} turn {turn.turn} has turns without a "
                "role; the conversation API registers each turn with its role (user or system)"
            )
        calls: list[Call] = []
        if said:
            body = json.dumps([{"role": role, "text": text} for text, role in said]).encode()
            calls.append(Call("register", f"/conversations/{open_id}/turns", body))
        query = {"conversation_id": open_id, "query": turn.query, "top_k": top_k}
        calls.append(Call("retrieve", RETRIEVE_PATH, json.dumps(query).encode()))
        steps.append(tuple(calls))
    return steps


def _usable_id(text: str) -> str:
    """A conversation id the server accepts (``[A-Za-z0-9._:-]``, room left for the pass)."""
    return re.sub(r"[^A-Za-z0-9._:-]", "-", text)[:100]


def body_steps(bodies: Sequence[bytes], path: str) -> list[Step]:
    """Ready-made bodies (sample, fresh queries, ``/invoke``) as one call each."""
    return [(Call("retrieve", path, body),) for body in bodies]


def dealt(steps: Sequence[Step], clients: int) -> list[list[Step]]:
    """The sample's order: every client cycles all steps, each from its own offset."""
    return [
        [*steps[i * len(steps) // clients :], *steps[: i * len(steps) // clients]]
        for i in range(clients)
    ]


def turn_text_stats(turns: Sequence[TurnRequest]) -> dict[str, float]:
    """How long the texts a request set sends are (chars): what the encoder pays for."""
    import numpy as np  # noqa: PLC0415

    history = [len(t) for turn in turns for t in turn.history]
    system = [
        len(t)
        for turn in turns
        if turn.roles is not None
        for t, r in zip(turn.history, turn.roles, strict=True)
        if r == "system"
    ]
    p = np.percentile
    return {
        "turns": float(len(turns)),
        "conversations": float(len({t.conversation_id for t in turns})),
        "history_p50": float(p(history, 50)) if history else 0.0,
        "history_p90": float(p(history, 90)) if history else 0.0,
        "system_p50": float(p(system, 50)) if system else 0.0,
        "system_p90": float(p(system, 90)) if system else 0.0,
        "query_p50": float(p([len(t.query) for t in turns], 50)),
    }
