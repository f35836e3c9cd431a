"""A `/v1/stream` session's background discovery never dies silently."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from marketstream.serve.channels import parse_channels
from marketstream.serve.live_reader import LiveHub, LiveSession, LiveSettings


async def test_a_bug_in_stream_discovery_ends_the_session_with_its_cause() -> None:
    hub = LiveHub(client=None, settings=LiveSettings(discover_interval_s=0.001))  # type: ignore[arg-type]

    async def broken(tables: set[str]) -> set[str]:
        raise KeyError("unexpected reply")

    hub.discover = broken  # type: ignore[method-assign]
    session = LiveSession(hub, parse_channels(["trades:*:BTC-USDT"]), {})
    messages = session.messages()
    waiter: asyncio.Task[Any] = asyncio.ensure_future(messages.__anext__())
    await asyncio.wait_for(session.subscriber.failure.wait(), timeout=30)
    assert session.subscriber.failed == ("the server's stream discovery failed: 'unexpected reply'")
    waiter.cancel()
    with pytest.raises((asyncio.CancelledError, StopAsyncIteration)):
        await waiter
    await messages.aclose()
