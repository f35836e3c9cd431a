"""Per-client limits: who a client is, how many streams it holds, how much one request asks.

Every refusal is a `Refused` naming the limit, its configured value and what was asked; the
app turns it into an HTTP status (400 for a request too large, 429 for too many streams) or a
WebSocket close (1008, policy violation).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from starlette.requests import HTTPConnection

NS_PER_DAY: Final = 86_400 * 10**9
WS_POLICY_VIOLATION: Final = 1008
# The scope key the auth middleware sets to the token a request passed with (auth on only).
AUTHENTICATED_TOKEN: Final = "marketstream.token"  # noqa: S105 - a key name, no secret


class Refused(Exception):  # noqa: N818 - a refusal, not an error of ours
    """A request the API declines; `message` is one line for the client."""

    def __init__(self, message: str, *, status: int, ws_code: int = WS_POLICY_VIOLATION) -> None:
        super().__init__(message)
        self.message, self.status, self.ws_code = message, status, ws_code


class LimitExceeded(Refused):
    """A configured limit (`serve.<limit>`) refused a request."""

    def __init__(self, limit: str, value: object, asked: object, *, status: int = 400) -> None:
        super().__init__(
            f"serve.{limit} is {value}: refused {asked}", status=status, ws_code=WS_POLICY_VIOLATION
        )
        self.limit = limit


def client_id(connection: HTTPConnection) -> str:
    """The identity limits count by: the token's (a digest, never the token) when auth is on
    and the request passed it, else the peer address."""
    token = connection.scope.get(AUTHENTICATED_TOKEN)
    if isinstance(token, str):
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    peer = connection.client
    return f"addr:{peer.host}" if peer is not None else "addr:unknown"


class StreamSlots:
    """Concurrent streams per client, at most `limit` each (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    def held(self, client: str) -> int:
        return self._held.get(client, 0)

    @asynccontextmanager
    async def hold(self, client: str) -> AsyncIterator[None]:
        """One slot for the body of the `async with`; LimitExceeded (HTTP 429, WebSocket
        1008) when the client already holds `limit`."""
        held = self._held.get(client, 0)
        if held >= self.limit:
            raise LimitExceeded(
                "max_streams_per_client",
                self.limit,
                f"stream {held + 1} of this client",
                status=429,
            )
        self._held[client] = held + 1
        try:
            yield
        finally:
            left = self._held[client] - 1
            if left:
                self._held[client] = left
            else:
                del self._held[client]


def check_range_days(start_ns: int, end_ns: int, max_days: float) -> None:
    """A range of at most `serve.max_range_days`."""
    if end_ns - start_ns > max_days * NS_PER_DAY:
        asked = (end_ns - start_ns) / NS_PER_DAY
        raise LimitExceeded("max_range_days", f"{max_days:g}", f"a range of {asked:.6g} days")


def check_rows(limit: int, max_limit: int) -> int:
    """A page of 1 to `serve.max_limit` rows."""
    if limit < 1:
        raise Refused(f"limit {limit} is not a row count: expected 1 to {max_limit}", status=400)
    if limit > max_limit:
        raise LimitExceeded("max_limit", max_limit, f"limit={limit}")
    return limit


def close_reason(message: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8, as the protocol allows."""
    return message.encode()[:123].decode(errors="ignore")
