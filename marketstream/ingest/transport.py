"""The WebSocket transport of every venue connection, live (`runner`) and recording (`recorder`).

Connect, subscribe at the venue's pace, ping where the venue wants an application-level ping,
one implementation, so that a capture is
made over exactly the connection ingest would have. What each caller does with the frames,
and when it gives up, stays with the caller.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection, connect

from marketstream.venues.base.venue import Subscription, Venue


def connect_feed(
    url: str, *, open_timeout_s: float, max_frame_bytes: int, max_queue: int | None = 16
) -> connect:
    """`async with connect_feed(...) as ws:` one connection to a venue's feed."""
    return connect(url, open_timeout=open_timeout_s, max_size=max_frame_bytes, max_queue=max_queue)


async def subscribe(ws: ClientConnection, venue: Venue, subscription: Subscription) -> None:
    """Send the venue's subscribe messages, paced: exchanges disconnect clients that send
    faster than they allow."""
    pause = 1.0 / venue.max_messages_per_s
    for i, message in enumerate(venue.subscribe_messages(subscription)):
        if i:
            await asyncio.sleep(pause)
        await ws.send(message)


async def keep_alive(ws: ClientConnection, venue: Venue) -> None:
    """Send the venue's application-level ping every period, until cancelled; returns at once
    where WebSocket-level pings (websockets' default) keep the feed alive."""
    message = venue.ping_message
    if message is None:
        return
    while True:
        await asyncio.sleep(venue.ping_interval_s)
        await ws.send(message)
