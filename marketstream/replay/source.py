"""What the replay server serves from one recording: its WebSocket frames and REST bodies.

The file is read twice: once at start to check every line, pick the dialect and index the
REST responses (few and small), then lazily while replaying, so that a long capture is
never held in memory and a bad line stops the server before any client connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec

from marketstream.errors import MarketStreamError
from marketstream.replay.dialect import Dialect, Route
from marketstream.replay.recording_format import read_recording_lines
from marketstream.schemas.instruments import SOURCES


class ReplayFrame(msgspec.Struct, frozen=True, gc=False):
    """A recorded WebSocket frame the server may send, with where it goes. A Struct: one is
    built per frame, in a tenth of a frozen dataclass's time."""

    recv_ns: int
    text: str
    route: Route


def request_target(url: str) -> str:
    """Path and query of a URL or request target, the query sorted: the lookup key of a
    recorded REST response, so `?limit=1000&symbol=X` finds `?symbol=X&limit=1000`."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{parts.path or '/'}?{query}" if query else parts.path or "/"


@dataclass(slots=True)
class RestResponses:
    """Recorded REST bodies by request target, each with the time it was fetched."""

    _by_target: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, url: str, recv_ns: int, body: str) -> None:
        self._by_target.setdefault(request_target(url), []).append((recv_ns, body))

    def lookup(self, target: str, replayed_ns: int | None) -> str | None:
        """The body fetched last before the replay reached `replayed_ns` (the first one
        before the replay started): a snapshot matches the deltas around it, as live."""
        responses = self._by_target.get(request_target(target))
        if not responses:
            return None
        body = responses[0][1]
        for recv_ns, later in responses:
            if replayed_ns is not None and recv_ns <= replayed_ns:
                body = later
        return body

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_target.values())


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """One checked recording: its exchange, dialect, counts and REST responses."""

    path: Path
    exchange: str
    dialect: Dialect
    total: int  # WebSocket frames the server can send
    ignored: int  # WebSocket frames it never sends: recorded subscription answers, unknown
    rest: RestResponses

    def frames(self) -> Generator[ReplayFrame, None, None]:
        """The sendable frames in file order, read again from the file."""
        for _, recorded in read_recording_lines(self.path):
            if recorded.is_rest:
                continue
            route = self.dialect.route(recorded.frame, recorded.url)
            if route is not None:
                yield ReplayFrame(recorded.recv_ns, recorded.frame, route)


def scan_recording(path: Path | str, dialects: Mapping[str, Dialect]) -> ReplaySource:
    """Check the whole recording; MarketStreamError (one line, naming it) if it cannot serve.

    `dialects`: exchange name -> its dialect (the venue registry's `DIALECTS`).
    """
    path = Path(path)
    exchange: str | None = None
    dialect: Dialect | None = None
    total = ignored = 0
    rest = RestResponses()
    for number, recorded in read_recording_lines(path):
        if exchange is None:
            exchange = recorded.exchange
            dialect = dialects.get(exchange)
            if dialect is None and exchange in SOURCES:
                raise MarketStreamError(
                    f"{path} line {number}: {exchange!r} is a polled source: its REST-only "
                    "recording is served by RestReplayServer (replay-server picks it itself)"
                )
            if dialect is None:
                known = ", ".join(sorted(dialects))
                raise MarketStreamError(
                    f"{path} line {number}: exchange {exchange!r} cannot be replayed yet "
                    f"(replay dialects: {known})"
                )
        elif recorded.exchange != exchange:
            raise MarketStreamError(
                f"{path} line {number}: exchange {recorded.exchange!r} after {exchange!r}; "
                "a recording holds one exchange"
            )
        assert dialect is not None  # set with exchange
        if recorded.is_rest:
            rest.add(recorded.url, recorded.recv_ns, recorded.frame)
        elif dialect.route(recorded.frame, recorded.url) is None:
            ignored += 1
        else:
            total += 1
    if exchange is None or dialect is None:
        raise MarketStreamError(f"{path}: the recording holds no frames")
    return ReplaySource(path, exchange, dialect, total, ignored, rest)


class Pacer:
    """Spaces sends like the recording: recorded gaps divided by `speed`, or none at all
    (`speed=None`). Either way it yields to the event loop every `yield_every` frames, so
    that connections are served while a fast replay runs."""

    def __init__(self, speed: float | None, *, yield_every: int = 100) -> None:
        self._speed = speed
        self._yield_every = yield_every
        self._count = 0
        self._anchor: tuple[float, int] | None = None

    def restart(self) -> None:
        """Forget the timeline: after a pause (no client) the next frame goes at once."""
        self._anchor = None

    def pause(self, recv_ns: int) -> float | None:
        """None when the frame goes now without suspending; else the seconds to sleep first
        (0 for a yield). Synchronous, so that a replay at maximum speed costs no coroutine
        per frame."""
        self._count += 1
        delay = 0.0
        if self._speed is not None:
            now = asyncio.get_running_loop().time()
            if self._anchor is None:
                self._anchor = (now, recv_ns)
            start, start_ns = self._anchor
            delay = start + (recv_ns - start_ns) / 1e9 / self._speed - now
        if delay > 0:
            return delay
        if self._count % self._yield_every == 0:
            return 0.0
        return None
