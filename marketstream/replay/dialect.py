"""The base of every venue's replay dialect: the server side of its WebSocket protocol.

A dialect knows two things: which subscription a recorded frame belongs to (`route`, once
per frame), and how one connection subscribes (`Session`: answers the client's messages and
says whether it wants a frame). The replay server does the rest, the same for all dialects.
Each venue package implements its dialect in its `replay.py`; the venue registry lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson


@dataclass(frozen=True, slots=True)
class Route:
    """What a subscription must name for a recorded frame to be sent.

    `topic` is the exchange's own name for the subscribed thing (a stream, a product id);
    `channels` the channels that carry the frame where the exchange subscribes to topic and
    channel separately, empty otherwise.
    """

    topic: str
    channels: frozenset[str] = frozenset()
    # A frame the dialect cannot place (not JSON, unknown shape): every subscribed connection
    # gets it, as a live feed's garbage reaches whoever listens. Never dropped silently.
    everyone: bool = False


EVERYONE: Final = Route("", everyone=True)


class Session(Protocol):
    """One connection's subscriptions."""

    @property
    def active(self) -> bool:
        """Subscribed to something: the replay advances only while some session is."""
        ...

    def on_message(self, text: str) -> list[str]:
        """Apply a client message; return the answers to send, in order."""
        ...

    def wants(self, route: Route) -> bool: ...

    def render(self, frame: str) -> str:
        """The text to send for a wanted recorded frame (usually the frame itself)."""
        ...


class Dialect(Protocol):
    # Path of the WebSocket URL the server advertises ("" for the root).
    @property
    def ws_path(self) -> str: ...

    def accepts_path(self, path: str) -> bool:
        """Whether a WebSocket upgrade to this path (with query) is a feed connection."""
        ...

    def route(self, frame: str, url: str = "") -> Route | None:
        """Where a recorded frame goes; None for the frames this server generates itself
        (subscription answers a capture recorded), which are never sent. `url` is the URL the
        frame was recorded on: where one topic exists on several endpoints (spot and
        perpetuals on one name) it tells them apart."""
        ...

    def open_session(self, path: str) -> Session: ...


def loads(text: str) -> Any:
    """A client message or recorded frame decoded; None when it is not JSON (dialects answer
    such input as their exchange does, rather than fail)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()
