"""The WebSocket transport of every venue connection, live (`runner`) and recording (`recorder`).

Connect, subscribe at the venue's pace, ping where the venue wants an application-level ping,
one implementation, so that a capture is
made over exactly the connection ingest would have. What each caller does with the frames,
and when it gives up, stays with the caller.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from marketstream.venues.base.venue import Subscription, Venue


def connect_feed(
    url: str,
    *,
    open_timeout_s: float,
    max_frame_bytes: int,
    max_queue: int | None = 16,
    connection: type[ClientConnection] = ClientConnection,
) -> connect:
    """`async with connect_feed(...) as ws:` one connection to a venue's feed; `connection`
    `FeedConnection` to read it in batches (`FeedConnection.batches`)."""
    return connect(
        url,
        open_timeout=open_timeout_s,
        max_size=max_frame_bytes,
        max_queue=max_queue,
        create_connection=connection,
    )


class FeedConnection(ClientConnection):
    """A client connection read in batches: every whole message that arrived in one read
    from the socket, in order (`batches`), instead of one `recv` per message.

    websockets' own path (a frame queue, a per-message `recv` coroutine with its checks)
    costs as much per frame as parsing it; a feed sends hundreds of small messages per read.
    Unfragmented data frames are queued here; the first fragmented message switches the
    connection to websockets' `recv` for good, after what was queued here (order kept).
    Flow control is websockets': reading pauses above `max_queue` queued messages.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ready: deque[Frame] = deque()
        self._arrived: asyncio.Future[None] | None = None
        self._whole_only = True  # no fragmented message seen yet
        self._reading_paused = False

    def process_event(self, event: Event) -> None:
        if self.response is not None and isinstance(event, Frame):
            opcode = event.opcode
            if self._whole_only and event.fin and opcode in (Opcode.TEXT, Opcode.BINARY):
                self._ready.append(event)
                high = self.max_queue_high
                if high is not None and len(self._ready) > high and not self._reading_paused:
                    self._reading_paused = True
                    self.transport.pause_reading()
                self._wake()
                return
            if opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self._whole_only = False  # websockets reassembles from here on
                self._wake()
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake()

    def _wake(self) -> None:
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)

    async def batches(self) -> AsyncIterator[list[str | bytes]]:
        """Messages in order, as lists (text as str, binary as bytes), until the connection
        closes: cleanly (1000, 1001) ends the iteration, as `async for` over the connection
        does; otherwise ConnectionClosedError, after every message received before it."""
        ready = self._ready
        while True:
            if ready:
                try:
                    batch = [
                        bytes(f.data).decode() if f.opcode is Opcode.TEXT else bytes(f.data)
                        for f in ready
                    ]
                except UnicodeDecodeError:
                    batch = [_text_or_bytes(f) for f in ready]
                ready.clear()
                if self._reading_paused:
                    self._reading_paused = False
                    self.transport.resume_reading()
                yield batch
            elif not self._whole_only:
                try:
                    yield [await self.recv()]
                except ConnectionClosedOK:
                    return
            elif self.connection_lost_waiter.done():
                if isinstance(self.close_exc, ConnectionClosedOK):
                    return
                raise self.close_exc
            else:
                self._arrived = self.loop.create_future()
                try:
                    await self._arrived
                finally:
                    self._arrived = None


def _text_or_bytes(frame: Frame) -> str | bytes:
    """A text message that is not UTF-8 stays bytes: the mapper rejects it to md:dlq with
    the raw frame, rather than the connection failing on it."""
    data = bytes(frame.data)
    if frame.opcode is not Opcode.TEXT:
        return data
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


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
