"""Conversations the server remembers, so a retrieval request encodes only its new query.

An assistant registers each turn once, when it exists (``POST /conversations/{id}/turns``): the
long system responses are encoded then, off the user's request path, and kept with their role.
A retrieval request naming the conversation reads them as its history, and its query becomes the
next user turn. The store is bounded (conversations, total characters: least recently used go
first), expiring (a conversation untouched for ``ttl_s`` is gone) and thread-safe.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from prime_model.data.schema import ROLES
from prime_model.errors import ConfigError, RequestError, UnknownConversationError
from prime_model.text import is_blank, shown
from prime_model.unicode_checks import has_lone_surrogate

MAX_ID_CHARS: Final = 128
ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anchored: JSON Schema searches
ID_EXPECTED: Final = f"1 to {MAX_ID_CHARS} characters from A-Z a-z 0-9 . _ : -"
DEFAULT_TTL_S: Final = 3600.0
DEFAULT_MAX_CONVERSATIONS: Final = 10_000
DEFAULT_MAX_CHARS: Final = 100_000_000
"""Characters of turn text kept in all: ~100 MB of ASCII text, whatever the clients send."""
TURN_EXAMPLE: Final = '{"role": "system", "text": "Vulith Works was founded by Ilsa Revorn."}'


@dataclass(frozen=True)
class StoredTurn:
    """One turn as a retrieval reads it: who said it, its text (for a concat input) and its
    vector (the Y-Encoder's, after any history token cap)."""

    role: str
    text: str
    vector: npt.NDArray[np.float32]


@dataclass
class _Conversation:
    turns: list[StoredTurn] = field(default_factory=list)
    touched: float = 0.0
    chars: int = 0


def check_conversation_id(value: object) -> str:
    """``value`` if it is a usable conversation id, else a :class:`RequestError` (422)."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise RequestError(f"conversation_id is {shown(value, 80)}; expected {ID_EXPECTED}")
    return value


def parse_turns(value: Any, max_chars: int, max_turns: int = 1_000) -> list[tuple[str, str]]:
    """A registration body, one ``{"role", "text"}`` object or a list of them (empty: a
    conversation with no turns yet, for its first query), as (role, text) pairs; a
    :class:`RequestError` naming the bad entry and what was expected otherwise."""
    entries = value if isinstance(value, list) else [value]
    if len(entries) > max_turns:
        raise RequestError(
            f"the body holds {len(entries)} turns; expected at most {max_turns}: {TURN_EXAMPLE} "
            "or a list of such objects (an empty list starts a conversation with no turns)"
        )
    turns = []
    for index, entry in enumerate(entries):
        where = f"turns[{index}]" if isinstance(value, list) else "the turn"
        if not isinstance(entry, Mapping) or set(entry) != {"role", "text"}:
            keys = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise RequestError(f"{where} is {shown(keys, 120)}; expected {TURN_EXAMPLE}")
        role, text = entry["role"], entry["text"]
        if not isinstance(role, str) or role not in ROLES:
            raise RequestError(f"{where}.role is {shown(role, 80)}; expected one of {ROLES}")
        if not isinstance(text, str) or is_blank(text):
            raise RequestError(f"{where}.text is {shown(text, 80)}; expected the turn's text")
        if len(text) > max_chars:
            raise RequestError(
                f"{where}.text has {len(text)} characters; expected at most {max_chars}"
            )
        if has_lone_surrogate(text):
            raise RequestError(f"{where}.text holds a lone surrogate; expected valid Unicode")
        turns.append((role, text))
    return turns


class ConversationStore:
    """Turns per conversation id, the most recent ``max_turns`` of each.

    Least recently used conversations are evicted past ``max_conversations`` or ``max_chars``
    of text; one untouched for ``ttl_s`` seconds (by ``clock``) is expired. Every method holds
    one lock, and none encodes: encoding happens before :meth:`add`.
    """

    def __init__(
        self,
        max_turns: int,
        *,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        ttl_s: float = DEFAULT_TTL_S,
        max_chars: int = DEFAULT_MAX_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, number in [
            ("max_turns", max_turns),
            ("max_conversations", max_conversations),
            ("ttl_s", ttl_s),
            ("max_chars", max_chars),
        ]:
            if not number > 0:
                raise ConfigError(f"{name}={number}; expected a positive number")
        self.max_turns, self.max_conversations = max_turns, max_conversations
        self.ttl_s, self.max_chars, self._clock = ttl_s, max_chars, clock
        self._items: OrderedDict[str, _Conversation] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._items)

    def add(self, conversation_id: str, turns: Sequence[StoredTurn]) -> int:
        """Append ``turns`` (creating the conversation if needed); its number of turns after."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            conversation = self._items.get(conversation_id) or _Conversation()
            self._items[conversation_id] = conversation
            self._items.move_to_end(conversation_id)
            self._extend(conversation, turns, now)
            self._evict(keep=conversation_id)
            return len(conversation.turns)

    def append(self, conversation_id: str, turn: StoredTurn) -> bool:
        """Append one turn to a conversation still held (False when it went meanwhile)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            conversation = self._items.get(conversation_id)
            if conversation is None:
                return False
            self._items.move_to_end(conversation_id)
            self._extend(conversation, [turn], now)
            self._evict(keep=conversation_id)
            return True

    def turns(self, conversation_id: str) -> list[StoredTurn]:
        """The conversation's turns, oldest first, or :class:`UnknownConversationError`."""
        with self._lock:
            now = self._clock()
            held = self._items.get(conversation_id)
            stale = held is not None and now - held.touched >= self.ttl_s
            self._expire(now)
            if held is None or stale:
                why = (
                    f"expired after {self.ttl_s:g} s without a new turn"
                    if stale
                    else "unknown (never registered, expired or evicted)"
                )
                raise UnknownConversationError(
                    f"conversation {conversation_id!r} is {why}; register its turns first with "
                    f"POST /conversations/{conversation_id}/turns, or send the history in the "
                    "request"
                )
            held.touched = now
            self._items.move_to_end(conversation_id)
            return list(held.turns)

    def info(self) -> dict[str, Any]:
        with self._lock:
            self._expire(self._clock())
            return {
                "conversations": len(self._items),
                "chars": self._chars,
                "max_conversations": self.max_conversations,
                "ttl_s": self.ttl_s,
                "evicted": self.evicted,
                "expired": self.expired,
            }

    # --- under the lock ---------------------------------------------------------------------

    def _extend(self, conversation: _Conversation, turns: Sequence[StoredTurn], now: float) -> None:
        conversation.turns.extend(turns)
        dropped = conversation.turns[: -self.max_turns]
        del conversation.turns[: -self.max_turns]
        added = sum(len(t.text) for t in turns) - sum(len(t.text) for t in dropped)
        conversation.chars += added
        self._chars += added
        conversation.touched = now

    def _expire(self, now: float) -> None:
        """Drop conversations untouched for ``ttl_s`` (the oldest are first in the order)."""
        while self._items:
            oldest_id, oldest = next(iter(self._items.items()))
            if now - oldest.touched < self.ttl_s:
                break
            self._drop(oldest_id)
            self.expired += 1

    def _evict(self, keep: str) -> None:
        while len(self._items) > self.max_conversations or (
            self._chars > self.max_chars and len(self._items) > 1
        ):
            oldest_id = next(iter(self._items))
            if oldest_id == keep:  # the one just written is the most recent: never reached
                self._items.move_to_end(keep)
                continue
            self._drop(oldest_id)
            self.evicted += 1

    def _drop(self, conversation_id: str) -> None:
        self._chars -= self._items.pop(conversation_id).chars
