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
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event, State

from marketstream.venues.base.venue import Subscription, Venue


class ClosingConnection(ClientConnection):
    """A websockets client connection whose `close` reads on to the server's close frame.

    websockets stops reading above `max_queue` queued messages and does not read again to
    close: a caller that stopped reading with the queue full (a capture that has its frames,
    ingest stopping on a busy feed) never saw the server's close frame, so every such close
    waited out `close_timeout` (10 s) and ended as 1006. Closing lifts the pause for good:
    what still arrives before the close frame is queued, and dropped with the connection.
    """

    _closing = False  # close() was called: reading never pauses again

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        self._closing = True
        self.recv_messages.high = None  # websockets' own pause (the messages it queues) off
        self.transport.resume_reading()  # a no-op unless paused
        await super().close(code, reason)


def connect_feed(
    url: str,
    *,
    open_timeout_s: float,
    max_frame_bytes: int,
    max_queue: int | None = 16,
    connection: type[ClosingConnection] = ClosingConnection,
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


# A whole (FIN) text or binary frame without RSV bits or mask: the first header byte of
# every message a feed sends, the only frames `FeedConnection` splits off itself.
_WHOLE_TEXT: Final = 0x81
_WHOLE_BINARY: Final = 0x82
_HEAD_END: Final = b"\r\n\r\n"
Payload = bytes | bytearray | memoryview


class FeedConnection(ClosingConnection):
    """A client connection read in batches: every whole message that arrived in one read
    from the socket, in order (`batches`), instead of one `recv` per message.

    websockets parses frames with a generator per frame and queues each for a `recv`
    coroutine: as much CPU per message as mapping it. Here the bytes after the handshake are
    split into frames by their headers in one loop: a whole, unmasked text or binary frame
    (nearly everything a feed sends) is queued at once; any other frame (ping, close,
    fragment, compressed, oversized, malformed) is handed whole to websockets, so its
    parser only ever starts at a frame boundary and answers, reassembles and fails exactly
    as it would alone. The first fragment, or a closing handshake, hands every later byte
    to websockets for good, after what was queued here (order kept).
    Flow control is websockets': reading pauses above `max_queue` queued messages, until the
    caller reads on or closes (the server's close frame waits behind what the queue held).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ready: deque[tuple[bool, Payload]] = deque()  # (text, payload)
        self._arrived: asyncio.Future[None] | None = None
        self._whole_only = True  # no fragmented message seen yet
        self._reading_paused = False
        self._head = bytearray()  # the handshake response so far
        self._split: bool | None = None  # frames split here (None: handshake not read)
        self._rest = bytearray()  # a frame not yet whole

    def data_received(self, data: bytes) -> None:
        if self._split is None:
            data = self._after_head(data)
        if not self._split:
            if data:
                super().data_received(data)
            return
        rest = self._rest
        if rest:
            rest += data
            buffer: bytes | bytearray = rest
        else:
            buffer = data
        self._rest = bytearray(buffer[self._frames(buffer) :])

    def _after_head(self, data: bytes) -> bytes:
        """Hand websockets the handshake response (and only it); what follows is frames."""
        seen = len(self._head)
        self._head += data
        end = self._head.find(_HEAD_END, max(0, seen - 3))
        if end < 0:
            super().data_received(data)
            return b""
        cut = end + len(_HEAD_END) - seen
        super().data_received(data[:cut])
        self._head = bytearray()
        # A refused handshake (its body, if any, is not frames) stays websockets' alone.
        self._split = self.response is not None and self.protocol.state is State.OPEN
        return data[cut:]

    def _frames(self, buffer: bytes | bytearray) -> int:  # noqa: PLR0912 - one loop per read
        """Queue or hand over every whole frame at the start of `buffer`; returns where the
        first incomplete frame starts (all of it was handed over once splitting stopped).
        Frames for websockets go in runs (a compressed feed's are all of them), in order."""
        ready, size, limit = self._ready, len(buffer), self.protocol.max_message_size
        queued = len(ready)
        pos = 0
        run = -1  # where the frames not yet handed over to websockets start, if any
        while size - pos >= 2:
            first, length = buffer[pos], buffer[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126 and size - pos >= 4:
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                start = pos + 4
            elif length == 127 and size - pos >= 10:
                length = int.from_bytes(buffer[pos + 2 : pos + 10])
                start = pos + 10
            elif length < 128:
                break  # the extended length has not all arrived
            else:  # masked: a protocol error from a server, websockets' to report
                return self._stop_splitting(buffer, pos if run < 0 else run, queued)
            if limit is not None and length > limit:  # websockets refuses it (1009)
                return self._stop_splitting(buffer, pos if run < 0 else run, queued)
            end = start + length
            if end > size:
                break
            if first in (_WHOLE_TEXT, _WHOLE_BINARY):
                if run >= 0:
                    if not self._hand_over(buffer[run:pos]):
                        return self._stop_splitting(buffer, pos, queued)
                    run = -1
                ready.append((first == _WHOLE_TEXT, buffer[start:end]))
            elif run < 0:
                run = pos
            pos = end
        if run >= 0 and not self._hand_over(buffer[run:pos]):
            return self._stop_splitting(buffer, pos, queued)
        self._queued(queued)
        return pos

    def _hand_over(self, frames: bytes | bytearray) -> bool:
        """Whole frames to websockets; False once splitting must stop (a fragmented message
        began, or the closing handshake)."""
        super().data_received(bytes(frames))
        return self._whole_only and self.protocol.state is State.OPEN

    def _stop_splitting(self, buffer: bytes | bytearray, pos: int, queued: int) -> int:
        self._split = False
        self._queued(queued)
        if pos < len(buffer):
            super().data_received(bytes(buffer[pos:]))
        return len(buffer)

    def _queued(self, before: int) -> None:
        """Pause reading above the queue's high mark; wake the reader if messages came."""
        ready = self._ready
        if len(ready) == before:
            return
        high = self.max_queue_high
        if high is not None and len(ready) > high and not (self._reading_paused or self._closing):
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        if self._rest:  # a frame cut short: websockets reports the truncated stream
            rest, self._rest = bytes(self._rest), bytearray()
            super().data_received(rest)
        super().eof_received()

    def process_event(self, event: Event) -> None:
        if self.response is not None and isinstance(event, Frame):
            opcode = event.opcode
            if self._whole_only and event.fin and opcode in (Opcode.TEXT, Opcode.BINARY):
                before = len(self._ready)
                self._ready.append((opcode is Opcode.TEXT, event.data))
                self._queued(before)
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
                    batch = [bytes(data).decode() if text else bytes(data) for text, data in ready]
                except UnicodeDecodeError:
                    batch = [_text_or_bytes(text, data) for text, data in ready]
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


def _text_or_bytes(text: bool, data: Payload) -> str | bytes:
    """A text message that is not UTF-8 stays bytes: the mapper rejects it to md:dlq with
    the raw frame, rather than the connection failing on it."""
    raw = bytes(data)
    if not text:
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


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
