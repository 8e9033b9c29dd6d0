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
    roles = cut[ROLE_COLUMN] if ROLE_COLUMN in cut.columns else [None] * len(cut)
    first_seen = {c: i for i, c in enumerate(dict.fromkeys(cut["conversation_id"]))}
    rows = sorted(
        zip(cut["conversation_id"], cut["turn"], cut["history"], roles, cut["query"], strict=True),
        key=lambda row: (first_seen[row[0]], row[1]),
    )
    return [
        TurnRequest(
            str(cid), int(turn), tuple(history), None if who is None else tuple(who), str(query)
        )
        for cid, turn, history, who, query in rows
    ]


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
